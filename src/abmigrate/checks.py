"""The named checks behind ``abmigrate check`` and the pytest plugin.

Each check is a plain function taking a :class:`CheckContext` and returning an
:class:`Outcome`; its docstring says why the check exists (the CLI lists it). Checks are
selected by name; an unknown name is an error that lists the valid ones::

    from abmigrate.checks import CheckContext, run_checks
    report = run_checks(CheckContext.for_project(Path("alembic.ini")), ["round_trip"])
    assert report.passed, report.to_record()

Checks that need a database create their own scratch database next to ``server_url``
(see :mod:`abmigrate.scratch`) and drop it afterwards; they never touch the database that
``server_url`` names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.alembic_bridge import AlembicProject
from abmigrate.errors import AbmigrateError, ConfigError
from abmigrate.plan import message_of
from abmigrate.results import Record
from abmigrate.settings import mask_url

if TYPE_CHECKING:
    from abmigrate.scratch import ScratchDatabase

__all__ = [
    "CHECKS",
    "CheckContext",
    "CheckFailure",
    "CheckOutcome",
    "CheckReport",
    "CheckSpec",
    "Outcome",
    "register",
    "run_checks",
    "select_checks",
]


@dataclass
class CheckFailure(Record):
    """One precise failure: which revision, what happened, the SQL and the difference."""

    check: str
    message: str
    revision: str | None = None
    path: str | None = None
    detail: str | None = None
    sql: str | None = None
    differences: list[str] = field(default_factory=list)
    hint: str | None = None


@dataclass
class Outcome:
    """What a check function returns."""

    failures: list[CheckFailure] = field(default_factory=list)
    summary: str = ""
    skipped: str | None = None


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


@dataclass
class CheckContext:
    """What the checks work on.

    ``server_url`` names where scratch databases are created (None: temporary SQLite files).
    ``since`` is the base for ``lint``: a revision id or a git ref.
    """

    alembic_ini: Path
    server_url: str | None = None
    since: str | None = None
    lint_config: dict[str, Any] = field(default_factory=dict)
    _project: AlembicProject | None = field(default=None, repr=False)

    @property
    def project(self) -> AlembicProject:
        if self._project is None:
            self._project = AlembicProject(self.alembic_ini)
        return self._project

    @property
    def scratch_server(self) -> str:
        return mask_url(self.server_url) if self.server_url else "temporary SQLite files"

    def scratch(self, label: str) -> Any:
        """A context manager yielding a fresh scratch database (dropped on exit)."""
        from abmigrate.scratch import scratch_database

        return scratch_database(self.server_url, label=label)

    def project_on(self, scratch: ScratchDatabase) -> AlembicProject:
        """The project with its env.py pointed at ``scratch``."""
        return AlembicProject(self.alembic_ini, scratch.url)


CheckFunction = Callable[[CheckContext], Outcome]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    function: CheckFunction
    default: bool
    uses_database: bool

    @property
    def rationale(self) -> str:
        return " ".join((self.function.__doc__ or "").split())

    @property
    def summary(self) -> str:
        return message_of(self.function.__doc__)


CHECKS: dict[str, CheckSpec] = {}


def register(
    name: str, *, default: bool = True, uses_database: bool = False
) -> Callable[[CheckFunction], CheckFunction]:
    """Add a check to the registry under ``name`` (``default``: run when none are named)."""

    def decorate(function: CheckFunction) -> CheckFunction:
        CHECKS[name] = CheckSpec(name, function, default, uses_database)
        return function

    return decorate


def select_checks(only: Sequence[str] | None = None, skip: Sequence[str] = ()) -> list[CheckSpec]:
    """The checks to run, in registry order; unknown names are a ConfigError listing all."""
    unknown = [name for name in (*(only or ()), *skip) if name not in CHECKS]
    if unknown:
        raise ConfigError(
            f"unknown check {', '.join(repr(name) for name in unknown)}",
            hint="valid checks: " + ", ".join(CHECKS),
        )
    wanted = set(only) if only else {spec.name for spec in CHECKS.values() if spec.default}
    return [spec for spec in CHECKS.values() if spec.name in wanted and spec.name not in skip]


def run_checks(
    context: CheckContext, only: Sequence[str] | None = None, skip: Sequence[str] = ()
) -> CheckReport:
    """Run the selected checks; a check that raises a user error fails with its message."""
    outcomes: list[CheckOutcome] = []
    for spec in select_checks(only, skip):
        started = time.monotonic()
        try:
            outcome = spec.function(context)
        except AbmigrateError as exc:
            if exc.exit_code != 1:
                raise  # configuration/connection problems stop the run (exit 2)
            outcome = Outcome(
                [CheckFailure(spec.name, exc.message, hint=exc.hint)], summary=exc.message
            )
        elapsed = round(time.monotonic() - started, 3)
        if outcome.skipped is not None:
            status, summary = "skipped", outcome.skipped
        else:
            status = "failed" if outcome.failures else "passed"
            summary = outcome.summary
        outcomes.append(CheckOutcome(spec.name, status, summary, elapsed, outcome.failures))
    return CheckReport(
        project=str(context.alembic_ini),
        scratch_server=context.scratch_server,
        outcomes=outcomes,
    )


# --------------------------------------------------------------------------- graph checks


def _path(project: AlembicProject, revision: str) -> str | None:
    try:
        return str(project.get(revision).path)
    except AbmigrateError:
        return None


@register("single_head")
def single_head(context: CheckContext) -> Outcome:
    """The history has exactly one head.

    Two heads mean two branches were developed in parallel and never merged: ``upgrade
    head`` refuses to run ("Multiple head revisions are present"), usually discovered at
    deploy time. Merge them (``abmigrate merge``) before the code lands.
    """
    project = context.project
    heads = project.heads()
    if len(heads) <= 1:
        return Outcome(summary=f"one head: {heads[0]}" if heads else "no revisions")
    return Outcome(
        [
            CheckFailure(
                "single_head",
                f"revision {head} ({message_of(project.get(head).doc)}) is one of"
                f" {len(heads)} heads: {', '.join(heads)}",
                revision=head,
                path=_path(project, head),
                hint='merge them: abmigrate merge -m "merge heads"',
            )
            for head in heads
        ],
        summary=f"{len(heads)} heads",
    )


@register("single_root")
def single_root(context: CheckContext) -> Outcome:
    """The history has exactly one root (one revision with no parent).

    A second root usually comes from a revision whose ``down_revision`` was left ``None``
    (a copied file, a "baseline" reset): Alembic then treats it as an independent history and
    an empty database gets both applied in an arbitrary order.
    """
    project = context.project
    roots = project.bases()
    if len(roots) <= 1:
        return Outcome(summary=f"one root: {roots[0]}" if roots else "no revisions")
    return Outcome(
        [
            CheckFailure(
                "single_root",
                f"revision {root} ({message_of(project.get(root).doc)}) is one of"
                f" {len(roots)} roots: {', '.join(roots)}",
                revision=root,
                path=_path(project, root),
                hint="set its down_revision to the revision it follows",
            )
            for root in roots
        ],
        summary=f"{len(roots)} roots",
    )


@register("graph_integrity")
def graph_integrity(context: CheckContext) -> Outcome:
    """Every parent exists, no revision id is defined twice, every id fits the version table.

    A ``down_revision`` naming a file or a deleted revision breaks every command; a duplicate
    id makes Alembic silently pick one of the two files; an id longer than 32 characters
    cannot be stored in ``alembic_version.version_num`` and fails only when applied.
    """
    project = context.project
    failures = [
        CheckFailure(
            "graph_integrity",
            f"revision {revision} is defined more than once: {', '.join(paths)}",
            revision=revision,
            path=paths[0],
            hint="give one of the files a new revision id",
        )
        for revision, paths in project.duplicate_revisions().items()
    ]
    for problem in project.graph_problems():
        if problem.code in ("multiple_heads", "multiple_roots"):
            continue  # single_head / single_root report these
        revision = problem.revisions[0] if problem.revisions else None
        failures.append(
            CheckFailure(
                "graph_integrity",
                problem.message,
                revision=revision,
                path=_path(project, revision) if revision else None,
                detail=problem.code,
            )
        )
    if failures:
        return Outcome(failures, summary=f"{len(failures)} problem(s)")
    return Outcome(summary=f"{len(project.revisions())} revisions, all parents known")


# --------------------------------------------------------------------------- round trip


def _round_trip_differences(before: Any, after: Any) -> list[str]:
    from abmigrate.fingerprint import diff

    lines = []
    for difference in diff(before, after):
        text = difference.describe()
        text = text.replace(" (in the database only)", " — left behind by the downgrade")
        text = text.replace(" (not in the database)", " — gone after the downgrade")
        lines.append(text)
    return lines


def _walk(context: CheckContext, check: str, hooks: Any = None) -> Outcome:
    from abmigrate.fingerprint import fingerprint_connection
    from abmigrate.roundtrip import walk_round_trip

    with context.scratch(check) as scratch:
        project = context.project_on(scratch)
        report = walk_round_trip(
            project,
            scratch,
            fingerprint=fingerprint_connection,
            differences=_round_trip_differences,
            hooks=hooks,
        )
    failures = [
        CheckFailure(
            check,
            f"revision {failure.revision} ({message_of(context.project.get(failure.revision).doc)}):"
            f" {failure.message}",
            revision=failure.revision,
            path=failure.path,
            detail=failure.detail,
            sql=failure.sql,
            differences=failure.differences,
            hint=_hint(failure.stage),
        )
        for failure in report.failures
    ]
    if report.not_checked:
        failures.append(
            CheckFailure(
                check,
                f"{len(report.not_checked)} revision(s) not checked: they come after a revision"
                f" whose upgrade fails ({', '.join(report.not_checked)})",
            )
        )
    total = len(report.order)
    if failures:
        return Outcome(failures, summary=f"{len(report.failures)} of {total} revision(s) fail")
    return Outcome(summary=f"{len(report.checked)} revision(s) round-tripped")


def _hint(stage: str) -> str:
    return {
        "compare": "make downgrade() undo exactly what upgrade() does (drop what it creates)",
        "downgrade": "write a downgrade() that undoes upgrade(); if it truly cannot be undone,"
        " say so in the docstring and skip this check for it",
        "upgrade": "the upgrade fails on a database at its parent revision: fix upgrade()",
        "upgrade again": "the downgrade leaves something the upgrade trips over: undo it all",
        "data": "the downgrade drops data the upgrade kept: restore it in downgrade()",
    }.get(stage, "")


@register("round_trip", uses_database=True)
def round_trip(context: CheckContext) -> Outcome:
    """Every downgrade exactly undoes its upgrade.

    For each revision (branched histories too, each once, walking the history a single time):
    upgrade to it, downgrade one step, and compare the schema with the one before the upgrade;
    then upgrade again and go on. A downgrade that forgets an index or raises
    NotImplementedError is found here, not during an incident when a rollback is needed.
    """
    return _walk(context, "round_trip")
