"""The named checks behind ``abmigrate check`` and the pytest plugin.

Each check is a plain function taking a :class:`CheckContext` and returning an
:class:`Outcome`; its docstring says why the check exists (the CLI lists it). Checks are
selected by name; an unknown name is an error that lists the valid ones::

    from abmigrate.check.checks import CheckContext, run_checks
    report = run_checks(CheckContext.for_project(Path("alembic.ini")), ["round_trip"])
    assert report.passed, report.to_record()

Checks that need a database create their own scratch database next to ``server_url``
(see :mod:`abmigrate.db.scratch`) and drop it afterwards; they never touch the database that
``server_url`` names.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.bridge.graph import describe_branches
from abmigrate.bridge.plan import message_of
from abmigrate.bridge.project import VERSION_NUM_LENGTH, AlembicProject, GraphProblem
from abmigrate.config.settings import Environment, Policy, Settings, mask_url
from abmigrate.errors import AbmigrateError, ConfigError
from abmigrate.results import CheckFailure, CheckOutcome, CheckReport

if TYPE_CHECKING:
    from abmigrate.config.workspace import Workspace
    from abmigrate.db.scratch import ScratchDatabase

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
class Outcome:
    """What a check function returns."""

    failures: list[CheckFailure] = field(default_factory=list)
    summary: str = ""
    skipped: str | None = None


@dataclass
class CheckContext:
    """What the checks work on.

    ``server_url`` names where scratch databases are created (None: temporary SQLite files).
    ``since`` is the base for ``lint``: a revision id or a git ref (None: every revision).
    ``settings``/``environment`` give lint its configuration and models their location;
    without them the checks use the defaults.
    """

    alembic_ini: Path
    server_url: str | None = None
    since: str | None = None
    settings: Settings | None = None
    environment: Environment | None = None
    _project: AlembicProject | None = field(default=None, repr=False)
    # While run_checks runs several checks that need a database: the template database at
    # the baseline their scratch databases copy (see starting_point), None without one.
    _template: str | None = field(default=None, repr=False)

    @property
    def project(self) -> AlembicProject:
        if self._project is None:
            flask_app = None
            if self.settings is not None:
                name = self.environment.name if self.environment is not None else None
                flask_app = self.settings.flask_app_for(name)
            self._project = AlembicProject(self.alembic_ini, flask_app=flask_app)
        return self._project

    @property
    def scratch_server(self) -> str:
        return mask_url(self.server_url) if self.server_url else "temporary SQLite files"

    @contextlib.contextmanager
    def scratch(self, label: str) -> Iterator[ScratchDatabase]:
        """A fresh scratch database (dropped on exit), at the project's baseline when it
        declares one, with ``$DATABASE_URL`` and every environment variable that names the
        ``--url`` database pointed at it while the block runs (env.py may read one instead
        of ``sqlalchemy.url``). The project's revision scripts are loaded while the server
        creates it."""
        from abmigrate.bridge.env_run import pointing_env_at
        from abmigrate.db.scratch import scratch_database

        with (
            scratch_database(
                self.server_url,
                label=label,
                prepare=self._prepare,
                meanwhile=self._load_scripts,
                template=self._template,
            ) as scratch,
            pointing_env_at(scratch.url, self.server_url or scratch.url),
        ):
            yield scratch

    @property
    def _prepare(self) -> Callable[[str], None] | None:
        baseline = self.settings.baseline if self.settings is not None else None
        return baseline.apply if baseline is not None else None

    @contextlib.contextmanager
    def shared_starting_point(self, checks: Sequence[CheckSpec]) -> Iterator[None]:
        """While the block runs, the scratch databases of ``checks`` copy one template
        database at the project's baseline (PostgreSQL, a baseline declared, more than one
        of them needing a database) instead of each applying the baseline again; a copy is
        a file copy on the server, the baseline may be a whole schema."""
        from abmigrate.db.scratch import starting_point

        prepare = self._prepare
        if prepare is None or sum(spec.uses_database for spec in checks) < 2:
            yield
            return
        with starting_point(self.server_url, prepare) as template:
            self._template = template
            try:
                yield
            finally:
                self._template = None

    def _load_scripts(self, scratch: ScratchDatabase) -> None:
        from abmigrate.bridge.env_run import pointing_env_at

        # Loaded as the check would load them: with the environment naming the scratch
        # database. A script that fails to load fails the check later, as it always did.
        with (
            pointing_env_at(scratch.url, self.server_url or scratch.url),
            contextlib.suppress(Exception),
        ):
            self.project.revisions()

    def project_on(self, scratch: ScratchDatabase) -> AlembicProject:
        """The project with its env.py pointed at ``scratch``."""
        return self.project.for_url(scratch.url)

    def workspace(self, url: str | None = None) -> Workspace:
        """A workspace for the lint engine and model loading (``url``: a scratch database)."""
        from abmigrate.config.workspace import Workspace

        settings = self.settings or Settings(alembic_ini=self.alembic_ini)
        environment = self.environment or Environment("check", "", Policy())
        if url is not None:
            environment = Environment(environment.name, url, environment.policy)
        project = self.project.for_url(url) if url else self.project
        return Workspace(settings, environment, project)


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
    selected = select_checks(only, skip)
    with context.shared_starting_point(selected):
        for spec in selected:
            outcomes.append(_run_check(context, spec))
    return CheckReport(
        project=str(context.alembic_ini),
        scratch_server=context.scratch_server,
        outcomes=outcomes,
    )


def _run_check(context: CheckContext, spec: CheckSpec) -> CheckOutcome:
    """One check; a user error with exit code 1, or the project's own exception, fails it."""
    started = time.monotonic()
    try:
        outcome = spec.function(context)
    except AbmigrateError as exc:
        if exc.exit_code != 1:
            raise  # configuration/connection problems stop the run (exit 2)
        outcome = Outcome(
            [CheckFailure(spec.name, exc.message, hint=exc.hint)], summary=exc.message
        )
    except Exception as exc:
        # A project's own bug surfacing inside a check (a migration or env.py raising
        # while models are compared, say) fails that check; the others still run.
        lines = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {lines[0] if lines else ''}"
        outcome = Outcome(
            [
                CheckFailure(
                    spec.name,
                    message,
                    hint="raised by the project's code (env.py, a revision or the models)",
                )
            ],
            summary=message,
        )
    elapsed = round(time.monotonic() - started, 3)
    if outcome.skipped is not None:
        status, summary = "skipped", outcome.skipped
    else:
        status = "failed" if outcome.failures else "passed"
        summary = outcome.summary
    return CheckOutcome(spec.name, status, summary, elapsed, outcome.failures)


