"""MySQL/MariaDB backups: ``mariadb-dump --single-transaction`` (or mysqldump), compressed,
restored through the ``mariadb`` (or ``mysql``) client.

Credentials go to the tools in a private 0600 option file (``--defaults-extra-file``), never
in their arguments.

The per-table figures are read in a consistent snapshot opened just before the dump starts;
MySQL cannot share a snapshot with mysqldump, so a write landing between the two shows up as
a difference in ``verify-backup --restore-test`` (reported, never hidden).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from abmigrate.backup.base import (
    FILE_MODE,
    Compressor,
    DumpOutcome,
    TableStats,
    child_env,
    private_dir,
    require_tool,
    run_pipeline,
    tool_version,
)
from abmigrate.db.database import connect
from abmigrate.errors import BackupError

__all__ = ["MysqlBackend"]

CHECKSUM_METHOD = "mysql:sum(conv(md5(concat_ws(quote(col)...))[:15]))/v1"
DUMP_HINT = "install the MariaDB client (apt install mariadb-client) or mysql-client"
_COMPLETED = b"-- Dump completed"


def _tool(name: str, alternative: str) -> tuple[str, str]:
    path = require_tool(name, hint=DUMP_HINT, alternatives=[alternative])
    return path, tool_version(path)


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _option_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextmanager
def _options_file(url: str) -> Iterator[tuple[Path, str]]:
    """A private client option file carrying host, port, user and password; and the db name."""
    parsed = make_url(url)
    if not parsed.database:
        from abmigrate.db.url import mask_url

        raise BackupError(f"the URL names no database: {mask_url(url)}")
    lines = ["[client]"]
    if parsed.host:
        lines.append(f"host={_option_value(parsed.host)}")
    if parsed.port:
        lines.append(f"port={parsed.port}")
    if parsed.username:
        lines.append(f"user={_option_value(parsed.username)}")
    if parsed.password is not None:
        lines.append(f"password={_option_value(str(parsed.password))}")
    unix_socket = parsed.query.get("unix_socket")
    if isinstance(unix_socket, str):
        lines.append(f"socket={_option_value(unix_socket)}")
    with private_dir("abmigrate-my-") as folder:
        path = folder / "client.cnf"
        import os

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        yield path, parsed.database


def _password(url: str) -> list[str]:
    password = make_url(url).password
    return [str(password)] if password else []


class MysqlBackend:
    dialect = "mysql"

    def dump(self, url: str, folder: Path, compressor: Compressor) -> DumpOutcome:
        dump_tool, dump_version = _tool("mariadb-dump", "mysqldump")
        name = "data.sql" + compressor.extension
        with connect(url) as connection:
            server_version = str(connection.exec_driver_sql("SELECT VERSION()").scalar())
            connection.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            connection.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            try:
                revisions = _revisions(connection)
                tables = _table_stats(connection)
            finally:
                connection.exec_driver_sql("COMMIT")
        with _options_file(url) as (options, database), (folder / name).open("xb") as out:
            run_pipeline(
                [
                    [
                        dump_tool,
                        f"--defaults-extra-file={options}",
                        "--single-transaction",
                        "--routines",
                        "--triggers",
                        "--hex-blob",
                        "--default-character-set=utf8mb4",
                        database,
                    ],
                    compressor.compress_argv,
                ],
                env=child_env({}),
                stdout=out,
                what=Path(dump_tool).name,
                secrets=_password(url),
            )
        return DumpOutcome(
            files=[name],
            format="sql (--single-transaction)",
            server_version=server_version,
            revisions=revisions,
            tables=tables,
            checksum_method=CHECKSUM_METHOD,
            tools={
                Path(dump_tool).name: dump_version,
                compressor.name: tool_version(compressor.path),
            },
        )

    def check_archive(self, folder: Path, files: Sequence[str], compressor: Compressor) -> str:
        with (folder / files[0]).open("rb") as archive:
            tail = run_pipeline(
                [compressor.decompress_argv, ["tail", "-c", "4096"]],
                env=child_env({}),
                stdin=archive,
                what="reading the dump",
            )
        # mysqldump writes this line last: a dump cut short does not end with it.
        if _COMPLETED not in tail:
            raise BackupError("the dump is incomplete: it does not end with '-- Dump completed'")
        return "sql dump complete"

    def restore(self, folder: Path, files: Sequence[str], compressor: Compressor, url: str) -> None:
        client, _ = _tool("mariadb", "mysql")
        self._clear(url)
        with (
            _options_file(url) as (options, database),
            (folder / files[0]).open("rb") as archive,
        ):
            run_pipeline(
                [
                    compressor.decompress_argv,
                    [
                        client,
                        f"--defaults-extra-file={options}",
                        "--default-character-set=utf8mb4",
                        f"--database={database}",
                    ],
                ],
                env=child_env({}),
                stdin=archive,
                stdout=subprocess.DEVNULL,
                what="restore",
                secrets=_password(url),
            )

    def table_stats(
        self, url: str, recorded: Mapping[str, str] | None = None
    ) -> dict[str, TableStats]:
        # One method since the first version: the recorded figures need no special case.
        with connect(url) as connection:
            return _table_stats(connection)

    def is_empty(self, url: str) -> bool:
        with connect(url) as connection:
            count = connection.exec_driver_sql(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
            ).scalar()
        return not count

    def _clear(self, url: str) -> None:
        # MySQL cannot roll back DDL: the old tables go first, then the dump loads.
        with connect(url) as connection:
            objects = connection.exec_driver_sql(
                "SELECT table_name, table_type FROM information_schema.tables"
                " WHERE table_schema = DATABASE()"
            ).all()
            connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            for table_name, table_type in objects:
                kind = "VIEW" if table_type == "VIEW" else "TABLE"
                connection.exec_driver_sql(f"DROP {kind} IF EXISTS {_quote(table_name)}")
            connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")


def _revisions(connection: Any) -> list[str]:
    exists = connection.exec_driver_sql(
        "SELECT COUNT(*) FROM information_schema.tables"
        " WHERE table_schema = DATABASE() AND table_name = 'alembic_version'"
    ).scalar()
    if not exists:
        return []
    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
    return sorted(str(row) for row in rows)


def _table_stats(connection: Any) -> dict[str, TableStats]:
    columns: dict[str, list[str]] = {}
    for table, column in connection.exec_driver_sql(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c"
        " JOIN information_schema.tables t"
        "   ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
        " WHERE c.table_schema = DATABASE() AND t.table_type = 'BASE TABLE'"
        " ORDER BY c.table_name, c.ordinal_position"
    ).all():
        columns.setdefault(str(table), []).append(str(column))
    stats: dict[str, TableStats] = {}
    for table, names in sorted(columns.items()):
        row_text = "CONCAT_WS(',', " + ", ".join(f"QUOTE({_quote(n)})" for n in names) + ")"
        rows, checksum = connection.exec_driver_sql(
            "SELECT COUNT(*), COALESCE(SUM(CAST(CONV(SUBSTRING(MD5("
            + row_text
            + f"), 1, 15), 16, 10) AS UNSIGNED)), 0) FROM {_quote(table)}"
        ).one()
        stats[table] = TableStats(int(rows), str(checksum))
    return stats
