"""``data_round_trip``: does a downgrade give back the rows the upgrade was handed?

For each revision, parents first, each once: seed rows into the tables (generated from the
schema by :mod:`abmigrate.db.synthetic`), take a snapshot of every table's rows, upgrade, downgrade,
and compare: a table that lost rows, a column that is gone or whose values changed is data the
downgrade does not give back (a column dropped by the upgrade and re-added empty by the
downgrade, a backfill that is not reversed, a table merged into another and not split back).
Then upgrade again and go on. Each step is its own run of env.py, and rows are written and
read through separate connections between steps, so the project's transaction handling does
not matter. Slower than ``round_trip`` by design: it is opt-in.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from abmigrate.check.roundtrip import (
    RevisionFailure,
    WalkReport,
    attach_evidence,
    run_one_step_at_a_time,
    topological_order,
    upgrade_through,
)
from abmigrate.db.database import scrub

if TYPE_CHECKING:
    from abmigrate.bridge.project import AlembicProject
    from abmigrate.db.scratch import ScratchDatabase

__all__ = ["Snapshot", "compare_snapshots", "snapshot", "walk_data_round_trip"]

# table -> (row count, column -> multiset of values as text)
Snapshot = dict[str, tuple[int, dict[str, Counter[str]]]]


def snapshot(url: str) -> Snapshot:
    """Every table's rows (alembic_version and abmigrate's own tables left out)."""
    from sqlalchemy import MetaData, select

    from abmigrate.db.database import connect
    from abmigrate.db.fingerprint import excluded_table

    taken: Snapshot = {}
    with connect(url) as connection:
        metadata = MetaData()
        metadata.reflect(connection, only=lambda name, _: not excluded_table(name))
        for table in metadata.sorted_tables:
            columns: dict[str, Counter[str]] = {column.name: Counter() for column in table.c}
            count = 0
            for row in connection.execute(select(table)).mappings():
                count += 1
                for name, value in row.items():
                    columns[name][_text(value)] += 1
            taken[table.name] = (count, columns)
        connection.rollback()
    return taken


def _text(value: Any) -> str:
    return "NULL" if value is None else repr(value)


def compare_snapshots(before: Snapshot, after: Snapshot) -> list[str]:
    """The data ``after`` lacks compared with ``before`` (new tables and rows are fine)."""
    lost: list[str] = []
    for table, (count, columns) in sorted(before.items()):
        if count == 0:
            continue
        if table not in after:
            lost.append(f"table {table} ({count} row(s)) is gone after the downgrade")
            continue
        after_count, after_columns = after[table]
        if after_count < count:
            lost.append(
                f"table {table}: {count} row(s) before the upgrade, {after_count} after the"
                " downgrade"
            )
        for column, values in sorted(columns.items()):
            non_null = count - values.get("NULL", 0)
            if column not in after_columns:
                if non_null:
                    lost.append(
                        f"column {table}.{column} ({non_null} non-null value(s)) is gone"
                        " after the downgrade"
                    )
                continue
            missing = values - after_columns[column]
            if missing:
                example = next(iter(missing))
                replaced = after_columns[column] - values
                instead = f" → {next(iter(replaced))}" if replaced else ""
                lost.append(
                    f"column {table}.{column}: {sum(missing.values())} value(s) not given back"
                    f" by the downgrade (e.g. {example}{instead})"
                )
    return lost


def walk_data_round_trip(
    project: AlembicProject, scratch: ScratchDatabase, *, rows: int = 3
) -> WalkReport:
    """Seed, upgrade, downgrade, compare rows, upgrade again — every revision once."""
    from abmigrate.db.synthetic import fill

    order = topological_order(project)
    report = WalkReport(order=order)
    parents = {
        revision: tuple(project.get(revision)._normalized_down_revisions) for revision in order
    }
    applied: list[str] = []
    blocked: set[str] = set()
    url = scratch.url

    def step(revision: str, upgrade: bool) -> Exception | None:
        try:
            run_one_step_at_a_time(project, url, [project.revision_step(revision, upgrade=upgrade)])
        except Exception as exc:
            return exc
        return None

    def fail(
        revision: str,
        stage: Any,
        message: str,
        detail: str | None = None,
        differences: Sequence[str] = (),
    ) -> None:
        report.failures.append(RevisionFailure(revision, message, stage, detail, list(differences)))

    def rebuild() -> None:
        report.rebuilds += 1
        scratch.recreate()
        upgrade_through(project, scratch, applied)

    for revision in order:
        if revision in blocked or any(parent in blocked for parent in parents[revision]):
            blocked.add(revision)
            report.not_checked.append(revision)
            continue
        with _quiet_driver():
            # Tables seeded before refuse duplicates; psycopg logs each refused batch.
            fill(url, rows)
        before = snapshot(url)
        error = step(revision, True)
        if error is not None:
            fail(revision, "upgrade", "the upgrade fails", _detail(error, url))
            blocked.add(revision)
            rebuild()
            continue
        applied.append(revision)
        error = step(revision, False)
        if error is not None:
            fail(revision, "downgrade", "the downgrade fails", _detail(error, url))
            rebuild()
            continue
        lost = compare_snapshots(before, snapshot(url))
        if lost:
            fail(
                revision,
                "data",
                "the downgrade loses data",
                None,
                lost,
            )
        error = step(revision, True)
        if error is not None:
            fail(
                revision,
                "upgrade again",
                "the upgrade fails when run again after the downgrade",
                _detail(error, url),
            )
            rebuild()
            continue
        if not lost:
            report.checked.append(revision)
    for failure in report.failures:
        attach_evidence(project, failure, parents)
    return report


@contextlib.contextmanager
def _quiet_driver() -> Iterator[None]:
    logger = logging.getLogger("psycopg")
    previous = logger.level
    logger.setLevel(logging.ERROR + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _detail(error: BaseException, url: str) -> str:
    lines = str(error).strip().splitlines()
    return scrub(f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": "), url)