# --------------------------------------------------------------------------- graph checks


def _path(project: AlembicProject, revision: str) -> str | None:
    try:
        return str(project.get(revision).path)
    except AbmigrateError:
        return None


@register("single_head")
def single_head(context: CheckContext) -> Outcome:
    """The history has one head, or one per labelled branch.

    Two heads mean two branches were developed in parallel and never merged: ``upgrade
    head`` refuses to run ("Multiple head revisions are present"), usually discovered at
    deploy time. Merge them (``abmigrate merge``) before the code lands. Heads each in its
    own labelled branch (Alembic's ``branch_labels``, as expand/contract histories keep
    them) are by design and pass; a second head inside one labelled branch does not.
    """
    project = context.project
    heads = project.heads()
    if len(heads) <= 1:
        return Outcome(summary=f"one head: {heads[0]}" if heads else "no revisions")
    branches = project.labelled_heads()
    if branches:
        return Outcome(
            summary=f"{len(heads)} heads, one per labelled branch: {describe_branches(branches)}"
        )
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
    """The history has one root (a revision with no parent), or one per labelled branch.

    A second root usually comes from a revision whose ``down_revision`` was left ``None``
    (a copied file, a "baseline" reset): Alembic then treats it as an independent history and
    an empty database gets both applied in an arbitrary order. Roots each in its own labelled
    branch (Alembic's "multiple bases", ``branch_labels``) are by design and pass.
    """
    project = context.project
    roots = project.bases()
    if len(roots) <= 1:
        return Outcome(summary=f"one root: {roots[0]}" if roots else "no revisions")
    branches = project.labelled_roots()
    if branches:
        return Outcome(
            summary=f"{len(roots)} roots, one per labelled branch: {describe_branches(branches)}"
        )
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
    # The bridge finds the problems (declared_problems: from the files alone, for a graph
    # Alembic cannot build); this check words them its own way.
    declared = project.declared_problems()
    failures = [_integrity_failure(problem) for problem in declared]
    dangling = any(problem.code == "dangling_parent" for problem in declared)
    if dangling:  # Alembic cannot build the graph: nothing more to learn from it
        return Outcome(failures, summary=f"{len(failures)} problem(s)")
    for problem in project.graph_problems():
        if problem.code in ("multiple_heads", "multiple_roots", "dangling_parent", "id_too_long"):
            continue  # single_head / single_root / the loop above report these
        failures.append(CheckFailure("graph_integrity", problem.message))
    if failures:
        return Outcome(failures, summary=f"{len(failures)} problem(s)")
    return Outcome(summary=f"{len(project.declared_revisions())} revision(s), all parents known")


