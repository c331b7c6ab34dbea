"""Result records: what every command returns, rendered once to human or JSON output."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    # Only named in annotations: the records module imports no package at run time.
    from abmigrate.lint.model import Finding

__all__ = [
    "AppliedStep",
    "BackupList",
    "BackupRecord",
    "BackupVerification",
    "CurrentResult",
    "DataLoss",
    "FleetRun",
    "FleetSurvey",
    "HeadsResult",
    "HistoryEntry",
    "HistoryResult",
    "JournalResult",
    "JournalRun",
    "MigrationReport",
    "PendingRevision",
    "Plan",
    "PreflightResult",
    "Record",
    "RestoreResult",
    "RevisionCreated",
    "RunResult",
    "StampResult",
    "Status",
    "Step",
    "TargetOutcome",
    "TargetState",
    "Verification",
]

State = Literal["uninitialized", "up_to_date", "behind", "unknown_revision", "ahead_or_branched"]
Direction = Literal["upgrade", "downgrade"]


def _with_findings(record: Any, findings: list[Finding]) -> dict[str, Any]:
    """``record`` as data, its lint findings in their own JSON form (``Finding.to_record``
    names fields differently from the dataclass), not walked twice by ``asdict``."""
    return {
        **asdict(replace(record, findings=[])),
        "findings": [finding.to_record() for finding in findings],
    }


class Record:
    """A dataclass that serialises itself to plain JSON-able data."""

    def to_record(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass
class PendingRevision(Record):
    revision: str
    message: str


@dataclass
class CurrentResult(Record):
    environment: str
    database: str
    dialect: str
    current: list[str]
    initialized: bool
    unknown: list[str] = field(default_factory=list)


@dataclass
class Status(Record):
    environment: str
    database: str
    dialect: str
    current: list[str]
    heads: list[str]
    pending: list[PendingRevision]
    state: State
    unknown: list[str] = field(default_factory=list)
    graph_problems: list[dict[str, Any]] = field(default_factory=list)
    last_run: dict[str, Any] | None = None
    last_backup: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class HistoryEntry(Record):
    revision: str
    down_revisions: list[str]
    message: str
    is_head: bool
    is_merge: bool
    applied: bool | None
    path: str


@dataclass
class HistoryResult(Record):
    environment: str | None
    database: str | None
    entries: list[HistoryEntry]

    def to_record(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "database": self.database,
            "revisions": [entry.to_record() for entry in self.entries],
        }


@dataclass
class HeadsResult(Record):
    heads: list[PendingRevision]
    multiple: bool


@dataclass
class PreflightResult(Record):
    """One data-preflight check run against the live rows (abmigrate.lint.preflight_run).

    ``ok`` is False when the step would fail on ``count`` rows (``fails``), None when the
    check could not run (``message`` says why); ``sample`` holds a few offending keys."""

    revision: str
    check: str
    table: str
    column: str | None
    columns: list[str]
    count: int | None
    offending_rows: int | None
    sample: list[Any]
    ok: bool | None
    fails: bool
    message: str


@dataclass
class Step(Record):
    """One revision to apply (or to undo), with what analysis found about it."""

    revision: str
    message: str
    direction: Direction
    from_revisions: list[str]
    to_revisions: list[str]
    sql: str | None = None
    sql_error: str | None = None
    findings: list[Finding] = field(default_factory=list)
    preflight: list[PreflightResult] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return _with_findings(self, self.findings)


@dataclass
class DataLoss(Record):
    """A table or column a downgrade drops, and how much data it holds there now.

    ``rows`` counts rows (a table) or non-null values (a column); None when it could not be
    counted — never taken for "nothing to lose"."""

    revision: str
    table: str
    column: str | None
    rows: int | None
    message: str

    @property
    def loses_data(self) -> bool:
        return self.rows != 0


@dataclass
class Plan(Record):
    """The ordered steps from the database's current revision(s) to a target.

    ``plan`` shows this object and ``upgrade``/``downgrade`` execute this same object.
    """

    environment: str
    database: str
    dialect: str
    direction: Direction
    current: list[str]
    target: str
    target_revisions: list[str]
    steps: list[Step]
    data_loss: list[DataLoss] = field(default_factory=list)
    # Will the schema at the target match the models? (abmigrate.apply.model_prediction)
    models: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "database": self.database,
            "dialect": self.dialect,
            "direction": self.direction,
            "current": self.current,
            "target": self.target,
            "target_revisions": self.target_revisions,
            "steps": [step.to_record() for step in self.steps],
            "data_loss": [loss.to_record() for loss in self.data_loss],
            "models": self.models,
        }


@dataclass
class AppliedStep(Record):
    revision: str
    message: str
    direction: Direction
    elapsed_s: float
    script_sha256: str | None = None
    attempts: int = 1
    waited_s: float = 0.0


@dataclass
class Verification(Record):
    """What the verification after an apply found (abmigrate.apply.verify)."""

    ok: bool
    current: list[str]  # what the database records now
    expected: list[str]  # the plan's target
    schema: dict[str, Any]  # compared with the revisions' schema (verify_schema = "replay")?
    drift: list[str] | None  # differences from the models; None when not compared
    drift_before_run: list[str]
    drift_not_checked: list[str]  # set aside by a dry run (objects it could not build)
    verify_models: str
    health: dict[str, Any]
    problems: list[str]
    warnings: list[str]


@dataclass
class RunResult(Record):
    environment: str
    database: str
    direction: Direction
    from_revisions: list[str]
    to_revisions: list[str]
    applied: list[AppliedStep]
    elapsed_s: float
    dry_run: bool = False
    # How the dry run undid its work, and statements it could not run (see dry_run.py).
    dry_run_method: str | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    run_id: str | None = None
    backup: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    verification: Verification | None = None  # None: nothing was applied, nothing to verify
    target: str | None = None
    overrides: list[dict[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # the plan's, each naming its revision
    data_loss: list[DataLoss] = field(default_factory=list)
    journal: str | None = None
    # The plan step's prediction: will the schema at the target match the models?
    models_prediction: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        record = _with_findings(self, self.findings)
        # The JSON contract: an empty object, not null, when nothing was verified.
        record["verification"] = record["verification"] or {}
        return record


@dataclass
class RevisionCreated(Record):
    revision: str
    message: str
    path: str
    down_revisions: list[str]
    findings: list[Finding] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return _with_findings(self, self.findings)


@dataclass
class StampResult(Record):
    environment: str
    database: str
    before: list[str]
    after: list[str]
    forced: bool = False
    reason: str | None = None
    differences: list[str] = field(default_factory=list)


@dataclass
class BackupRecord(Record):
    """One backup: what `backup` returns and what the pipeline names in its output."""

    id: str
    environment: str
    database: str
    dialect: str
    path: str
    created_at: str
    revisions: list[str]
    size: int
    sha256: str | None
    files: list[dict[str, Any]]
    format: str
    compression: str
    verified: bool
    restore_tested: bool
    reason: str
    tables: int = 0
    duration_s: float = 0.0
    age_s: float | None = None
    deleted: list[str] = field(default_factory=list)


@dataclass
class BackupList(Record):
    environment: str
    backup_dir: str
    backups: list[BackupRecord]

    def to_record(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "backup_dir": self.backup_dir,
            "backups": [backup.to_record() for backup in self.backups],
        }


@dataclass
class BackupVerification(Record):
    id: str
    path: str
    ok: bool
    checks: list[str]
    problems: list[str] = field(default_factory=list)
    restore_test: dict[str, Any] | None = None


@dataclass
class RestoreResult(Record):
    id: str
    target: str
    dialect: str
    replaced_existing: bool
    revisions: list[str]
    elapsed_s: float
    pre_restore_backup: dict[str, Any] | None = None


@dataclass
class JournalResult(Record):
    environment: str
    database: str
    source: str
    runs: list[dict[str, Any]]


@dataclass
class JournalRun(Record):
    """One run of the journal, its whole record (``abmigrate journal RUN``)."""

    environment: str
    database: str
    source: str
    run: dict[str, Any]


# -- fleets (abmigrate.fleet) ------------------------------------------------------------

FleetOutcome = Literal["succeeded", "up_to_date", "failed", "refused", "not_run"]


@dataclass
class TargetOutcome(Record):
    """What a fleet run did to one target: the one-line summary of the fleet report."""

    name: str
    database: str  # masked
    schema: str | None
    cohort: str  # "canary", "wave 1", …
    outcome: FleetOutcome
    from_revisions: list[str] = field(default_factory=list)
    to_revisions: list[str] = field(default_factory=list)
    applied: int = 0
    duration_s: float = 0.0
    incident: str | None = None
    error: str | None = None
    run_id: str | None = None
    backup: str | None = None


@dataclass
class FleetRun(Record):
    """A fleet upgrade or downgrade: every target's outcome, and why it halted, if it did."""

    fleet: str
    environment: str
    direction: Direction
    target: str
    shard: str | None
    concurrency: int
    failure_budget: int
    continue_on_error: bool
    elapsed_s: float
    targets: list[TargetOutcome]
    halted: str | None = None

    def counts(self) -> dict[str, int]:
        """How many targets had each outcome (every outcome, zeros included)."""
        found = dict.fromkeys(get_args(FleetOutcome), 0)
        for target in self.targets:
            found[target.outcome] += 1
        return found

    @property
    def ok(self) -> bool:
        return self.halted is None and all(
            target.outcome in ("succeeded", "up_to_date") for target in self.targets
        )

    def to_record(self) -> dict[str, Any]:
        return {**super().to_record(), "counts": self.counts(), "ok": self.ok}


