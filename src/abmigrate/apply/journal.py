"""The journal: who migrated what, when, how it went — in the database and on disk.

Each run is one row of ``abmigrate_journal`` in the target database (created by abmigrate,
outside the project's models and excluded from drift) and one or more lines of the local
JSON-lines log (``journal_log``). The row is written when the run starts (outcome
``running``, with the revision in flight) and updated after every revision, so a run that
crashes or fails half way on a dialect without transactional DDL leaves a trace the next
``status`` reads.

Nothing here ever stores a password: records carry the masked URL and scrubbed errors.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, String, Table, Text, bindparam, inspect, select
from sqlalchemy.dialects.mysql import LONGTEXT

from abmigrate.apply.journal_view import (
    checksum_mismatches,
    interrupted_or_partial,
    record_of,
    recorded_checksums,
)
from abmigrate.db.database import JOURNAL_TABLE, connect, sqlite_path
from abmigrate.db.dialects import dialect_for
from abmigrate.results import RunRecord

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.config.workspace import Workspace

__all__ = [
    "JOURNAL_TABLE",
    "Journal",
    "checksum_mismatches",
    "find_runs",
    "interrupted_or_partial",
    "matches_run_id",
    "new_run_id",
    "now_iso",
    "read_local_log",
    "read_runs",
    "recorded_checksums",
]

_RUN_ID_CHARACTERS = re.compile(r"[0-9A-Za-z-]+")

_metadata = MetaData()
journal_table = Table(
    JOURNAL_TABLE,
    _metadata,
    Column("run_id", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("outcome", String(24), nullable=False),
    Column("in_flight", String(64)),
    Column("from_revisions", String(400)),
    Column("to_revisions", String(400)),
    # MySQL's TEXT stops at 64 KB: a long history's record needs LONGTEXT there.
    Column("record", Text().with_variant(LONGTEXT(), "mysql", "mariadb"), nullable=False),
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_run_id() -> str:
    # Sortable by time, unique across hosts: 20251125T130501-1a2b3c4d.
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def _values(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "kind": run.direction,
        "environment": run.environment,
        "started_at": run.started_at or now_iso(),
        "finished_at": run.finished_at,
        "outcome": run.outcome,
        "in_flight": run.in_flight,
        "from_revisions": ",".join(run.from_revisions),
        "to_revisions": ",".join(run.to_revisions),
        "record": json.dumps(run.to_record(), default=str),
    }


_tables_by_schema: dict[str, Table] = {}


def _journal_table(schema: str | None) -> Table:
    """The journal table in ``schema`` (a tenant's), for statements on a connection whose
    execution options abmigrate does not own (the migration's)."""
    if schema is None:
        return journal_table
    if schema not in _tables_by_schema:
        _tables_by_schema[schema] = journal_table.to_metadata(MetaData(), schema=schema)
    return _tables_by_schema[schema]


def _has_table(connection: Connection) -> bool:
    schema = (connection.get_execution_options().get("schema_translate_map") or {}).get(None)
    return bool(inspect(connection).has_table(JOURNAL_TABLE, schema=schema))


@contextlib.contextmanager
def _connect(url: str, schema: str | None) -> Iterator[Connection]:
    """A connection on which the journal table lives in ``schema``: next to the version
    table (a tenant's schema keeps its own journal), the default schema otherwise."""
    with connect(url) as connection:
        if schema:
            connection = connection.execution_options(schema_translate_map={None: schema})
        yield connection


class Journal:
    """Writes one run: ``start``, then ``update`` as it goes, then ``finish``."""

    def __init__(self, workspace: Workspace) -> None:
        self.url = workspace.url
        self.schema = workspace.project.version_table.schema
        self.log_path = workspace.settings.journal_log
        self.errors: list[str] = []
        # One connection for the whole run: a run of 300 revisions updates its row 600
        # times, and a new connection each time cost more than the migrations.
        self._held: contextlib.ExitStack | None = None
        self._connection: Connection | None = None
        self._in_flight_update: Any = None

    def start(self, record: RunRecord) -> None:
        self._write_row(record, create=True)
        self._append_log("start", record)

    def update(self, record: RunRecord, *, within: Connection | None = None) -> None:
        """Rewrite the run's row; ``within`` a caller's open transaction (the migration's
        own, so the row commits with the revision it records), else on the journal's
        connection."""
        if within is None or self.errors:
            self._write_row(record, create=False)
            return
        try:
            self._write_within(within, record)
        except Exception:
            self._write_row(record, create=False)

    def mark_in_flight(self, record: RunRecord, *, within: Connection | None = None) -> None:
        """Only the row's ``in_flight`` column (readers take it over the record's copy):
        the revision in flight, named exactly, without serialising the whole record."""
        if within is not None and not self.errors:
            if self._in_flight_update is None:
                # Built once: a run of 300 revisions sends it 300 times.
                table = _journal_table(self.schema)
                self._in_flight_update = (
                    table.update()
                    .where(table.c.run_id == bindparam("run"))
                    .values(in_flight=bindparam("revision"))
                )
            try:
                self._execute_within(
                    within,
                    self._in_flight_update,
                    {"run": record.run_id, "revision": record.in_flight},
                )
                return
            except Exception:
                pass
        self._write_row(record, create=False)

    def finish(self, record: RunRecord) -> None:
        # Durable: on PostgreSQL this commit waits for the WAL flush, and with it every
        # revision the run committed before (they commit without waiting, see runner).
        self._write_row(record, create=False, durable=True)
        self._append_log("finish", record)
        self.close()

    def close(self) -> None:
        if self._held is not None:
            with contextlib.suppress(Exception):
                self._held.close()
        self._held, self._connection = None, None

    def _open(self) -> Connection:
        if self._connection is None or self._connection.closed:
            self.close()
            held = contextlib.ExitStack()
            try:
                connection = held.enter_context(_connect(self.url, self.schema))
                # Commits not waiting for durability (PostgreSQL's WAL flush) at each of a
                # long run's updates; the last write of the run (finish) waits for it.
                if dialect_for(connection).relax_durability(connection):
                    connection.commit()
                self._connection = connection
            except BaseException:
                held.close()
                raise
            self._held = held
        return self._connection

    def log_only(self, record: RunRecord) -> None:
        """A dry run: in the local log only. The table records what changed the database,
        which a dry run never does (and ``status`` reads its last run from there)."""
        self._append_log("dry_run", record)

    def _write_within(self, connection: Connection, record: RunRecord) -> None:
        table = _journal_table(self.schema)
        update = table.update().where(table.c.run_id == record.run_id).values(**_values(record))
        self._execute_within(connection, update)

    @staticmethod
    def _execute_within(
        connection: Connection, statement: Any, parameters: dict[str, Any] | None = None
    ) -> None:
        if dialect_for(connection).failed_statement_aborts_transaction:
            # A failing journal write must not abort the migration's transaction.
            with connection.begin_nested():
                connection.execute(statement, parameters)
        else:
            connection.execute(statement, parameters)

    def _write_row(self, record: RunRecord, *, create: bool, durable: bool = False) -> None:
        from abmigrate.db.database import scrub

        values = _values(record)
        # The journal must never turn a run's real outcome into a journal error: a failure
        # to write is remembered (and shown as a warning), the local log still has the run.
        try:
            connection = self._open()
            try:
                if create and not _has_table(connection):
                    _metadata.create_all(connection, tables=[journal_table], checkfirst=True)
                updated = connection.execute(
                    journal_table.update()
                    .where(journal_table.c.run_id == values["run_id"])
                    .values(**values)
                ).rowcount
                if not updated:
                    connection.execute(journal_table.insert().values(**values))
                if durable:
                    dialect_for(connection).make_transaction_durable(connection)
                connection.commit()
            except BaseException:
                self.close()  # a broken connection is not reused
                raise
        except Exception as exc:
            self.errors.append(scrub(f"journal table not written: {exc}".splitlines()[0], self.url))

    def _append_log(self, event: str, record: RunRecord) -> None:
        line = {**record.to_record(), "event": event}
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, default=str, sort_keys=True) + "\n")
        except OSError as exc:
            self.errors.append(f"journal log {self.log_path} not written: {exc.strerror}")

    def acknowledge(
        self, workspace: Workspace, revisions: dict[str, str | None], reason: str
    ) -> RunRecord:
        """Record that changed scripts were reviewed: their new checksums become the reference."""
        from abmigrate.db.lock import actor

        record = RunRecord(
            run_id=new_run_id(),
            direction="acknowledge",
            environment=workspace.environment.name,
            database=workspace.environment.masked_url,
            started_at=now_iso(),
            finished_at=now_iso(),
            outcome="acknowledged",
            checksums=revisions,
            reason=reason,
            actor=actor(),
        )
        self._write_row(record, create=True)
        self.close()
        self._append_log("acknowledge", record)
        return record


