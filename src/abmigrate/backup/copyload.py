"""Loading the table data of a pg_dump directory archive with concurrent COPYs.

Why not ``pg_restore -j``: pg_restore 15 reads neither zstd nor a pipe, so it needs a
decompressed copy of the archive first (ten times its size on disk), and it loads each table
through one COPY, so a table holding most of the rows is one core's work. Here each table's
file is decompressed as a stream (``zstd -dc``), cut into blocks of whole rows, and loaded by
``COPY ... FROM STDIN`` (pg_dump's own statement, psycopg's copy API) on N connections: each
takes the largest table nobody loads yet and, when none is left, joins a table still loading,
so the largest table is shared at the end. The rows of a shared table end up in another
physical order; their content, count and figures are the same. Measured on two cores
(docs/backups.md, "Speed"): the whole restore about as fast as ``pg_restore -j`` from a
decompressed copy, without the copy; both are bound by the server's CPU.

Text COPY data has one row per line (newlines inside values are escaped as ``\\n``), so a
block cut after a newline holds whole rows, and the line ``\\.`` marks the end of the data.
"""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from abmigrate.backup.base import Compressor, child_env, kill_quietly, pipeline_error
from abmigrate.errors import BackupError

__all__ = ["TableData", "copy_statements", "load_tables", "table_data_entries"]

# Rows go to the connections in blocks of about this size (whole rows).
BLOCK = 4 << 20
# Blocks read ahead of the connections, per connection: enough to keep each one fed.
_AHEAD = 3
_END_OF_DATA = b"\\.\n"
# A data entry of `pg_restore -l`: "3362; 0 40228 TABLE DATA public customers postgres".
_TABLE_DATA = re.compile(r"^(\d+); \d+ \d+ TABLE DATA ")
# Data entries that are not a table's rows in a file of its own (large objects): such an
# archive is restored by pg_restore alone.
_OTHER_DATA = re.compile(r"^\d+; \d+ \d+ (BLOBS|BLOB DATA|LARGE OBJECT) ")
_COPY = re.compile(r"^(COPY .*? FROM stdin);$", re.MULTILINE | re.DOTALL)
_SESSION = re.compile(r"^(SET [a-z_]+ = .*|SELECT pg_catalog\.set_config\(.*\));$", re.MULTILINE)


@dataclass(frozen=True)
class TableData:
    """One table's rows in the archive: its TOC line, data file and pg_dump's COPY."""

    entry: str
    file: Path
    copy: str = ""


def table_data_entries(listing: str, archive: Path, extension: str) -> list[TableData] | None:
    """The TABLE DATA entries of a ``pg_restore -l`` listing whose files are in ``archive``;
    None when the archive holds data this loader does not handle (large objects) or a file
    is missing."""
    found: list[TableData] = []
    for line in listing.splitlines():
        if _OTHER_DATA.match(line):
            return None
        matched = _TABLE_DATA.match(line)
        if matched is None:
            continue
        for name in (f"{matched.group(1)}.dat{extension}", f"{matched.group(1)}.dat"):
            if (archive / name).is_file():
                found.append(TableData(line, archive / name))
                break
        else:
            return None
    return found


