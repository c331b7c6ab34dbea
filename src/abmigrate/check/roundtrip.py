"""Walk a project's history once, proving every downgrade leaves no trace.

For each revision, in an order where parents come first (branched histories and merges
included, each revision once): upgrade to it, downgrade one step, compare the schema
fingerprint with the one taken before the upgrade, upgrade again and go on. The whole walk is
ONE run of the project's ``env.py`` (a generator feeds Alembic one step at a time and looks at
the database between steps), so it costs about three migration steps and two fingerprints per
revision, never a rebuild from empty.

When a revision fails (its upgrade or downgrade raises, or the downgrade leaves a difference)
the scratch database is rebuilt up to where the walk stands and the walk resumes with the next
revision: one broken revision does not hide the others. Descendants of a revision whose
upgrade fails cannot be reached and are reported as not checked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from abmigrate.bridge.project import between_steps, remember_existing_types
from abmigrate.db.database import scrub
from abmigrate.db.dialects import dialect_for
from abmigrate.db.schema_watch import schema_watcher

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.bridge.project import AlembicProject
    from abmigrate.bridge.types import MigrationContext, RevisionStep
    from abmigrate.db.scratch import ScratchDatabase

__all__ = [
    "RevisionFailure",
    "WalkReport",
    "attach_evidence",
    "run_one_step_at_a_time",
    "schema_digest",
    "topological_order",
    "upgrade_through",
    "walk_round_trip",
]

Stage = Literal["upgrade", "downgrade", "compare", "upgrade again", "data"]


@dataclass
class RevisionFailure:
    """What went wrong with one revision, with the evidence."""

    revision: str
    message: str
    stage: Stage
    detail: str | None
    differences: list[str] = field(default_factory=list)
    sql: str | None = None
    path: str | None = None


@dataclass
class WalkReport:
    order: list[str]
    checked: list[str] = field(default_factory=list)
    failures: list[RevisionFailure] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    rebuilds: int = 0

    def to_record(self) -> dict[str, Any]:
        """Plain JSON types (a walk run in a fresh process reports this way)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> WalkReport:
        fields = dict(record)
        fields["failures"] = [RevisionFailure(**failure) for failure in record["failures"]]
        return cls(**fields)


def topological_order(project: AlembicProject) -> list[str]:
    """Every revision once, parents before children (Alembic's walk, oldest first)."""
    return [script.revision for script in reversed(project.revisions())]


@dataclass
class _Cursor:
    """Where the generator stands, so a failure raised by Alembic can be attributed."""

    revision: str | None = None
    stage: Stage = "upgrade"
    suspect: Any = None  # the full fingerprint of a state the digest found changed


