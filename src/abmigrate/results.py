"""Result records: what every command returns, rendered once to human or JSON output."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    # Only named in annotations: the records module imports no package at run time.
    from abmigrate.lint.model import Finding

__all__ = [
    "AppliedStep",
    "BackupList",
    "BackupRecord",
    "BackupVerification",
    "CheckFailure",
    "CheckOutcome",
    "CheckReport",
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
    "RunRecord",
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
    # each head's branch labels, when the heads are several by design (HeadsResult's)
    branches: dict[str, list[str]] = field(default_factory=dict)


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
    """The heads; ``multiple``: several of them. ``branches``: each head's branch labels
    when the heads are several by design, one per labelled branch (empty otherwise)."""

    heads: list[PendingRevision]
    multiple: bool
    branches: dict[str, list[str]] = field(default_factory=dict)


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


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The items of ``data`` that name a field of ``cls``: records written by another
    abmigrate version may hold more keys, or fewer."""
    names = {item.name for item in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def _applied_step(data: dict[str, Any]) -> AppliedStep:
    known = _known(AppliedStep, data)
    known.setdefault("revision", "?")
    known.setdefault("message", "")
    known.setdefault("direction", "upgrade")
    known.setdefault("elapsed_s", 0.0)
    return AppliedStep(**known)


def _data_loss(data: dict[str, Any]) -> DataLoss:
    known = _known(DataLoss, data)
    for name in ("column", "rows"):
        known.setdefault(name, None)
    known.setdefault("revision", "?")
    known.setdefault("table", "?")
    known.setdefault("message", "")
    return DataLoss(**known)


def _verification(data: dict[str, Any]) -> Verification:
    known: dict[str, Any] = {
        "ok": False,
        "current": [],
        "expected": [],
        "schema": {},
        "drift": None,
        "drift_before_run": [],
        "drift_not_checked": [],
        "verify_models": "",
        "health": {},
        "problems": [],
        "warnings": [],
    }
    known.update(_known(Verification, data))
    return Verification(**known)


# The fields every run record carries; the others only where they apply (a dry run, an
# acknowledgement, a forced stamp, a failure), so the JSON of one kind of run does not fill
# with another kind's nulls.
_RUN_FIELDS = (
    "run_id",
    "environment",
    "database",
    "dialect",
    "direction",
    "target",
    "from_revisions",
    "to_revisions",
    "planned",
    "applied",
    "in_flight",
    "started_at",
    "finished_at",
    "outcome",
    "error",
    "backup",
    "actor",
    "versions",
    "overrides",
    "warnings",
    "data_loss",
    "models_prediction",
)
_RUN_FIELDS_IF_SET = (
    "dry_run",
    "skipped",
    "method",
    "verification",
    "incident_path",
    "checksums",
    "reason",
    "differences",
)


@dataclass
class RunRecord(Record):
    """One run as the journal keeps it (apply.journal): the ``record`` column of its row in
    ``abmigrate_journal`` and its lines in the local log. Written at the start of a run and
    rewritten as it goes; ``outcome`` is ``running`` until it ends.

    ``direction`` is ``upgrade`` or ``downgrade`` for migrations, ``acknowledge`` for
    reviewed script changes (``checksums``, ``reason``), ``stamp`` for a forced stamp
    (``reason``, ``differences``). Keys this version does not know (another version's, or
    the local log's ``event``) are kept in ``extra`` and written back unchanged."""

    run_id: str
    direction: str
    environment: str
    database: str = ""
    started_at: str = ""
    outcome: str = "running"
    finished_at: str | None = None
    dialect: str | None = None
    target: str | None = None
    from_revisions: list[str] = field(default_factory=list)
    to_revisions: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    applied: list[AppliedStep] = field(default_factory=list)
    in_flight: str | None = None  # the revision being applied (or that failed)
    error: str | None = None
    backup: dict[str, Any] | None = None  # the BackupRecord taken before the run
    actor: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    overrides: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    data_loss: list[DataLoss] = field(default_factory=list)
    models_prediction: dict[str, Any] | None = None
    verification: Verification | None = None
    incident_path: str | None = None
    dry_run: bool = False
    skipped: list[dict[str, str]] | None = None  # a dry run's statements it could not run
    method: str | None = None  # how a dry run undid its work
    checksums: dict[str, str | None] | None = None  # acknowledge: revision -> new sha256
    reason: str | None = None
    differences: list[str] | None = None  # a forced stamp: how the schema differed
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_migration(self) -> bool:
        return self.direction in ("upgrade", "downgrade")

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {name: getattr(self, name) for name in _RUN_FIELDS}
        record.update(
            (name, getattr(self, name))
            for name in _RUN_FIELDS_IF_SET
            if getattr(self, name) not in (None, False)
        )
        record["applied"] = [step.to_record() for step in self.applied]
        record["data_loss"] = [loss.to_record() for loss in self.data_loss]
        if self.verification is not None:
            record["verification"] = self.verification.to_record()
        for key, value in self.extra.items():
            record.setdefault(key, value)
        return record

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> RunRecord:
        """A record as written by any abmigrate version: missing keys take their defaults,
        unknown ones go to ``extra``."""
        names = {item.name for item in fields(cls)} - {"extra"}
        known = {key: value for key, value in data.items() if key in names}
        extra = {key: value for key, value in data.items() if key not in names}
        known["run_id"] = str(known.get("run_id") or "?")
        known["direction"] = str(known.get("direction") or "run")
        known["environment"] = str(known.get("environment") or "")
        for name in ("from_revisions", "to_revisions", "planned"):
            known[name] = [str(revision) for revision in known.get(name) or []]
        for name in ("actor", "versions"):
            known[name] = known.get(name) or {}
        for name in ("overrides", "warnings"):
            known[name] = known.get(name) or []
        known["applied"] = [
            _applied_step(step) for step in known.get("applied") or [] if isinstance(step, dict)
        ]
        known["data_loss"] = [
            _data_loss(loss) for loss in known.get("data_loss") or [] if isinstance(loss, dict)
        ]
        verification = known.get("verification")
        known["verification"] = (
            _verification(verification) if isinstance(verification, dict) else None
        )
        known["dry_run"] = bool(known.get("dry_run"))
        return cls(**known, extra=extra)


@dataclass
class JournalResult(Record):
    environment: str
    database: str
    source: str
    runs: list[RunRecord]

    def to_record(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "database": self.database,
            "source": self.source,
            "runs": [run.to_record() for run in self.runs],
        }


@dataclass
class JournalRun(Record):
    """One run of the journal, its whole record (``abmigrate journal RUN``)."""

    environment: str
    database: str
    source: str
    run: RunRecord

    def to_record(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "database": self.database,
            "source": self.source,
            "run": self.run.to_record(),
        }


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


# -- checks (abmigrate.check.checks) -----------------------------------------------------


@dataclass
class CheckFailure(Record):
    """One precise failure: which revision, what happened, the SQL and the difference."""

    check: str
    message: str
    revision: str | None = None
    path: str | None = None
    line: int | None = None
    detail: str | None = None
    sql: str | None = None
    differences: list[str] = field(default_factory=list)
    hint: str | None = None


@dataclass
class CheckOutcome(Record):
    name: str
    status: str  # passed | failed | skipped
    summary: str
    elapsed_s: float
    failures: list[CheckFailure] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "elapsed_s": self.elapsed_s,
            "failures": [failure.to_record() for failure in self.failures],
        }


@dataclass
class CheckReport(Record):
    project: str
    scratch_server: str
    outcomes: list[CheckOutcome]

    @property
    def passed(self) -> bool:
        return all(outcome.status != "failed" for outcome in self.outcomes)

    @property
    def failures(self) -> list[CheckFailure]:
        return [failure for outcome in self.outcomes for failure in outcome.failures]

    def to_record(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "scratch_server": self.scratch_server,
            "passed": self.passed,
            "checks": [outcome.to_record() for outcome in self.outcomes],
        }
