"""PostgreSQL backups: ``pg_dump -Fd -j`` with a zstd file per table (single-file backups
from before, ``pg_dump -Fc -Z0 | zstd``, still read); restored by pg_restore and concurrent
COPYs (:mod:`abmigrate.backup.copyload`), or pg_restore + psql in one transaction over a
non-empty database.

Why this shape (measured, see docs/backups.md): pg_dump 15 compresses only with gzip, on one
core; with ``-Z0`` each table's plain file goes through a ``zstd -1`` of its own beside the dump
(:class:`~abmigrate.backup.directory.CompressWhileWritten`, which also hashes and tests the
compressed stream as it is written), smaller than gzip -6 and keeping pace with the server's
COPY. The archive keeps a table of contents (``toc.dat``), so ``pg_restore -l`` checks it
without a database.

Per-table figures are taken inside the very snapshot pg_dump reads (``pg_export_snapshot`` +
``pg_dump --snapshot``), so they describe exactly the data in the archive, even while the
application writes. They depend on the data alone, never on OIDs (which a restore changes):
see :func:`_chain_expression`.

Credentials reach the tools through the child's environment (PGPASSWORD and friends), never
its arguments.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from abmigrate.backup.base import (
    Compressor,
    DumpOutcome,
    TableStats,
    child_env,
    dump_jobs,
    kill_quietly,
    pipeline_error,
    private_dir,
    require_tool,
    run_pipeline,
    tool_version,
)
from abmigrate.backup.copyload import TableData, copy_statements, load_tables, table_data_entries
from abmigrate.backup.directory import CompressWhileWritten, decompressed_copy
from abmigrate.db.database import connect
from abmigrate.errors import BackupError

__all__ = ["PostgresBackend"]

# The directory archive inside the backup folder (pg_dump -Fd): toc.dat and a file per table.
ARCHIVE_DIR = "data.dir"
# pg_dump --verbose (messages in English: LC_ALL=C) names each item a parallel job finished.
_FINISHED = re.compile(rb"finished item (\d+) ")
# Its other progress lines ("pg_dump: dumping contents of table ..."): not kept for errors.
_INFO = re.compile(rb"^pg_dump: (?!error:|warning:|detail:|hint:)")
# maintenance_work_mem of the sessions that build indexes after a restore, when the server's
# is lower: the default (64 MB) sorts a table of a few million rows on disk, this in memory
# (measured on the bench database: 5.35 s for the step against 5.61 s). Per pg_restore job,
# and only as much as a sort needs.
_INDEX_MEMORY_KB = 512 * 1024
INSTALL_HINT = "install the PostgreSQL client tools (apt install postgresql-client-{major})"
CHECKSUM_METHOD = (
    "postgresql:sum(row hash chained column by column, by name: h = hashXextended(column, h)"
    " with each type's own 64-bit hash where it is a full-entropy function of the value (bool,"
    " int2, int4, int8 with its high half in the seed, date, uuid, numeric with its scale,"
    ' text, varchar COLLATE "C"), time, timestamp[tz] and bytea as the hex of their binary'
    ' form, any other type as ::text COLLATE "C"; NULL marks the seed) (PostgreSQL 14+)'
    " or sum(hashtextextended(row::text,0))/v4"
)
# The v3 figures ("c:"), still computed for backups that recorded them. How each column
# enters the hashed row: types whose hash is a full-entropy function of the value (so of its
# text form) as they are; text under the deterministic "C" collation; int8 and the 64-bit
# time types through their binary form, because their own hash folds 64 bits into 32 (0 and
# 4294967297 hash alike). Every other type goes through its text: enums (whose hash is the
# label's OID), arrays, composites, ranges and domains of anything, numeric (1.0 and 1.00
# hash alike), interval ('1 day' and '24 hours'), float (0 and -0), json (no hash).
_COLUMN_FORMS = {
    16: "{}",  # bool
    17: "{}",  # bytea
    21: "{}",  # int2
    23: "{}",  # int4
    1082: "{}",  # date
    2950: "{}",  # uuid
    25: '{} COLLATE "C"',  # text
    1043: '{} COLLATE "C"',  # varchar
    20: "int8send({})",  # int8
    1083: "time_send({})",  # time
    1114: "timestamp_send({})",  # timestamp
    1184: "timestamptz_send({})",  # timestamptz
}
_OTHER_FORM = '{}::text COLLATE "C"'
# The v4 figures ("h:"): each column's value hashed with the previous column's hash as the
# seed, so the row's hash is a non-linear function of every column (a sum over rows sees
# values swapped between rows) without building a record or hashing a hash's text: about
# half of v3's server CPU on the bench tables (docs/backups.md, "Speed"). Each step is
# (value, seed) -> 64-bit hash, a function of the data alone:
# - the type's own extended hash where it is a full-entropy function of the value: bool (as
#   int4), int2, int4, uuid, text and varchar under "C" (a nondeterministic collation would
#   hash a sort key);
# - int8 hashes through a 32-bit fold (0 and 4294967297 alike): its high half is xor-ed into
#   the seed, and the fold with the high half gives back the value;
# - date as its day number (the value its own hash uses; the infinities as INT32_MIN/MAX,
#   which is what they are inside);
# - numeric's hash ignores the scale (1.0 and 1.00 alike) and returns the seed as it is for
#   NaN and the infinities: the scale, or which special value it is, goes into the seed;
# - time, timestamp, timestamptz (their hash folds 64 bits too) and bytea (no SQL-callable
#   hash) as the hex of their binary form; everything else as its text, as in v3.
# {v} is the value (NULL replaced by a value of the type, see _chain_step), {s} the seed.
_CHAIN_FORMS = {
    16: "hashint4extended({v}::int4, {s})",  # bool
    21: "hashint2extended({v}, {s})",  # int2
    23: "hashint4extended({v}, {s})",  # int4
    20: "hashint8extended({v}, {s} # ({v} >> 32))",  # int8
    1082: (  # date
        "hashint4extended(CASE WHEN isfinite({v}) THEN {v} - DATE '2000-01-01'"
        " WHEN {v} > DATE '2000-01-01' THEN 2147483647 ELSE -2147483648 END, {s})"
    ),
    2950: "uuid_hash_extended({v}, {s})",  # uuid
    25: 'hashtextextended({v} COLLATE "C", {s})',  # text
    1043: 'hashtextextended({v} COLLATE "C", {s})',  # varchar
    1700: (  # numeric
        "hash_numeric_extended({v}, hashint4extended(coalesce(scale({v}), CASE WHEN {v} = 'NaN'"
        " THEN -1 WHEN {v} > 0 THEN -2 ELSE -3 END), {s}))"
    ),
    17: "hashtextextended(encode({v}, 'hex'), {s})",  # bytea
    1083: "hashtextextended(encode(time_send({v}), 'hex'), {s})",  # time
    1114: "hashtextextended(encode(timestamp_send({v}), 'hex'), {s})",  # timestamp
    1184: "hashtextextended(encode(timestamptz_send({v}), 'hex'), {s})",  # timestamptz
}
_CHAIN_OTHER = 'hashtextextended({v} COLLATE "C", {s})'  # {v}: the column's ::text
# A NULL stands for this value of the column's type, with the seed xor-ed with _NULL_MARK:
# a NULL and that value then hash differently (a strict hash function would turn the whole
# row's hash into NULL).
_NULL_STANDS_FOR = {
    16: "false",
    17: "''",
    20: "'0'",  # quoted: the literal takes the column's type (a bare 0 would make int2 int4)
    21: "'0'",
    23: "'0'",
    25: "''",
    1043: "''",
    1082: "'2000-01-01'",
    1083: "'00:00'",
    1114: "'2000-01-01'",
    1184: "'2000-01-01 00:00+00'",
    1700: "'0'",
    2950: "'00000000-0000-0000-0000-000000000000'",
}
_NULL_MARK = -7046029254386353131  # 0x9E3779B97F4A7C15: any constant other than 0 would do
_INT8_NULL_MARK = 1 << 40  # outside int4's range: never the high half of an int8
# The parser nests at most a few thousand calls: a chain is cut into groups of this many
# columns, each its own chain from seed 0, and the groups' hashes (as text: a group's
# expression appears once) are chained in turn.
_CHAIN_GROUP = 100
_SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema')"
_USER_TABLES = f"""
    SELECT n.nspname, c.relname, a.attname, a.atttypid::bigint, a.attnotnull
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relkind = 'r'
      AND n.nspname NOT IN {_SYSTEM_SCHEMAS}
      AND n.nspname !~ '^pg_(toast|temp)'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'e')
    ORDER BY 1, 2
