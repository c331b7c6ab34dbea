"""What a downgrade would destroy: the tables and columns its SQL drops, and how many rows /
non-null values they hold right now.

The SQL is the plan's own offline rendering for the target dialect (what will run), so this
sees exactly the DROP TABLE / DROP COLUMN statements of each step, including the table
rebuilds Alembic's batch mode renders for SQLite (``_alembic_tmp_<table>``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from abmigrate.results import DataLoss

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.config.workspace import Workspace
    from abmigrate.results import Plan, PreflightResult

__all__ = ["dropped_objects", "estimate_data_loss"]

_NAME = r'(?:[`"\[]?[\w$]+[`"\]]?\.)?[`"\[]?([\w$]+)[`"\]]?'
_DROP_TABLE = re.compile(rf"^\s*DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_NAME}", re.I)
_ALTER = re.compile(
    rf"^\s*ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?{_NAME}\s+(.*)$", re.I | re.S
)
_DROP_COLUMN = re.compile(rf"DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?{_NAME}", re.I)
_BATCH_INSERT = re.compile(rf"^\s*INSERT\s+INTO\s+{_NAME}\s*\(([^)]*)\)\s*SELECT", re.I | re.S)
_TMP = "_alembic_tmp_"


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def dropped_objects(sql: str) -> tuple[list[str], dict[str, list[str] | None]]:
    """(tables dropped, {table: columns dropped}); a batch rebuild maps to None = "columns
    not copied into the rebuilt table", resolved against the live table later."""
    tables: list[str] = []
    columns: dict[str, list[str] | None] = {}
    rebuilt: dict[str, list[str]] = {}
    for statement in _statements(sql):
        insert = _BATCH_INSERT.match(statement)
        if insert and insert.group(1).startswith(_TMP):
            kept = [c.strip().strip('`"[]') for c in insert.group(2).split(",")]
            rebuilt[insert.group(1)[len(_TMP) :]] = kept
            continue
        drop = _DROP_TABLE.match(statement)
        if drop:
            name = drop.group(1)
            if name not in rebuilt and not name.startswith(_TMP):
                tables.append(name)
            continue
        alter = _ALTER.match(statement)
        if alter:
            for clause in alter.group(2).split(","):
                if re.match(
                    r"^\s*DROP\s+(CONSTRAINT|INDEX|KEY|FOREIGN|PRIMARY|CHECK|DEFAULT)", clause, re.I
                ):
                    continue
                if re.search(r"ALTER\s+COLUMN", clause, re.I):
                    continue
                column = _DROP_COLUMN.search(clause)
                if column and re.match(r"^\s*DROP", clause, re.I):
                    columns.setdefault(alter.group(1), []).append(column.group(1))  # type: ignore[union-attr]
    for table, kept in rebuilt.items():
        columns[table] = [f"!{name}" for name in kept]  # resolved: live columns minus these
    return tables, columns


def _count(connection: Connection, sql: str) -> int | None:
    from sqlalchemy import text

    try:
        return int(connection.execute(text(sql)).scalar() or 0)
    except Exception:
        connection.rollback()
        return None


def estimate_data_loss(workspace: Workspace, plan: Plan) -> list[DataLoss]:
    """One entry per dropped table or column: what, in which step, how much data it holds."""
    from sqlalchemy import inspect

    from abmigrate.db.database import connect

    losses: list[DataLoss] = []
    found: list[tuple[str, str, list[str] | None]] = []
    for step in plan.steps:
        if not step.sql:
            # The SQL could not be rendered offline (e.g. SQLite batch mode needs a live
            # table): the preflight, which ran the revision's operations, still counted what
            # its drops would destroy.
            losses.extend(_from_preflight(step.revision, step.preflight))
            continue
        tables, columns = dropped_objects(step.sql)
        found.extend((step.revision, table, None) for table in tables)
        found.extend((step.revision, table, cols) for table, cols in columns.items())
    if not found:
        return losses
    with connect(workspace.url) as connection:
        inspector = inspect(connection)
        quote = connection.dialect.identifier_preparer.quote
        dropped_tables = {table for _, table, cols in found if cols is None}
        for revision, table, cols in found:
            if not inspector.has_table(table):
                continue
            if cols is None:
                rows = _count(connection, f"SELECT count(*) FROM {quote(table)}")
                losses.append(
                    DataLoss(
                        revision=revision,
                        table=table,
                        column=None,
                        rows=rows,
                        message=f"{revision} drops table {table} ({_n(rows)} rows)",
                    )
                )
                continue
            if table in dropped_tables:
                continue
            live = [c["name"] for c in inspector.get_columns(table)]
            if cols and all(c.startswith("!") for c in cols):
                kept = {c[1:] for c in cols}
                cols = [name for name in live if name not in kept]
            for column in cols:
                if column not in live:
                    continue
                values = _count(connection, f"SELECT count({quote(column)}) FROM {quote(table)}")
                losses.append(
                    DataLoss(
                        revision=revision,
                        table=table,
                        column=column,
                        rows=values,
                        message=f"{revision} drops column {table}.{column}"
                        f" ({_n(values)} non-null values)",
                    )
                )
    return losses


def _from_preflight(revision: str, checks: list[PreflightResult]) -> list[DataLoss]:
    losses = []
    for check in checks:
        if check.check not in ("drop_table_rows", "drop_column_values"):
            continue
        count = check.count
        table, column = check.table, check.column
        what = f"column {table}.{column}" if column else f"table {table}"
        unit = "non-null values" if column else "rows"
        losses.append(
            DataLoss(
                revision=revision,
                table=table,
                column=column,
                rows=count,
                message=f"{revision} drops {what} ({_n(count)} {unit})",
            )
        )
    return losses


def _n(value: int | None) -> str:
    return "unknown number of" if value is None else str(value)