@dataclass
class TargetState(Record):
    """One target in ``fleet status|plan|diagnose``."""

    name: str
    database: str  # masked
    schema: str | None
    state: str  # the status/diagnose state, or "error"
    current: list[str] = field(default_factory=list)
    pending: int = 0
    cohort: str | None = None
    last_run: str | None = None  # the outcome of the journal's last run
    fingerprint: str | None = None
    drift: str | None = None  # how the schema differs from its recorded revision's (or its peers')
    recommendation: str | None = None
    error: str | None = None


@dataclass
class FleetSurvey(Record):
    """``fleet status``, ``fleet plan`` or ``fleet diagnose``: every target, read only."""

    fleet: str
    environment: str
    command: str
    heads: list[str]
    shard: str | None
    targets: list[TargetState]
    target: str | None = None
    # Fleet drift: per recorded revision, how many targets share the usual schema and which
    # differ (``fleet status``).
    groups: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for target in self.targets:
            found[target.state] = found.get(target.state, 0) + 1
        return found

    @property
    def drifted(self) -> list[str]:
        return [target.name for target in self.targets if target.drift]

    def to_record(self) -> dict[str, Any]:
        return {**super().to_record(), "counts": self.counts()}


@dataclass
class MigrationReport(Record):
    """Everything a reviewer of a migration looks at, as the records of the commands that
    produce each part (``status``, ``graph``, ``plan --sql``, a rollback's ``plan --down``,
    ``journal``, ``backups``, a saved ``rehearse`` record): what ``abmigrate report``
    renders as one HTML page. A part that could not be gathered is None, and ``errors``
    says why, so the page states it rather than leaving the part out."""

    environment: str
    database: str
    dialect: str
    generated_at: str
    version: str
    status: dict[str, Any] | None
    graph: dict[str, Any] | None
    plan: dict[str, Any] | None
    rollback: dict[str, Any] | None
    journal: list[dict[str, Any]] | None
    backups: list[dict[str, Any]] | None
    rehearsal: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)
