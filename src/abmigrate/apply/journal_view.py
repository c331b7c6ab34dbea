"""What `status` reads of the journal, without SQLAlchemy.

A database abmigrate migrates has a journal, so every `status` reads it: the last run, the
scripts changed since they were applied, a run that stopped inside a revision. Reading it
through SQLAlchemy cost a warm `status` more than everything else it does (importing
SQLAlchemy alone is about 140 ms), so the rows are read through the driver alone where it
can (a plain SQLite file, PostgreSQL through psycopg: :func:`abmigrate.db.database.peek_rows`),
and :mod:`abmigrate.apply.journal` (which writes the journal) reads them otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from abmigrate.db.database import JOURNAL_TABLE, journal_question, peek_rows
from abmigrate.db.dialects import dialect_for
from abmigrate.results import RunRecord

if TYPE_CHECKING:
    from abmigrate.config.workspace import Workspace

__all__ = [
    "checksum_mismatches",
    "interrupted_or_partial",
    "peek_runs",
    "record_of",
    "recorded_checksums",
    "script_sha256",
]


def peek_runs(url: str, schema: str | None) -> list[RunRecord] | None:
    """Every journal run, newest first, read through the driver alone; ``[]`` without a
    journal table, None when only SQLAlchemy can read it (then use
    :func:`abmigrate.apply.journal.read_runs`)."""
    rows = peek_rows(url, JOURNAL_TABLE, schema, journal_question(schema))
    if rows is None:
        return []
    if rows is False:
        return None
    records = (record_of(record, outcome, in_flight) for record, outcome, in_flight in rows)
    return [run for run in records if run is not None]


def record_of(record: Any, outcome: Any, in_flight: Any) -> RunRecord | None:
    """The run a journal row holds (its record, and the columns written on their own that
    outdate the record's copy); None for a row that is not a record."""
    try:
        data = json.loads(record)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    data["outcome"] = outcome
    data["in_flight"] = in_flight
    return RunRecord.from_record(data)


def script_sha256(path: str | None) -> str | None:
    """sha256 of a revision file (read once per process: the analysis read it already)."""
    from abmigrate.analysis_cache import file_digest

    if not path:
        return None
    digest = file_digest(path)
    return None if digest == "missing" else digest


def recorded_checksums(runs: Iterable[RunRecord]) -> dict[str, str]:
    """revision -> the sha256 its script had when it was last applied (or acknowledged)."""
    recorded: dict[str, str] = {}
    for run in sorted(runs, key=lambda run: run.started_at):
        if run.direction == "acknowledge":
            for revision, digest in (run.checksums or {}).items():
                if digest:
                    recorded[revision] = digest
            continue
        if run.direction != "upgrade":
            continue
        for step in run.applied:
            if step.script_sha256:
                recorded[step.revision] = step.script_sha256
    return recorded


def checksum_mismatches(
    workspace: Workspace, runs: Sequence[RunRecord], applied: Iterable[str]
) -> dict[str, tuple[str, str | None]]:
    """Applied revisions whose script changed since: revision -> (recorded, now)."""
    recorded = recorded_checksums(runs)
    changed: dict[str, tuple[str, str | None]] = {}
    for revision in applied:
        if revision not in recorded or not workspace.project.known(revision):
            continue
        now = script_sha256(workspace.project.describe(revision).path)
        if now != recorded[revision]:
            changed[revision] = (recorded[revision], now)
    return changed


def interrupted_or_partial(
    runs: Sequence[RunRecord], dialect: str, applied: Iterable[str]
) -> str | None:
    """A warning when the last run stopped inside a revision, or None.

    On PostgreSQL and SQLite the revision's transaction was rolled back; on MySQL/MariaDB
    its DDL committed statement by statement, so part of it may be in the database.
    """
    last = next((run for run in runs if run.is_migration), None)
    if last is None or last.outcome not in ("running", "failed"):
        return None
    revision = last.in_flight
    if not revision:
        return None
    applied_set = set(applied)
    if (revision in applied_set) == (last.direction == "upgrade"):
        return None  # the revision got through after all
    how = "is still running or was interrupted" if last.outcome == "running" else "failed"
    if not dialect_for(dialect).transactional_ddl:
        return (
            f"run {last.run_id} {how} during {last.direction} of {revision}:"
            f" {dialect} cannot roll back DDL, so {revision} may be partially applied"
            " (run `abmigrate diagnose`, repair, then re-run)"
        )
    return (
        f"run {last.run_id} {how} during {last.direction} of {revision};"
        f" its transaction was rolled back (the database is at the last good revision)"
    )