def walk_round_trip(
    project: AlembicProject,
    scratch: ScratchDatabase,
    *,
    fingerprint: Callable[[Connection], Any],
    differences: Callable[[Any, Any], list[str]],
) -> WalkReport:
    """Round-trip every revision of ``project`` in the (empty) ``scratch`` database.

    Between steps the schema is compared through a cheap digest where the dialect has one
    (:func:`schema_digest`); only when the digests differ are full fingerprints taken, and
    the differences reported come from them.
    """
    order = topological_order(project)
    report = WalkReport(order=order)
    parents = {
        revision: tuple(project.get(revision)._normalized_down_revisions) for revision in order
    }
    applied: list[str] = []  # in walk order: what the scratch database holds
    blocked: set[str] = set()
    position = 0
    with _database_url(scratch.url):
        while position < len(order):
            cursor = _Cursor()
            remaining = order[position:]
            # What a run opens besides env.py's connection (see _state_key); closed when the
            # run ends, before a rebuild drops the database.
            watching = contextlib.ExitStack()

            def stepper(
                heads: Sequence[str],
                context: MigrationContext,
                remaining: list[str] = remaining,
                cursor: _Cursor = cursor,
                watching: contextlib.ExitStack = watching,
            ) -> Iterator[RevisionStep]:
                connection = context.connection
                assert connection is not None
                state = _state_key(connection, fingerprint, context, scratch.url, watching)
                # A walk resumed on a rebuilt database continues the history as one run
                # would: the types the history created so far count as created by it.
                remember_existing_types(context)
                # Each look at the schema comes right before an upgrade, after what prepares
                # that upgrade (between_steps, which ends any transaction of its own). A
                # look on env.py's connection (no watcher) then begins the transaction
                # Alembic's per-migration one takes over (it begins on the connection's
                # transaction when there is one), and the step's commit ends both: a look
                # of its own would cost a BEGIN and a COMMIT more, twice per revision. The
                # step still commits on its own; a failing one rolls back a read besides.
                between_steps(context)
                before = state(connection)
                for revision in remaining:
                    if revision in blocked or any(p in blocked for p in parents[revision]):
                        blocked.add(revision)
                        report.not_checked.append(revision)
                        continue
                    cursor.revision = revision
                    cursor.stage = "upgrade"
                    yield project.revision_step(revision, upgrade=True)
                    applied.append(revision)
                    cursor.stage = "downgrade"
                    between_steps(context, upgrade=False)
                    yield project.revision_step(revision, upgrade=False)
                    cursor.stage = "compare"
                    between_steps(context)
                    if state(connection) != before:
                        # Describe the state left behind now; the state before the upgrade
                        # is rebuilt and described after this run.
                        cursor.suspect = fingerprint(connection)
                        return
                    cursor.stage = "upgrade again"
                    yield project.revision_step(revision, upgrade=True)
                    between_steps(context)
                    before = state(connection)
                    report.checked.append(revision)
                    cursor.revision = None

            with watching:
                error = _run(project, scratch.url, stepper, scratch=True)
            failure: RevisionFailure | None = None
            if error is not None:
                if cursor.revision is None:
                    raise error
                failure = RevisionFailure(
                    revision=cursor.revision,
                    stage=cursor.stage,
                    message=_stage_message(cursor.stage),
                    detail=scrub(_one_line(error), scratch.url),
                )
            elif cursor.suspect is not None:
                assert cursor.revision is not None
                revision = cursor.revision
                report.rebuilds += 1
                before_state = _rebuild(
                    project, scratch, [r for r in applied if r != revision], fingerprint
                )
                found = differences(before_state, cursor.suspect)
                if found:
                    report.failures.append(
                        RevisionFailure(
                            revision=revision,
                            stage="compare",
                            message="the downgrade leaves the schema different from before"
                            " the upgrade",
                            detail=None,
                            differences=found,
                        )
                    )
                else:  # the digest saw a difference the fingerprint does not describe
                    report.checked.append(revision)
                _apply(project, scratch, [revision])
                position = order.index(revision) + 1
                continue
            if failure is None:
                break
            report.failures.append(failure)
            revision = failure.revision
            if failure.stage == "upgrade":
                blocked.add(revision)
                if revision in applied:
                    applied.remove(revision)
            elif revision not in applied:
                applied.append(revision)
            position = order.index(revision) + 1
            report.rebuilds += 1
            _rebuild(project, scratch, applied, None)
    for failure in report.failures:
        attach_evidence(project, failure, parents)
    return report


def _state_key(
    connection: Connection,
    fingerprint: Callable[[Connection], Any],
    context: MigrationContext,
    url: str,
    watching: contextlib.ExitStack,
) -> Callable[[Connection], Any]:
    """How to tell two schema states apart cheaply on this dialect: a digest where it has
    one, taken on a connection of abmigrate's own (:mod:`abmigrate.db.schema_watch`) while
    Alembic commits every step; else on env.py's connection."""
    dialect = dialect_for(connection)
    if not dialect.has_schema_digest:
        return fingerprint
    if not context._in_external_transaction:
        watch = watching.enter_context(schema_watcher(url, connection))
        if watch is not None:
            return lambda _connection: watch()
    return dialect.schema_digest


def schema_digest(connection: Connection) -> str:
    """A digest of the PostgreSQL schema the connection sees by default (one query; see
    :meth:`abmigrate.db.dialects.PostgreSQL.schema_digest`)."""
    return dialect_for("postgresql").schema_digest(connection)


