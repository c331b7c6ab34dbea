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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from abmigrate.database import scrub

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, RevisionStep
    from sqlalchemy import Connection

    from abmigrate.alembic_bridge import AlembicProject
    from abmigrate.scratch import ScratchDatabase

__all__ = ["DataHooks", "RevisionFailure", "WalkReport", "topological_order", "walk_round_trip"]

Stage = Literal["upgrade", "downgrade", "compare", "upgrade again", "data"]


@dataclass
class RevisionFailure:
    """What went wrong with one revision, with the evidence."""

    revision: str
    message: str
    stage: Stage
    detail: str
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


class DataHooks:
    """Extra work around each round trip (data_round_trip seeds rows and compares them)."""

    def before_upgrade(self, connection: Connection, revision: str) -> None:
        """Called before ``revision`` is applied the first time."""

    def after_downgrade(self, connection: Connection, revision: str) -> list[str]:
        """Called once ``revision`` was undone; returns the differences found (or none)."""
        return []


def topological_order(project: AlembicProject) -> list[str]:
    """Every revision once, parents before children (Alembic's walk, oldest first)."""
    return [script.revision for script in reversed(project.revisions())]


@dataclass
class _Cursor:
    """Where the generator stands, so a failure raised by Alembic can be attributed."""

    revision: str | None = None
    stage: Stage = "upgrade"
    stopped: RevisionFailure | None = None


def walk_round_trip(
    project: AlembicProject,
    scratch: ScratchDatabase,
    *,
    fingerprint: Callable[[Connection], Any],
    differences: Callable[[Any, Any], list[str]],
    hooks: DataHooks | None = None,
) -> WalkReport:
    """Round-trip every revision of ``project`` in the (empty) ``scratch`` database."""
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

            def stepper(
                heads: Sequence[str],
                context: MigrationContext,
                remaining: list[str] = remaining,
                cursor: _Cursor = cursor,
            ) -> Iterator[RevisionStep]:
                connection = context.connection
                assert connection is not None
                before = fingerprint(connection)
                _release(context)
                for revision in remaining:
                    if revision in blocked or any(p in blocked for p in parents[revision]):
                        blocked.add(revision)
                        report.not_checked.append(revision)
                        continue
                    cursor.revision = revision
                    if hooks is not None:
                        cursor.stage = "data"
                        hooks.before_upgrade(connection, revision)
                    cursor.stage = "upgrade"
                    yield project.revision_step(revision, upgrade=True)
                    applied.append(revision)
                    cursor.stage = "downgrade"
                    yield project.revision_step(revision, upgrade=False)
                    cursor.stage = "compare"
                    after = fingerprint(connection)
                    found = differences(before, after)
                    if found:
                        cursor.stopped = RevisionFailure(
                            revision=revision,
                            stage="compare",
                            message="the downgrade leaves the schema different from before"
                            " the upgrade",
                            detail=f"{len(found)} difference(s) after downgrade",
                            differences=found,
                        )
                        return
                    if hooks is not None:
                        cursor.stage = "data"
                        lost = hooks.after_downgrade(connection, revision)
                        if lost:
                            cursor.stopped = RevisionFailure(
                                revision=revision,
                                stage="data",
                                message="the downgrade loses data",
                                detail=f"{len(lost)} difference(s) in the seeded rows",
                                differences=lost,
                            )
                            return
                    cursor.stage = "upgrade again"
                    yield project.revision_step(revision, upgrade=True)
                    before = fingerprint(connection)
                    _release(context)
                    report.checked.append(revision)
                    cursor.revision = None

            error = _run(project, scratch, stepper)
            failure = cursor.stopped
            if error is not None:
                if cursor.revision is None:
                    raise error
                failure = RevisionFailure(
                    revision=cursor.revision,
                    stage=cursor.stage,
                    message=_stage_message(cursor.stage),
                    detail=scrub(_one_line(error), scratch.url),
                )
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
            _rebuild(project, scratch, applied)
    for failure in report.failures:
        _attach_evidence(project, failure, parents)
    return report


def _stage_message(stage: Stage) -> str:
    return {
        "upgrade": "the upgrade fails",
        "downgrade": "the downgrade fails",
        "upgrade again": "the upgrade fails when run again after the downgrade",
        "compare": "the schema could not be compared",
        "data": "the seeded rows could not be written or compared",
    }[stage]


def _release(context: MigrationContext) -> None:
    # Looking at the schema autobegins a transaction; when Alembic holds none (one
    # transaction per migration) end it, so the next step starts clean (and an
    # autocommit_block() in it can commit).
    connection = context.connection
    if connection is not None and context._transaction is None and connection.in_transaction():
        connection.commit()


def _run(
    project: AlembicProject,
    scratch: ScratchDatabase,
    stepper: Callable[[Sequence[str], MigrationContext], Iterator[RevisionStep]],
) -> Exception | None:
    """One run of env.py over ``stepper``; returns the exception a migration raised."""
    from abmigrate.database import make_engine

    engine = make_engine(scratch.url)
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


def _rebuild(project: AlembicProject, scratch: ScratchDatabase, applied: Sequence[str]) -> None:
    """Start over from an empty database and apply ``applied`` (no checks on the way)."""
    scratch.recreate()

    def stepper(heads: Sequence[str], context: MigrationContext) -> Iterator[RevisionStep]:
        for revision in applied:
            yield project.revision_step(revision, upgrade=True)

    error = _run(project, scratch, stepper)
    if error is not None:
        raise error


def _attach_evidence(
    project: AlembicProject, failure: RevisionFailure, parents: dict[str, tuple[str, ...]]
) -> None:
    """The failing revision's file and the SQL of the step that failed, rendered offline."""
    script = project.get(failure.revision)
    failure.path = script.path
    upgrade = failure.stage in ("upgrade", "upgrade again")
    step = project.revision_step(failure.revision, upgrade=upgrade)
    current = list(parents[failure.revision]) if upgrade else [failure.revision]
    try:
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