_INTEGRITY_HINTS = {
    "duplicate_id": "give one of the files a new revision id",
    "dangling_parent": "down_revision takes a revision id (not a file name) that exists",
    "id_too_long": "rename the revision id (it fails only when applied)",
}


def _integrity_failure(problem: GraphProblem) -> CheckFailure:
    revision = problem.revisions[0]
    message = problem.message
    if problem.code == "dangling_parent":
        message = f"revision {revision} names parent {problem.parent!r}, which no script defines"
    elif problem.code == "id_too_long":
        message = (
            f"revision id {revision!r} is {len(revision)} characters;"
            f" alembic_version.version_num holds {VERSION_NUM_LENGTH}"
        )
    return CheckFailure(
        "graph_integrity",
        message,
        revision=revision,
        path=problem.path,
        hint=_INTEGRITY_HINTS[problem.code],
    )


# --------------------------------------------------------------------------- lint


@register("lint")
def lint(context: CheckContext) -> Outcome:
    """No error-level lint finding in the revisions new since the base (``--since``).

    The linter (``abmigrate lint``) catches locks on hot tables, destructive and backward
    incompatible changes before they reach a database. Older revisions were already
    applied and judged; ``--since`` (a revision id or a git ref such as origin/main)
    limits the gate to what this change adds.
    """
    from abmigrate.lint import lint_workspace
    from abmigrate.lint.selection import select_revisions

    project = context.project
    selected: set[str] | None = None
    base = "every revision"
    if context.since is not None:
        if context.since == "base" or project.known(context.since):
            selected = select_revisions(project, since=context.since)
            base = f"revisions after {context.since}"
        else:
            selected = select_revisions(project, changed_from=context.since)
            base = f"revision files changed since {context.since}"
    result = lint_workspace(context.workspace(), selected, graph=False)
    errors = result.errors
    warnings = len(result.findings) - len(errors)
    summary = f"{len(result.revisions)} revision(s) linted ({base}): {len(errors)} error(s), {warnings} warning(s)"
    return Outcome(
        [
            CheckFailure(
                "lint",
                f"{finding.code} {finding.message}",
                revision=finding.revision,
                path=finding.path,
                line=finding.line,
                sql=finding.sql,
                hint=finding.hint,
            )
            for finding in errors
        ],
        summary=summary,
    )


# --------------------------------------------------------------------------- models


def _model_differences(differences: list[Any]) -> list[str]:
    lines = []
    for difference in differences:
        text = difference.describe()
        text = text.replace(
            " (in the database only)", " — the migrations create it, the models lack it"
        )
        text = text.replace(" (not in the database)", " — in the models, no migration creates it")
        if difference.change == "changed":
            text += " (models → schema at head)"
        lines.append(text)
    return lines