"""
# Fixed output formats so a row's text is the same at backup time and after a restore.
_STABLE_TEXT = (
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 1",
    "SET LOCAL bytea_output = 'hex'",
    "SET LOCAL lc_monetary = 'C'",
)
# Tables whose columns involve (through domains, arrays, composites, ranges) a type whose
# values are OIDs to the hash functions: enums and the reg* types. A record hash of their
# rows (the v2 method, "r:") cannot be reproduced after a restore.
_OID_HASHED_TABLES = """
    WITH RECURSIVE used(relid, typ) AS (
        SELECT a.attrelid, a.atttypid FROM pg_attribute a
        WHERE a.attrelid = ANY(%(tables)s::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped
      UNION
        SELECT u.relid, inner_type.oid
        FROM used u JOIN pg_type t ON t.oid = u.typ
        CROSS JOIN LATERAL (
            SELECT t.typbasetype WHERE t.typtype = 'd'
            UNION ALL SELECT t.typelem WHERE t.typelem <> 0
            UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid
            UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = t.oid
            UNION ALL SELECT a.atttypid FROM pg_attribute a
                WHERE t.typtype = 'c' AND a.attrelid = t.typrelid
                  AND a.attnum > 0 AND NOT a.attisdropped
        ) AS inner_type(oid)
    )
    SELECT DISTINCT n.nspname || '.' || c.relname
    FROM used u JOIN pg_type t ON t.oid = u.typ
    JOIN pg_class c ON c.oid = u.relid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE t.typtype = 'e'
       OR (t.typnamespace = 'pg_catalog'::regnamespace AND t.typname LIKE 'reg%%')
"""
_LEGACY_OID_NOTE = (
    "row count only: this backup's checksum (abmigrate's v2 method) hashed enum values by"
    " their OID, which a restore changes; a new backup's figures compare the data too"
)


def libpq_env(url: str) -> dict[str, str]:
    """The libpq environment naming the database of ``url`` (password included)."""
    parsed = make_url(url)
    env: dict[str, str] = {}
    query = {key: str(value) for key, value in parsed.query.items()}
    host = parsed.host or query.pop("host", None)
    if host:
        env["PGHOST"] = host
    if parsed.port:
        env["PGPORT"] = str(parsed.port)
    if parsed.username:
        env["PGUSER"] = parsed.username
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    if parsed.database:
        env["PGDATABASE"] = parsed.database
    for key, variable in (
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
        ("application_name", "PGAPPNAME"),
    ):
        if key in query:
            env[variable] = query[key]
    return child_env(env)


def _password(url: str) -> list[str]:
    password = make_url(url).password
    return [str(password)] if password else []


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def _tool(name: str, needed_major: int | None = None) -> tuple[str, str]:
    major = needed_major or "NN"
    path = require_tool(name, hint=INSTALL_HINT.format(major=major))
    version = tool_version(path)
    if needed_major is not None and _major(version) < needed_major:
        raise BackupError(
            f"{name} {version} cannot work with PostgreSQL {needed_major}",
            hint=INSTALL_HINT.format(major=needed_major)
            + f" and put its bin folder first on PATH (found {path})",
        )
    return path, version


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PostgresBackend:
    dialect = "postgresql"
    extension = ".dump"

    def dump(self, url: str, folder: Path, compressor: Compressor) -> DumpOutcome:
        pg_dump, pg_dump_version = _tool("pg_dump")
        with connect(url) as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                server_version = str(connection.exec_driver_sql("SHOW server_version").scalar())
                server_major = (
                    int(str(connection.exec_driver_sql("SHOW server_version_num").scalar()))
                    // 10000
                )
                if _major(pg_dump_version) < server_major:
                    raise BackupError(
                        f"pg_dump {pg_dump_version} cannot dump a PostgreSQL {server_major} server",
                        hint=INSTALL_HINT.format(major=server_major)
                        + f" and put its bin folder first on PATH (found {pg_dump})",
                    )
                snapshot = str(connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
                revisions = _revisions(connection)
                job = _DirectoryDump(
                    pg_dump, pg_dump_version, snapshot, folder / ARCHIVE_DIR, compressor, url
                )
                # The figures are read in the exported snapshot while pg_dump streams it.
                worker = threading.Thread(target=job.run, name="abmigrate-pg_dump")
                worker.start()
                # Waits go through an Event: a Thread.join() that a signal interrupts can mark
                # the thread as ended while it still runs (CPython 3.11), and then the partial
                # folder would be removed under its feet.
                try:
                    tables = _table_stats(connection)
                    _wait_for(job.ended)
                except BaseException:
                    # Interrupted or failed: stop the dump rather than wait for it.
                    job.stop()
                    _wait_for(job.ended)
                    raise
                worker.join()
                if job.failure is not None:
                    raise job.failure
        archive = folder / ARCHIVE_DIR
        return DumpOutcome(
            files=sorted(f"{ARCHIVE_DIR}/{path.name}" for path in archive.iterdir()),
            format=job.describe(),
            server_version=server_version,
            revisions=revisions,
            tables=tables,
            checksum_method=CHECKSUM_METHOD,
            tools={"pg_dump": pg_dump_version, compressor.name: tool_version(compressor.path)},
            tested={
                f"{ARCHIVE_DIR}/{name}": figures
                for name, figures in (job.follower.tested if job.follower else {}).items()
            },
        )

    def check_archive(self, folder: Path, files: Sequence[str], compressor: Compressor) -> str:
        pg_restore, _ = _tool("pg_restore")
        if _is_directory(files):
            # The table of contents is a file of its own: pg_restore -l reads only it.
            listing = run_pipeline(
                [[pg_restore, "-l", str(folder / ARCHIVE_DIR)]],
                env=child_env({}),
                what="reading the archive's table of contents",
            ).decode(errors="replace")
        else:
            with (folder / files[0]).open("rb") as archive:
                listing = run_pipeline(
                    [compressor.decompress_argv, [pg_restore, "-l"]],
                    env=child_env({}),
                    stdin=archive,
                    what="reading the archive's table of contents",
                    reader_may_stop_early=True,
                ).decode(errors="replace")
        entries = [line for line in listing.splitlines() if line and not line.startswith(";")]
        data = [line for line in entries if " TABLE DATA " in line]
        return f"table of contents: {len(entries)} entries, {len(data)} tables with data"

    def restore(self, folder: Path, files: Sequence[str], compressor: Compressor, url: str) -> None:
        with connect(url) as connection:
            server_major = int(str(connection.exec_driver_sql("SHOW server_version_num").scalar()))
        server_major //= 10000
        pg_restore, _ = _tool("pg_restore")
        psql, _ = _tool("psql")
        clear = _clear_sql(server_major)
        # Replacing a database's content: one transaction for everything (clearing the old
        # objects and loading the archive either both happen or neither does), so one job.
        atomic = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-c", clear, "-f", "-"]
        if not _is_directory(files):  # a backup taken before directory archives
            with (folder / files[0]).open("rb") as single:
                run_pipeline(
                    [compressor.decompress_argv, [pg_restore, "-f", "-"], atomic],
                    env=libpq_env(url),
                    stdin=single,
                    stdout=subprocess.DEVNULL,
                    what="restore",
                    secrets=_password(url),
                )
            return
        names = [name[len(ARCHIVE_DIR) + 1 :] for name in files]
        archive = folder / ARCHIVE_DIR
        replacing = not self.is_empty(url)
        jobs = dump_jobs()
        try:
            if not replacing:
                listing = run_pipeline(
                    [[pg_restore, "-l", str(archive)]],
                    env=child_env({}),
                    what="reading the archive's table of contents",
                ).decode()
                tables = table_data_entries(listing, archive, compressor.extension)
                if tables is not None:  # else large objects: pg_restore loads them below
                    self._load_in_sections(pg_restore, archive, listing, tables, compressor, url)
                    return
            # pg_restore reads plain regular files only (pg_dump 15 cannot read zstd, nor a
            # pipe): the archive is decompressed beside the backup, side by side, and removed
            # after.
            with decompressed_copy(archive, names, compressor, folder.parent, jobs) as copy:
                if copy is None:
                    raise BackupError(
                        f"not enough free space beside {folder} to decompress the archive"
                        " for pg_restore",
                        hint="free disk space in the backup folder's file system",
                    )
                if replacing:
                    run_pipeline(
                        [[pg_restore, "-f", "-", str(copy)], atomic],
                        env=libpq_env(url),
                        stdout=subprocess.DEVNULL,
                        what="restore",
                        secrets=_password(url),
                    )
                else:
                    self._load(pg_restore, [f"--jobs={jobs}", str(copy)], url)
        except BaseException:
            if not replacing:  # a failure clears what was loaded: left as empty as it was
                with contextlib.suppress(BackupError):
                    run_pipeline(
                        [[psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", clear]],
                        env=libpq_env(url),
                        stdout=subprocess.DEVNULL,
                        what="clearing the partly restored database",
                        secrets=_password(url),
                    )
            raise

    def _load_in_sections(
        self,
        pg_restore: str,
        archive: Path,
        listing: str,
        tables: Sequence[TableData],
        compressor: Compressor,
        url: str,
    ) -> None:
        """An empty database, loaded section by section: the definitions (pg_restore), the
        rows of every table (concurrent COPYs, straight from the compressed files, a large
        table split between the connections), the rest of the data (sequence values), then
        indexes and constraints (pg_restore -j, with room to sort in memory)."""
        jobs = dump_jobs()
        settings, tables = copy_statements(pg_restore, archive, tables)
        self._load(pg_restore, ["--section=pre-data", str(archive)], url)
        with _copy_connections(url, jobs) as connections:
            with connections[0].cursor() as cursor:
                cursor.execute(
                    "SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'"
                )
                found = cursor.fetchone()
            index_memory = max(_INDEX_MEMORY_KB, int(found[0]) if found else 0)
            load_tables(tables, compressor, connections, settings)
        loaded = {table.entry for table in tables}
        with private_dir("abmigrate-restore-") as scratch:
            rest = scratch / "rest.list"
            rest.write_text(
                "".join(
                    f"{line}\n"
                    for line in listing.splitlines()
                    if line and not line.startswith(";") and line not in loaded
                )
            )
            self._load(pg_restore, ["--section=data", "-L", str(rest), str(archive)], url)
        self._load(
            pg_restore,
            ["--section=post-data", f"--jobs={jobs}", str(archive)],
            url,
            options=f"-c maintenance_work_mem={index_memory}kB",
        )

    def _load(
        self, pg_restore: str, arguments: Sequence[str], url: str, *, options: str = ""
    ) -> None:
        env = libpq_env(url)
        if options:  # before the user's own PGOPTIONS, which win where both set something
            env["PGOPTIONS"] = f"{options} {env.get('PGOPTIONS', '')}".strip()
        run_pipeline(
            [[pg_restore, "--exit-on-error", "--dbname=", *arguments]],  # dbname: PGDATABASE
            env=env,
            stdout=subprocess.DEVNULL,
            what="restore",
            secrets=_password(url),
        )

    def table_stats(
        self, url: str, recorded: Mapping[str, str] | None = None
    ) -> dict[str, TableStats]:
        with connect(url) as connection, connection.begin():
            return _table_stats(connection, recorded)

    def is_empty(self, url: str) -> bool:
        with connect(url) as connection:
            count = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                f" WHERE n.nspname NOT IN {_SYSTEM_SCHEMAS}"
                " AND n.nspname !~ '^pg_' AND c.relkind IN ('r','p','v','m','S','f')"
            ).scalar()
        return not count


@contextlib.contextmanager
def _copy_connections(url: str, count: int) -> Iterator[list[Any]]:
    """``count`` psycopg connections to ``url`` (the COPY API is psycopg's), closed on exit
    (an unfinished COPY is rolled back with its connection)."""
    psycopg_url = make_url(url).set(drivername="postgresql+psycopg")
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(
                connect(psycopg_url.render_as_string(hide_password=False))
            ).connection.driver_connection
            for _ in range(count)
        ]


def _is_directory(files: Sequence[str]) -> bool:
    return bool(files) and files[0].startswith(ARCHIVE_DIR + "/")


def _wait_for(event: threading.Event) -> None:
    """Wait in short steps: the kernel may deliver SIGTERM to any of the backup's threads,
    and a main thread blocked on a lock for good would never run the handler that turns
    it into KeyboardInterrupt (the backup then hung until pg_dump ended on its own)."""
    while not event.wait(0.2):
        pass


class _DirectoryDump:
    """``pg_dump -Fd -j N`` of one snapshot, each table's file compressed as it is written.

    pg_dump 16+ compresses with zstd itself (``--compress=zstd:N``), and any version with
    gzip; pg_dump 15 and older writes plain files (``-Z0``) that :class:`CompressWhileWritten`
    compresses beside the dump, one process per file, each finished as pg_dump finishes it.
    """

    def __init__(
        self,
        pg_dump: str,
        version: str,
        snapshot: str,
        archive: Path,
        compressor: Compressor,
        url: str,
    ) -> None:
        self.archive = archive
        self.compressor = compressor
        self.url = url
        self.jobs = dump_jobs()
        self.native = compressor.name == "gzip" or _major(version) >= 16
        if self.native:
            method = "" if compressor.name == "gzip" else f"{compressor.name}:"
            compress = f"--compress={method}{compressor.level}"
        else:
            compress = "--compress=0"
        self.argv = [
            pg_dump,
            "--format=directory",
            f"--jobs={self.jobs}",
            f"--snapshot={snapshot}",
            compress,
            "--verbose",
            "--file",
            str(archive),
        ]
        self.follower = (
            None
            if self.native
            else CompressWhileWritten(
                archive, compressor, self.jobs, "compressing the dump's files"
            )
        )
        self.failure: BaseException | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = threading.Event()
        self.ended = threading.Event()

    def describe(self) -> str:
        where = "by pg_dump" if self.native else "per table, beside pg_dump"
        return f"pg_dump directory (-Fd -j{self.jobs}), {self.compressor.describe()} {where}"

    def stop(self) -> None:
        self._stopped.set()
        if self._process is not None:
            kill_quietly(self._process)
        if self.follower is not None:
            self.follower.abort()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # re-raised in the calling thread
            self.failure = exc
            self.stop()
        finally:
            self.ended.set()

    def _run(self) -> None:
        follower = self.follower
        follower_failure: list[BaseException] = []

        def follow() -> None:
            assert follower is not None
            try:
                follower.run()
            except BaseException as exc:
                follower_failure.append(exc)

        following = threading.Thread(target=follow, name="abmigrate-compress")
        with tempfile.TemporaryFile() as errors:
            try:
                self._process = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env={**libpq_env(self.url), "LC_ALL": "C"},
                )
            except OSError as exc:
                raise BackupError(f"cannot run pg_dump: {exc.strerror}") from None
            if self._stopped.is_set():
                kill_quietly(self._process)
            if follower is not None:
                following.start()
            assert self._process.stderr is not None
            with self._process.stderr as progress:
                for line in progress:
                    if follower is not None and (found := _FINISHED.search(line)):
                        follower.finished(f"{int(found.group(1))}.dat")
                    elif not _INFO.match(line):
                        errors.write(line)
            self._process.wait()
            if follower is not None:
                if self._process.returncode != 0:
                    follower.abort()  # the dump failed: its files are not worth finishing
                follower.tool_exited()
                following.join()
            if self._process.returncode != 0:
                raise pipeline_error(
                    [(self.argv, self._process.returncode, errors)], "pg_dump", _password(self.url)
                )
            if follower_failure:
                raise follower_failure[0]


def _first(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _clear_sql(server_major: int) -> str:
    recreate_public = (
        "CREATE SCHEMA public AUTHORIZATION pg_database_owner;"
        " GRANT USAGE ON SCHEMA public TO PUBLIC;"
        if server_major >= 15
        else "CREATE SCHEMA public; GRANT ALL ON SCHEMA public TO PUBLIC;"
    )
    return (
        "DO $abm$ DECLARE s text; BEGIN"
        " FOR s IN SELECT nspname FROM pg_namespace"
        f" WHERE nspname NOT IN {_SYSTEM_SCHEMAS} AND nspname !~ '^pg_'"
        " LOOP EXECUTE format('DROP SCHEMA %I CASCADE', s); END LOOP; END $abm$;"
        f" {recreate_public}"
    )


def _revisions(connection: Any) -> list[str]:
    exists = connection.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar()
    if exists is None:
        return []
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return sorted(str(row) for row in rows)


# A column: its name, its type's OID, and whether it is NOT NULL.
_Column = tuple[str, int, bool]


def _table_stats(
    connection: Any, recorded: Mapping[str, str] | None = None
) -> dict[str, TableStats]:
    """Rows and checksum of every user table. ``recorded`` (a restore test) holds the figures
    taken at backup time: a table whose figure was made with the v2 method is measured that
    way, so backups taken before v3 can still be restore-tested."""
    for statement in _STABLE_TEXT:
        connection.exec_driver_sql(statement)
    record_hash = int(str(connection.exec_driver_sql("SHOW server_version_num").scalar())) >= 140000
    columns: dict[str, list[_Column]] = {}
    quoted: dict[str, str] = {}
    for schema, table, column, type_oid, not_null in connection.exec_driver_sql(_USER_TABLES).all():
        name = f"{schema}.{table}"
        quoted[name] = f"{_quote(schema)}.{_quote(table)}"
        found = columns.setdefault(name, [])
        if column is not None:
            found.append((str(column), int(type_oid), bool(not_null)))
    recorded = recorded or {}
    legacy_record = [name for name in columns if recorded.get(name, "").startswith("r:")]
    oid_hashed: set[str] = set()
    if legacy_record:
        oid_hashed = set(
            connection.exec_driver_sql(
                _OID_HASHED_TABLES, {"tables": [quoted[name] for name in legacy_record]}
            ).scalars()
        )
    stats: dict[str, TableStats] = {}
    for name, table_columns in columns.items():
        method = recorded.get(name, "")[:2]
        if method == "r:":
            if name in oid_hashed:
                rows = connection.exec_driver_sql(f"SELECT count(*) FROM ONLY {quoted[name]}")
                stats[name] = TableStats(int(rows.scalar()), "", unchecked=_LEGACY_OID_NOTE)
            else:
                stats[name] = _one_table(connection, quoted[name], "r:", "abm_row__")
        elif method == "t:" or not record_hash:
            stats[name] = _one_table(connection, quoted[name], "t:", "abm_row__::text")
        elif method == "c:":
            stats[name] = _one_table(connection, quoted[name], "c:", _row_expression(table_columns))
        else:
            stats[name] = _one_table(
                connection, quoted[name], "h:", _chain_expression(table_columns)
            )
    return stats


def _row_expression(columns: Sequence[_Column]) -> str:
    """The row to hash for a v3 figure, built so that its hash depends on the data alone.

    A record hash applies each column type's own hash function, and some of those do not
    hash the data: an enum value hashes as its label's OID, which differs in every restored
    copy. So each column enters the row in a form whose hash is a function of its text (see
    _COLUMN_FORMS); anything else as its text, which is what pg_dump writes and reads back.
    Columns go by name, so a restore that reorders them (inheritance, partitions) leaves the
    figure alone.
    """
    parts = [
        _COLUMN_FORMS.get(type_oid, _OTHER_FORM).format(f"abm_row__.{_quote(column)}")
        for column, type_oid, _ in sorted(columns)
    ]
    return f"ROW({', '.join(parts)})"


def _chain_step(column: _Column, seed: str) -> str:
    """The hash of one column's value with ``seed`` as the seed (see _CHAIN_FORMS)."""
    name, type_oid, not_null = column
    value = f"abm_row__.{_quote(name)}"
    form = _CHAIN_FORMS.get(type_oid)
    if form is None:
        form, value, stands_for = _CHAIN_OTHER, f"{value}::text", "''"
    else:
        stands_for = _NULL_STANDS_FOR[type_oid]
    if type_oid == 20 and not not_null:
        # NULL xor-s into the seed, in place of the high half, a value no high half takes.
        return (
            f"hashint8extended(coalesce({value}, '0'),"
            f" {seed} # coalesce({value} >> 32, {_INT8_NULL_MARK}))"
        )
    if not not_null:  # a NOT NULL column skips work that would change nothing
        seed = f"({seed} # CASE WHEN {value} IS NULL THEN {_NULL_MARK} ELSE 0 END)"
        value = f"coalesce({value}, {stands_for})"
    return form.format(v=value, s=seed)


def _chain_expression(columns: Sequence[_Column]) -> str:
    """The v4 hash of a row: its columns, by name, each hashed into the next one's seed.

    Columns go by name, so a restore that reorders them (inheritance, partitions) leaves the
    figure alone. A table wider than _CHAIN_GROUP columns is hashed in groups (one chain
    each, from seed 0), whose hashes' text is then chained.
    """
    ordered = sorted(columns)
    groups = []
    for start in range(0, len(ordered), _CHAIN_GROUP):
        chain = "0"
        for column in ordered[start : start + _CHAIN_GROUP]:
            chain = _chain_step(column, chain)
        groups.append(chain)
    if len(groups) == 1:
        return groups[0]
    chain = "0"
    for group in groups:
        chain = f"hashtextextended(({group})::text, {chain})"
    return chain


def _one_table(connection: Any, qualified: str, method: str, row: str) -> TableStats:
    # One pass: count, and a sum of 64-bit row hashes, which needs no sort and does not
    # depend on row order. The method is part of the figure ("h:", the v3 "c:", the v2
    # "r:"/"t:"), so a restore test compares like with like. "h:" (PostgreSQL 14+) is
    # _chain_expression, already a 64-bit hash. "c:" (v3) hashes the record of
    # _row_expression, then hashes that hash's text: a record hash is a linear combination of
    # its columns' hashes, so their sum over rows would not see values swapped between rows.
    # "t:" (older servers) hashes the whole row's text, about twice as slow as "c:".
    if method == "h:":
        hashed = row
    elif method == "c:":
        hashed = f"hashtextextended(hash_record_extended({row}, 0)::text, 0)"
    elif method == "t:":
        hashed = f"hashtextextended({row}, 0)"
    else:  # "r:", v2 figures only
        hashed = f"hash_record_extended({row}, 0)"
    rows, checksum = connection.exec_driver_sql(
        f"SELECT count(*), coalesce(sum({hashed}), 0)::text FROM ONLY {qualified} AS abm_row__"
    ).one()
    return TableStats(int(rows), f"{method}{checksum}")