def read_runs(url: str, *, limit: int | None = None, schema: str | None = None) -> list[RunRecord]:
    """Journal records, newest first. Read-only: no table means no runs."""
    query = select(*_READ_COLUMNS).order_by(journal_table.c.started_at.desc())
    if limit is not None:
        query = query.limit(limit)
    return _select_runs(url, schema, query)


def matches_run_id(run_id: str, query: str) -> bool:
    """Whether ``query`` is a prefix of the run id ``20261128T032421-5505b2ad`` or of its
    random part ``5505b2ad`` (what `journal` shows), ignoring case."""
    run_id, query = run_id.lower(), query.lower()
    return bool(query) and (run_id.startswith(query) or run_id.rpartition("-")[2].startswith(query))


def find_runs(url: str, query: str, *, schema: str | None = None) -> list[RunRecord]:
    """The journal records whose run id matches ``query`` (see :func:`matches_run_id`),
    newest first. Read-only."""
    from sqlalchemy import func, or_

    if not _RUN_ID_CHARACTERS.fullmatch(query):
        return []  # not a run id: no LIKE wildcards reach the query
    run_id = func.lower(journal_table.c.run_id)
    candidates = (
        select(*_READ_COLUMNS)
        .where(or_(run_id.like(f"{query.lower()}%"), run_id.like(f"%-{query.lower()}%")))
        .order_by(journal_table.c.started_at.desc())
    )
    runs = _select_runs(url, schema, candidates)
    return [run for run in runs if matches_run_id(run.run_id, query)]


# The record, and the columns written on their own that outdate the record's copy.
_READ_COLUMNS = (journal_table.c.record, journal_table.c.outcome, journal_table.c.in_flight)


def _select_runs(url: str, schema: str | None, query: Any) -> list[RunRecord]:
    """The records ``query`` (over :data:`_READ_COLUMNS`) selects; unreadable ones skipped.
    Read-only: a SQLite file that does not exist is not created, no table means no runs."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return []
    with _connect(url, schema) as connection:
        if not _has_table(connection):
            return []
        records = (
            record_of(row.record, row.outcome, row.in_flight) for row in connection.execute(query)
        )
        return [record for record in records if record is not None]


def read_local_log(path: Path, *, limit: int | None = None) -> list[RunRecord]:
    """Finished runs from the local JSON-lines log, newest first (a run's last line: the
    ``event`` that wrote it stays in ``extra``)."""
    if not path.is_file():
        return []
    finished: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and "run_id" in record:
                finished[str(record["run_id"])] = record
    runs = sorted(
        (RunRecord.from_record(record) for record in finished.values()),
        key=lambda run: run.started_at,
        reverse=True,
    )
    return runs[:limit] if limit is not None else runs