@register("models_match_head", uses_database=True)
def models_match_head(context: CheckContext) -> Outcome:
    """Upgrading an empty database to head gives exactly the models.

    Compared with Alembic's autogenerate (types and server defaults included, PostgreSQL
    enum values too): a difference means a model changed without a revision (the next
    ``revision --autogenerate`` would sweep it into an unrelated change), or a revision did
    something the models do not say.
    """
    from abmigrate.bridge.models import load_models, why_no_models
    from abmigrate.check.roundtrip import topological_order
    from abmigrate.isolation import run_scratch_job
    from abmigrate.state.drift import compare_url_to_models

    with context.scratch("models") as scratch:
        workspace = context.workspace(scratch.url)
        source = load_models(workspace)
        if source is None:
            return Outcome(
                skipped=f"no models: {why_no_models(workspace)} and no `models` is"
                " configured (e.g. models = 'app.models:Base.metadata')"
            )
        project = workspace.project
        run_scratch_job(
            "upgrade_through",
            {"revisions": topological_order(project)},
            project=project,
            scratch=scratch,
        )
        differences = compare_url_to_models(
            scratch.url,
            source.metadata,
            include_object=source.include_object,
            include_name=source.include_name,
        )
    heads = ", ".join(context.project.heads())
    if not differences:
        return Outcome(summary=f"the schema at {heads} matches the models ({source.origin})")
    return Outcome(
        [
            CheckFailure(
                "models_match_head",
                f"the schema at head ({heads}) differs from the models ({source.origin}):"
                f" {len(differences)} difference(s)",
                revision=heads,
                differences=_model_differences(differences),
                hint='write the missing revision: abmigrate revision --autogenerate -m "..."',
            )
        ],
        summary=f"{len(differences)} difference(s) from the models",
    )


# --------------------------------------------------------------------------- round trip


def _round_trip_differences(before: Any, after: Any) -> list[str]:
    from abmigrate.db.fingerprint import diff

    lines = []
    for difference in diff(before, after):
        text = difference.describe()
        text = text.replace(" (in the database only)", " — left behind by the downgrade")
        text = text.replace(" (not in the database)", " — gone after the downgrade")
        lines.append(text)
    return lines


def _walk(context: CheckContext, check: str) -> Outcome:
    from abmigrate.check.roundtrip import WalkReport
    from abmigrate.isolation import run_scratch_job

    with context.scratch(check) as scratch:
        record = run_scratch_job(
            "round_trip",
            {"data": check == "data_round_trip"},
            project=context.project,
            scratch=scratch,
        )
    return _walk_outcome(context, check, WalkReport.from_record(record))


def round_trip_job(
    project: AlembicProject, scratch: ScratchDatabase, params: dict[str, Any], emit: Any
) -> dict[str, Any]:
    """Walk the history on ``scratch`` (see :func:`abmigrate.check.roundtrip.walk_round_trip`; with
    ``data``, :func:`abmigrate.check.datatrip.walk_data_round_trip`); the report as a record."""
    from abmigrate.check.roundtrip import walk_round_trip
    from abmigrate.db.fingerprint import fingerprint_connection

    on_scratch = project.for_url(scratch.url)
    if params.get("data"):
        from abmigrate.check.datatrip import walk_data_round_trip

        return walk_data_round_trip(on_scratch, scratch).to_record()
    report = walk_round_trip(
        on_scratch,
        scratch,
        fingerprint=fingerprint_connection,
        differences=_round_trip_differences,
    )
    return report.to_record()


def upgrade_through_job(
    project: AlembicProject, scratch: ScratchDatabase, params: dict[str, Any], emit: Any
) -> dict[str, Any]:
    """Apply ``revisions`` to the empty ``scratch`` database in one run of env.py."""
    from abmigrate.check.roundtrip import upgrade_through

    upgrade_through(project.for_url(scratch.url), scratch, params["revisions"])
    return {}


def _walk_outcome(context: CheckContext, check: str, report: Any) -> Outcome:
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
        # Counted in revisions (the failures listed below also hold a "not checked" entry).
        unreached = f", {len(report.not_checked)} not checked" if report.not_checked else ""
        summary = f"{len(report.failures)} of {total} revision(s) fail{unreached}"
        return Outcome(failures, summary=summary)
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


@register("data_round_trip", default=False, uses_database=True)
def data_round_trip(context: CheckContext) -> Outcome:
    """Every downgrade gives back the rows its upgrade was handed (opt-in).

    Before each revision, rows generated from the schema are seeded; after upgrade and
    downgrade, a table that lost rows, or a column that is gone or holds other values, is data
    a rollback would destroy in production (a column dropped and re-added empty, a backfill
    not reversed). Slower than round_trip: every step is its own run of env.py.
    """
    return _walk(context, "data_round_trip")