def copy_statements(
    pg_restore: str, archive: Path, tables: Sequence[TableData]
) -> tuple[list[str], list[TableData]]:
    """The session settings pg_restore sets before loading data, and each table with the
    COPY statement pg_dump wrote for it.

    pg_restore prints them for an archive whose data files are empty: a private folder with
    the table of contents and an empty file per table, restored to text, those entries only.
    """
    with tempfile.TemporaryDirectory(prefix="abmigrate-toc-") as folder:
        skeleton = Path(folder)
        (skeleton / "toc.dat").write_bytes((archive / "toc.dat").read_bytes())
        for table in tables:
            (skeleton / f"{table.entry.split(';', 1)[0]}.dat").touch()
        chosen = skeleton / "tables.list"
        chosen.write_text("".join(f"{table.entry}\n" for table in tables))
        with tempfile.TemporaryFile() as errors:
            done = subprocess.run(
                [pg_restore, "--section=data", "-L", str(chosen), "-f", "-", str(skeleton)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=child_env({}),
                check=False,
            )
            if done.returncode != 0:
                raise pipeline_error(
                    [(["pg_restore"], done.returncode, errors)], "reading the COPY statements"
                )
    script = done.stdout.decode()
    statements = _COPY.findall(script)
    if len(statements) != len(tables):
        raise BackupError(
            f"restore failed: pg_restore printed {len(statements)} COPY statements"
            f" for {len(tables)} tables"
        )
    settings = _SESSION.findall(script[: script.find("COPY ")] if statements else script)
    return settings, [
        TableData(table.entry, table.file, statement)
        for table, statement in zip(tables, statements, strict=True)
    ]


class _Feed:
    """One table's rows as they are read: blocks for whichever connections load the table,
    then ``None`` (put back by each connection that takes it, so all of them see it)."""

    def __init__(self, table: TableData, jobs: int) -> None:
        self.table = table
        self.blocks: queue.Queue[memoryview | None] = queue.Queue(maxsize=_AHEAD * jobs)
        self.drained = False


class _Stop(Exception):
    """Another worker failed: this one stops quietly."""


def load_tables(
    tables: Sequence[TableData],
    compressor: Compressor,
    connections: Sequence[Any],
    settings: Sequence[str],
) -> None:
    """Load every table's rows through ``connections`` (psycopg connections to the target,
    each committing its own COPYs); raises the first failure as a BackupError naming the
    table.

    A connection takes the largest table nobody loads yet; once every table is taken, it
    joins a table still being loaded, so the last (largest) tables are shared and every
    connection works to the end. Concurrent COPYs into one table contend for extending it
    (PostgreSQL 15), so a table is shared only when nothing else is left to load.
    """
    for connection in connections:
        with connection.cursor() as cursor:
            for statement in settings:
                cursor.execute(statement)
        connection.commit()
    waiting = sorted(tables, key=lambda table: table.file.stat().st_size, reverse=True)
    loading: list[_Feed] = []
    readers: list[threading.Thread] = []
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []
    processes: list[subprocess.Popen[bytes]] = []

    def fail(exc: BaseException) -> None:
        if not isinstance(exc, _Stop):
            failures.append(exc)
        stop.set()
        for process in list(processes):
            kill_quietly(process)

    def put(feed: _Feed, block: memoryview | None) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                feed.blocks.put(block, timeout=0.1)
                return
        raise _Stop

    def read(feed: _Feed) -> None:
        try:
            for rows in _blocks_of(feed.table, compressor, processes, stop):
                put(feed, rows)
            put(feed, None)
        except BaseException as exc:
            fail(exc)

    def pick() -> _Feed | None:
        with lock:
            if stop.is_set():
                raise _Stop
            if waiting:
                feed = _Feed(waiting.pop(0), len(connections))
                loading.append(feed)
                reader = threading.Thread(target=read, args=(feed,), name="abmigrate-read")
                readers.append(reader)
                reader.start()
                return feed
            loading[:] = [feed for feed in loading if not feed.drained]
            return loading[0] if loading else None

    def write(connection: Any) -> None:
        try:
            while (feed := pick()) is not None:
                _copy_feed(connection, feed, stop)
        except BaseException as exc:
            fail(exc)

    writers = [
        threading.Thread(target=write, args=(connection,), name="abmigrate-copy")
        for connection in connections
    ]
    for thread in writers:
        thread.start()
    try:
        for thread in writers:
            while thread.is_alive():
                thread.join(0.2)  # short waits: a signal still reaches this thread
    except BaseException:
        fail(_Stop())
        raise
    finally:
        for thread in writers:
            thread.join()
        with lock:
            started = list(readers)
        for thread in started:
            thread.join()
    if failures:
        raise failures[0]


def _copy_feed(connection: Any, feed: _Feed, stop: threading.Event) -> None:
    """Load blocks of one table until its end, in one COPY (opened at the first block: a
    connection that joins late may find none left), committed at the end."""
    with contextlib.ExitStack() as current:
        copy: Any = None
        while True:
            try:
                rows = feed.blocks.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    raise _Stop from None
                continue
            if stop.is_set():
                raise _Stop
            if rows is None:
                feed.drained = True
                feed.blocks.put_nowait(None)  # for the other connections on this table
                break
            try:
                if copy is None:
                    cursor = current.enter_context(connection.cursor())
                    copy = current.enter_context(cursor.copy(feed.table.copy))
                copy.write(rows)
            except Exception as exc:
                raise _copy_error(exc, feed.table) from None
        if copy is not None:
            try:
                current.close()  # ends the COPY (the server checks the last rows now)
                connection.commit()
            except Exception as exc:
                raise _copy_error(exc, feed.table) from None


def _copy_error(exc: Exception, table: TableData) -> BackupError:
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    target = table.copy.split(" (", 1)[0].split(" FROM ", 1)[0]
    return BackupError(f"restore failed: {target}: {first}")


def _blocks_of(
    table: TableData,
    compressor: Compressor,
    processes: list[subprocess.Popen[bytes]],
    stop: threading.Event,
) -> Iterator[memoryview]:
    """The table's rows, decompressed as a stream, in blocks of whole lines, up to the
    end-of-data line."""
    packed = table.file.name.endswith(compressor.extension)
    with table.file.open("rb") as source, tempfile.TemporaryFile() as errors:
        process: subprocess.Popen[bytes] | None = None
        stream: IO[bytes] = source
        if packed:
            process = subprocess.Popen(
                compressor.decompress_argv,
                stdin=source,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=child_env({}),
            )
            processes.append(process)
            assert process.stdout is not None
            stream = process.stdout
        try:
            yield from _whole_lines(stream)
        finally:
            if process is not None:
                if stop.is_set():
                    kill_quietly(process)
                assert process.stdout is not None
                process.stdout.close()
                process.wait()
                processes.remove(process)
        if process is not None and process.returncode != 0 and not stop.is_set():
            raise pipeline_error(
                [(compressor.decompress_argv, process.returncode, errors)],
                f"restore failed: decompressing {table.file.name}",
            )


def _whole_lines(stream: IO[bytes]) -> Iterator[memoryview]:
    """Blocks of whole lines read from ``stream``, up to the end-of-data line. Each block is a
    buffer of its own, read into once and handed on as it is (the rows are copied only into
    the connection's buffer): a few copies of every byte is most of this loader's own CPU."""
    carry = b""  # the start of a line cut off at the end of the previous block
    while True:
        buffer = bytearray(len(carry) + BLOCK)
        buffer[: len(carry)] = carry
        got = stream.readinto(memoryview(buffer)[len(carry) :])  # type: ignore[attr-defined]
        filled = len(carry) + got
        cut = buffer.rfind(b"\n", 0, filled) + 1 if got else filled
        if got and cut == 0:  # one line longer than a block: read on
            carry = bytes(buffer[:filled])
            continue
        carry = bytes(buffer[cut:filled])
        end = _end_of_data(buffer, cut)
        if end >= 0:
            if end:
                yield memoryview(buffer)[:end]
            return
        if cut:
            yield memoryview(buffer)[:cut]
        if not got:
            return


def _end_of_data(rows: bytearray, size: int) -> int:
    """Where the line ``\\.`` starts in the first ``size`` bytes of ``rows`` (whole lines),
    or -1."""
    if rows.startswith(_END_OF_DATA, 0, size):
        return 0
    found = rows.find(b"\n" + _END_OF_DATA, 0, size)
    return found + 1 if found >= 0 else -1
