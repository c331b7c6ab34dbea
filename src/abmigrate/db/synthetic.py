"""Synthetic rows: N rows per table, generated from the schema, that the constraints accept.

For rehearsals and checks on a database that has no production data: every table gets up to
``rows`` rows, parents before children, with

- foreign keys pointing at rows that exist (several foreign keys of one table are combined
  so that a UNIQUE over them still holds: (warehouse, part) pairs are all distinct);
- unique and primary-key columns distinct (values are derived from the row number);
- enum columns cycling through the enum's values (PostgreSQL enum types, MySQL ENUM, and
  ``CHECK (col IN ('a', 'b'))`` — how a non-native enum looks once reflected);
- autoincrement/identity keys and columns with a server default left to the database;
- values non-negative, so common CHECKs (quantity >= 0) hold.

Tables that still refuse the rows (an unusual CHECK, a trigger) are reported, not fatal.

Usage::

    from abmigrate.db.synthetic import fill
    report = fill("postgresql+psycopg://…/scratch", rows=1000)
    report.rows        # {"users": 1000, ...}
    report.skipped     # {"odd_table": "CheckViolation: ..."}

The schema is read from the database itself (it is the migrated schema that the rows must
fit), or taken from ``metadata`` when given.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from abmigrate.db.fingerprint import excluded_table

if TYPE_CHECKING:
    from sqlalchemy import Column, Connection, MetaData, Table

__all__ = ["FillReport", "fill", "fill_connection"]

_BATCH = 500
_EPOCH = dt.datetime(2024, 1, 1, 8, 0, 0)


@dataclass
class FillReport:
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {"rows": dict(self.rows), "skipped": dict(self.skipped)}


def fill(url: str, rows: int, *, metadata: MetaData | None = None) -> FillReport:
    """Insert up to ``rows`` rows into every table of the database at ``url``."""
    from abmigrate.db.database import connect

    with connect(url) as connection:
        return fill_connection(connection, rows, metadata=metadata)


def fill_connection(
    connection: Connection, rows: int, *, metadata: MetaData | None = None
) -> FillReport:
    """:func:`fill` on an open connection; each table is committed on its own."""
    import warnings

    from sqlalchemy import MetaData
    from sqlalchemy.exc import SAWarning

    if metadata is None:
        metadata = MetaData()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)
            metadata.reflect(connection, only=lambda name, _: not excluded_table(name))
        connection.rollback()
    report = FillReport()
    keys: dict[str, list[tuple[Any, ...]]] = {}
    for table in metadata.sorted_tables:
        if excluded_table(table.name):
            continue
        try:
            values = _rows_for(table, rows, keys, connection.dialect.name)
        except _MissingParent as missing:
            report.skipped[table.name] = f"no rows in {missing} to refer to"
            continue
        try:
            with connection.begin():
                for start in range(0, len(values), _BATCH):
                    connection.execute(table.insert(), values[start : start + _BATCH])
        except Exception as exc:
            lines = str(getattr(exc, "orig", exc)).strip().splitlines()
            report.skipped[table.name] = f"{type(exc).__name__}: {lines[0] if lines else ''}"
            continue
        report.rows[table.name] = len(values)
        keys.update(_referenced_keys(connection, table, metadata))
    return report


class _MissingParent(Exception):
    pass


def _referenced_keys(
    connection: Connection, table: Table, metadata: MetaData
) -> dict[str, list[tuple[Any, ...]]]:
    # The values children may point at: every column set a foreign key refers to in `table`.
    from sqlalchemy import select

    wanted: set[tuple[str, ...]] = set()
    for other in metadata.tables.values():
        for fk in other.foreign_key_constraints:
            if fk.referred_table is table:
                wanted.add(tuple(element.column.name for element in fk.elements))
    found: dict[str, list[tuple[Any, ...]]] = {}
    for columns in wanted:
        query = select(*(table.c[name] for name in columns))
        with connection.begin():
            found[_key(table.name, columns)] = [tuple(row) for row in connection.execute(query)]
    return found


def _key(table: str, columns: tuple[str, ...]) -> str:
    return f"{table}({','.join(columns)})"


def _rows_for(
    table: Table, count: int, keys: dict[str, list[tuple[Any, ...]]], dialect: str
) -> list[dict[str, Any]]:
    fk_columns: dict[str, tuple[int, int]] = {}  # column -> (fk number, position in fk)
    fk_choices: list[list[tuple[Any, ...]]] = []
    for fk in table.foreign_key_constraints:
        referred = tuple(element.column.name for element in fk.elements)
        if fk.referred_table is table:
            continue  # self references stay NULL (or are filled below if required)
        choices = keys.get(_key(fk.referred_table.name, referred), [])
        required = any(not column.nullable for column in fk.columns)
        if not choices:
            if required:
                raise _MissingParent(fk.referred_table.name)
            continue
        number = len(fk_choices)
        fk_choices.append(choices)
        for position, column in enumerate(fk.columns):
            fk_columns[column.name] = (number, position)
    allowed = _allowed_values(table)
    rows: list[dict[str, Any]] = []
    for index in range(count):
        # Mixed radix: foreign key k varies every product(len(choices of 0..k-1)) rows, so
        # the combination over all foreign keys is distinct for every row it can be.
        picks: list[tuple[Any, ...]] = []
        radix = 1
        for choices in fk_choices:
            picks.append(choices[(index // radix) % len(choices)])
            radix *= len(choices)
        row: dict[str, Any] = {}
        for column in table.columns:
            if column.name in fk_columns:
                number, position = fk_columns[column.name]
                row[column.name] = picks[number][position]
                continue
            if _left_to_database(column):
                continue
            if column.foreign_keys and column.nullable:
                row[column.name] = None
                continue
            if column.name in allowed:
                values = allowed[column.name]
                row[column.name] = values[index % len(values)]
                continue
            row[column.name] = _value(column, index, dialect)
        rows.append(row)
    return rows


_IN_LIST = re.compile(r"""^\(?\s*["`\[]?(\w+)["`\]]?\s+IN\s*\((.*)\)\s*\)?$""", re.I | re.S)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _allowed_values(table: Table) -> dict[str, list[str]]:
    """Columns restricted by ``CHECK (col IN ('a', 'b'))``: a non-native enum, reflected."""
    from sqlalchemy import CheckConstraint

    allowed: dict[str, list[str]] = {}
    for constraint in table.constraints:
        if not isinstance(constraint, CheckConstraint):
            continue
        match = _IN_LIST.match(str(constraint.sqltext).strip())
        if match and match.group(1) in table.columns:
            values = [value.replace("''", "'") for value in _QUOTED.findall(match.group(2))]
            if values:
                allowed[match.group(1)] = values
    return allowed


def _left_to_database(column: Column[Any]) -> bool:
    if column.identity is not None or column.computed is not None:
        return True
    if column.primary_key and column.autoincrement is True:
        return True
    if column.primary_key and _python_type(column) is int and column.table.primary_key.columns:
        # An integer primary key of its own is the rowid/serial: the database numbers it.
        return len(column.table.primary_key.columns) == 1 and not column.foreign_keys
    return column.server_default is not None and not column.primary_key


def _python_type(column: Column[Any]) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def _value(column: Column[Any], index: int, dialect: str) -> Any:
    from sqlalchemy import Enum, types

    type_ = column.type
    enums = getattr(type_, "enums", None)
    if isinstance(type_, Enum) or enums:
        values = list(enums or [])
        return values[index % len(values)] if values else None
    python_type = _python_type(column)
    if isinstance(type_, types.Uuid) or python_type is uuid.UUID:
        return uuid.UUID(int=index + 1)
    if python_type is bool:
        return index % 2 == 0
    if python_type is int:
        return index + 1
    if python_type is Decimal:
        return Decimal(index % 10_000) + Decimal("0.5")
    if python_type is float:
        return float(index) + 0.25
    if python_type is dt.datetime:
        return _EPOCH + dt.timedelta(minutes=index)
    if python_type is dt.date:
        return (_EPOCH + dt.timedelta(days=index)).date()
    if python_type is dt.time:
        return dt.time(index % 24, index % 60)
    if python_type is dt.timedelta:
        return dt.timedelta(seconds=index)
    if python_type is bytes:
        return index.to_bytes(8, "big")
    if python_type in (dict, list) or isinstance(type_, types.JSON):
        return {"row": index}
    return _text(column, index)


def _text(column: Column[Any], index: int) -> str:
    length = getattr(column.type, "length", None) or 255
    base = f"{column.name}-{index}"
    if len(base) <= length:
        return base
    # Short columns: the row number in base 36 keeps values distinct.
    digits = ""
    number = index
    while True:
        number, remainder = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[remainder] + digits
        if number == 0:
            break
    return digits[-length:]
