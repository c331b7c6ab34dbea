"""What a running command reports while it works: small typed events behind one observer.

The pipeline, the runner, the dry run, ``abmigrate.ops`` helpers inside a revision and the
rehearsal emit these; the CLI renders them on standard error (``render.events``), a Python
caller passes any callable. An observer must not raise: progress is a courtesy.

This module imports nothing of abmigrate's packages at run time (``ops`` imports it from inside
revision scripts), so every layer can emit events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from abmigrate.config.settings import Policy
    from abmigrate.results import DataLoss, Verification

__all__ = [
    "BackfillBatch",
    "BackupFinished",
    "BackupStarted",
    "DowngradeSql",
    "DryRunSkipped",
    "Event",
    "GatesOverridden",
    "IndexProgress",
    "InvalidIndexDropped",
    "LockRetry",
    "LockTaken",
    "LockWaiting",
    "ModelsPredicted",
    "Observer",
    "StatementRun",
    "StepBlocked",
    "StepFinished",
    "StepStarted",
    "TargetChosen",
    "Verified",
    "WaitingForBlockers",
    "event_record",
]


@dataclass(frozen=True, slots=True)
class TargetChosen:
    """The pipeline names the database it will change and the policy guarding it."""

    name: ClassVar[str] = "target"
    environment: str
    database: str
    policy: Policy


@dataclass(frozen=True, slots=True)
class LockWaiting:
    """Another run holds the migration lock; this one waits up to ``wait_s``."""

    name: ClassVar[str] = "lock_wait"
    holder: dict[str, Any]
    wait_s: float


@dataclass(frozen=True, slots=True)
class LockTaken:
    name: ClassVar[str] = "locked"
    waited_s: float


@dataclass(frozen=True, slots=True)
class DowngradeSql:
    """What a rollback will run, shown before anything is decided about it."""

    name: ClassVar[str] = "downgrade_sql"
    steps: list[dict[str, Any]]
    data_loss: list[DataLoss]


@dataclass(frozen=True, slots=True)
class ModelsPredicted:
    """Whether the schema at the target will match the models (apply.model_prediction)."""

    name: ClassVar[str] = "models_predicted"
    models: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GatesOverridden:
    name: ClassVar[str] = "override"
    overrides: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class BackupStarted:
    name: ClassVar[str] = "backup_start"


@dataclass(frozen=True, slots=True)
class BackupFinished:
    name: ClassVar[str] = "backup_done"
    backup: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A revision starts (in a rehearsal, ``direction`` may also be ``re-upgrade``)."""

    name: ClassVar[str] = "step_start"
    revision: str
    direction: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class StepFinished:
    name: ClassVar[str] = "step_done"
    revision: str
    direction: str
    elapsed_s: float
    attempts: int = 1
    ok: bool = True


@dataclass(frozen=True, slots=True)
class StatementRun:
    """A statement a revision runs (first 160 characters, whitespace folded)."""

    name: ClassVar[str] = "statement"
    revision: str
    sql: str


@dataclass(frozen=True, slots=True)
class StepBlocked:
    """The revision in flight waits for a lock other sessions hold."""

    name: ClassVar[str] = "blocked"
    revision: str | None
    waiting_s: float
    blockers: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class WaitingForBlockers:
    """Before a revision: waiting, taking no lock, for long transactions in its way."""

    name: ClassVar[str] = "waiting"
    revision: str
    blockers: list[dict[str, Any]]
    budget_s: float


@dataclass(frozen=True, slots=True)
class LockRetry:
    name: ClassVar[str] = "retry"
    revision: str
    attempt: int
    of: int
    delay_s: float
    lock_timeout_ms: int | None
    statement: str
    blockers: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class IndexProgress:
    """PostgreSQL's progress view of an index build or table rewrite in flight."""

    name: ClassVar[str] = "index_progress"
    revision: str | None
    command: str | None
    phase: str | None
    running_s: float
    blocks_done: int | None = None
    blocks_total: int | None = None
    tuples_done: int | None = None
    tuples_total: int | None = None
    lockers_done: int | None = None
    lockers_total: int | None = None
    blockers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BackfillBatch:
    """``abmigrate.ops.backfill`` committed a batch; ``rows`` counts the whole call so far."""

    name: ClassVar[str] = "backfill"
    table: str
    batch: int
    rows: int
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class InvalidIndexDropped:
    """``abmigrate.ops`` dropped an invalid index an earlier, interrupted try left."""

    name: ClassVar[str] = "invalid_index_dropped"
    index: str


@dataclass(frozen=True, slots=True)
class DryRunSkipped:
    """A statement that cannot run inside a transaction, left out of the dry run."""

    name: ClassVar[str] = "dry_run_skipped"
    revision: str
    sql: str
    object: str | None = None


@dataclass(frozen=True, slots=True)
class Verified:
    """The pipeline's verification after applying (see apply.verify)."""

    name: ClassVar[str] = "verified"
    verification: Verification


Event = (
    TargetChosen
    | LockWaiting
    | LockTaken
    | DowngradeSql
    | ModelsPredicted
    | GatesOverridden
    | BackupStarted
    | BackupFinished
    | StepStarted
    | StepFinished
    | StatementRun
    | StepBlocked
    | WaitingForBlockers
    | LockRetry
    | IndexProgress
    | BackfillBatch
    | InvalidIndexDropped
    | DryRunSkipped
    | Verified
)

Observer = Callable[[Event], None]


def event_record(event: Event) -> dict[str, Any]:
    """The event as JSON-able data: ``{"event": name, ...its fields}``."""
    if isinstance(event, TargetChosen):
        return {
            "event": event.name,
            "environment": event.environment,
            "database": event.database,
            "policy": event.policy.to_record(),
        }
    return {"event": event.name, **asdict(event)}
