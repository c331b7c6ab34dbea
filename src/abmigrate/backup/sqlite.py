"""SQLite backups: the online backup API (consistent while the application writes), compressed.

The copy is taken with ``sqlite3.Connection.backup``, which restarts when another connection
writes mid-copy, so the copy is one consistent state. The per-table figures are computed on
that copy, so they describe exactly what the backup holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from abmigrate.backup.base import (
    FILE_MODE,
    Compressor,
    DumpOutcome,
    TableStats,
    child_env,
    private_dir,
    run_pipeline,
    tool_version,
)
from abmigrate.db.database import sqlite_path
from abmigrate.errors import BackupError

__all__ = ["SqliteBackend"]

CHECKSUM_METHOD = "sqlite:sum(blake2b-64(repr(row)))/v1"
_HEADER = b"SQLite format 3\x00"


def _path(url: str) -> Path:
    path = sqlite_path(url)
    if path is None:
        raise BackupError("only file-backed SQLite databases can be backed up or restored")
    return path


def _open(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    try:
        if readonly:
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        return sqlite3.connect(path)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open SQLite database {path}: {exc}") from None


class SqliteBackend:
    dialect = "sqlite"

    def dump(self, url: str, folder: Path, compressor: Compressor) -> DumpOutcome:
        source_path = _path(url)
        if not source_path.is_file():
            raise BackupError(f"SQLite database {source_path} does not exist: nothing to back up")
        copy_path = folder / "copy.sqlite"
        fd = os.open(copy_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.close(fd)
        source = _open(source_path, readonly=True)
        try:
            copy = _open(copy_path)
            try:
                source.backup(copy)
                revisions = _revisions(copy)
                tables = _table_stats(copy)
                server_version = sqlite3.sqlite_version
            except sqlite3.Error as exc:
                raise BackupError(f"SQLite backup of {source_path} failed: {exc}") from None
            finally:
                copy.close()
        finally:
            source.close()
        name = "data.sqlite" + compressor.extension
        try:
            with copy_path.open("rb") as plain, (folder / name).open("xb") as out:
                run_pipeline(
                    [compressor.compress_argv],
                    env=child_env({}),
                    stdin=plain,
                    stdout=out,
                    what="compressing the SQLite copy",
                )
        finally:
            copy_path.unlink(missing_ok=True)
        return DumpOutcome(
            files=[name],
            format="sqlite online backup",
            server_version=server_version,
            revisions=revisions,
            tables=tables,
            checksum_method=CHECKSUM_METHOD,
            tools={
                "sqlite3": sqlite3.sqlite_version,
                compressor.name: tool_version(compressor.path),
            },
        )

    def check_archive(self, folder: Path, files: Sequence[str], compressor: Compressor) -> str:
        with private_dir() as scratch:
            plain = self._decompress(folder / files[0], compressor, scratch / "check.sqlite")
            connection = _open(plain, readonly=True)
            try:
                result = connection.execute("PRAGMA quick_check").fetchone()
                tables = len(_user_tables(connection))
            except sqlite3.Error as exc:
                raise BackupError(f"the archive is not a readable SQLite database: {exc}") from None
            finally:
                connection.close()
        if not result or result[0] != "ok":
            raise BackupError(f"the archive's SQLite database is damaged: {result}")
        return f"sqlite quick_check ok, {tables} tables"

    def restore(self, folder: Path, files: Sequence[str], compressor: Compressor, url: str) -> None:
        target_path = _path(url)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        with private_dir() as scratch:
            plain = self._decompress(folder / files[0], compressor, scratch / "restore.sqlite")
            source = _open(plain, readonly=True)
            try:
                target = _open(target_path)
                try:
                    # The backup API replaces the target's pages in one step, under its lock.
                    source.backup(target)
                except sqlite3.Error as exc:
                    raise BackupError(f"restore into {target_path} failed: {exc}") from None
                finally:
                    target.close()
            finally:
                source.close()

    def table_stats(
        self, url: str, recorded: Mapping[str, str] | None = None
    ) -> dict[str, TableStats]:
        # One method since the first version: the recorded figures need no special case.
        connection = _open(_path(url), readonly=True)
        try:
            return _table_stats(connection)
        finally:
            connection.close()

    def is_empty(self, url: str) -> bool:
        path = _path(url)
        if not path.exists() or path.stat().st_size == 0:
            return True
        connection = _open(path, readonly=True)
        try:
            return not _user_tables(connection)
        finally:
            connection.close()

    def _decompress(self, archive: Path, compressor: Compressor, plain: Path) -> Path:
        with archive.open("rb") as source, plain.open("xb") as out:
            run_pipeline(
                [compressor.decompress_argv],
                env=child_env({}),
                stdin=source,
                stdout=out,
                what="decompressing the SQLite backup",
            )
        with plain.open("rb") as handle:
            if handle.read(len(_HEADER)) != _HEADER:
                raise BackupError("the archive does not hold a SQLite database")
        return plain


def _user_tables(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%'"
        " ESCAPE '\\' ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _revisions(connection: sqlite3.Connection) -> list[str]:
    if "alembic_version" not in _user_tables(connection):
        return []
    rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return sorted(str(row[0]) for row in rows)


def _table_stats(connection: sqlite3.Connection) -> dict[str, TableStats]:
    stats: dict[str, TableStats] = {}
    for table in _user_tables(connection):
        quoted = '"' + table.replace('"', '""') + '"'
        rows = 0
        total = 0
        with contextlib.closing(connection.execute(f"SELECT * FROM {quoted}")) as cursor:
            for row in cursor:
                rows += 1
                digest = hashlib.blake2b(repr(tuple(row)).encode(), digest_size=8).digest()
                total = (total + int.from_bytes(digest, "big")) % (1 << 64)
        stats[table] = TableStats(rows, f"{total:016x}")
    return stats