def _stage_message(stage: Stage) -> str:
    return {
        "upgrade": "the upgrade fails",
        "downgrade": "the downgrade fails",
        "upgrade again": "the upgrade fails when run again after the downgrade",
        "compare": "the schema could not be compared",
        "data": "the seeded rows could not be written or compared",
    }[stage]


def run_one_step_at_a_time(
    project: AlembicProject, url: str, steps: Sequence[RevisionStep]
) -> None:
    """Run ``steps`` on the database at ``url``, one run of env.py each (as the runner does)."""
    with _database_url(url):
        for step in steps:

            def stepper(
                heads: Sequence[str], context: MigrationContext, step: RevisionStep = step
            ) -> Iterator[RevisionStep]:
                yield step

            error = _run(project, url, stepper)
            if error is not None:
                raise error


def _run(
    project: AlembicProject,
    url: str,
    stepper: Callable[[Sequence[str], MigrationContext], Iterator[RevisionStep]],
    *,
    scratch: bool = False,
) -> Exception | None:
    """One run of env.py over ``stepper``; returns the exception a migration raised.
    ``scratch``: ``url`` is a scratch database, whose commits need not wait for the disk."""
    from abmigrate.db.database import make_engine

    engine = make_engine(url)
    if scratch:
        engine = dialect_for(url).scratch_engine(engine)
    try:
        with engine.connect() as connection:
            try:
                project.run_stepper(stepper, connection=connection)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    connection.rollback()
                return exc
            if connection.in_transaction():
                connection.commit()
    finally:
        engine.dispose()
    return None


def _rebuild(
    project: AlembicProject,
    scratch: ScratchDatabase,
    applied: Sequence[str],
    fingerprint: Callable[[Connection], Any] | None,
) -> Any:
    """Start over from an empty database and apply ``applied`` (no checks on the way);
    return the fingerprint of the result when asked for one."""
    scratch.recreate()
    return _apply(project, scratch, applied, fingerprint)


def upgrade_through(
    project: AlembicProject, scratch: ScratchDatabase, revisions: Sequence[str]
) -> None:
    """Apply ``revisions`` (parents first) to ``scratch`` in one run of env.py."""
    with _database_url(scratch.url):
        _apply(project, scratch, revisions)


def _apply(
    project: AlembicProject,
    scratch: ScratchDatabase,
    revisions: Sequence[str],
    fingerprint: Callable[[Connection], Any] | None = None,
) -> Any:
    """Upgrade through ``revisions`` in one run; optionally fingerprint the result."""
    taken: list[Any] = []

    def stepper(heads: Sequence[str], context: MigrationContext) -> Iterator[RevisionStep]:
        remember_existing_types(context)  # continuing a history applied by an earlier run
        for revision in revisions:
            between_steps(context)
            yield project.revision_step(revision, upgrade=True)
        if fingerprint is not None and context.connection is not None:
            taken.append(fingerprint(context.connection))

    error = _run(project, scratch.url, stepper, scratch=True)
    if error is not None:
        raise error
    return taken[0] if taken else None


def attach_evidence(
    project: AlembicProject, failure: RevisionFailure, parents: dict[str, tuple[str, ...]]
) -> None:
    """The failing revision's file and the SQL of the step that failed, rendered offline."""
    script = project.get(failure.revision)
    failure.path = script.path
    upgrade = failure.stage in ("upgrade", "upgrade again")
    current = list(parents[failure.revision]) if upgrade else [failure.revision]
    try:
        # Building the step can fail too: a revision with no downgrade() (OpenStack's).
        step = project.revision_step(failure.revision, upgrade=upgrade)
        rendered = project.render_sql([step], current)
    except Exception as exc:  # rendering is evidence only; never hide the failure behind it
        failure.sql = f"-- cannot render offline: {_one_line(exc)}"
        return
    if rendered:
        first = rendered[0]
        failure.sql = first.sql if first.sql is not None else f"-- cannot render: {first.error}"


@contextlib.contextmanager
def _database_url(url: str) -> Iterator[None]:
    # Some env.py files read DATABASE_URL before sqlalchemy.url: point it at the scratch
    # database too, so no env.py can reach the real one during a check.
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
