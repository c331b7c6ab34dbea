"""Small helpers over pglast's PostgreSQL parse trees, shared by the rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = [
    "alter_commands",
    "column_constraints",
    "column_type",
    "deparse",
    "enum_name",
    "has_subquery",
    "is_not_null_check",
    "label",
    "parse_statements",
    "qualified",
    "string_constants",
    "table_of",
    "walk",
]


def parse_statements(text: str) -> list[tuple[str, Any | None, str | None]]:
    """``(sql, node, error)`` for each statement in ``text``; node None when it does not parse."""
    import pglast

    stripped = text.strip()
    try:
        raw = pglast.parse_sql(stripped)
    except pglast.parser.ParseError as exc:
        return [(stripped, None, str(exc))]
    encoded = stripped.encode()
    result: list[tuple[str, Any | None, str | None]] = []
    for item in raw:
        start = item.stmt_location or 0
        end = start + item.stmt_len if item.stmt_len else len(encoded)
        sql = encoded[start:end].decode(errors="replace").strip().rstrip(";").strip()
        result.append((sql, item.stmt, None))
    return result


def walk(node: Any) -> Iterator[Any]:
    """Every pglast node under ``node`` (itself included), depth first."""
    from pglast.ast import Node

    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Node):
            yield current
            for name in current:
                value = getattr(current, name, None)
                if value is not None and not isinstance(value, str | int | float | bool):
                    stack.append(value)
        elif isinstance(current, tuple | list):
            stack.extend(current)


def qualified(range_var: Any) -> str | None:
    """The table name of a RangeVar (schema dropped: rules work on bare table names)."""
    if range_var is None:
        return None
    return str(range_var.relname)


def table_of(node: Any) -> str | None:
    relation = getattr(node, "relation", None)
    return qualified(relation)


def enum_name(names: Any) -> str:
    """The last element of a qualified type name (``public.mood`` → ``mood``)."""
    parts = [getattr(part, "sval", str(part)) for part in names or ()]
    return parts[-1] if parts else ""


def column_type(type_name: Any) -> tuple[str, tuple[int, ...]]:
    """``(name, typmods)`` of a TypeName: ``varchar(10)`` → ``("varchar", (10,))``."""
    name = enum_name(type_name.names) if type_name is not None else ""
    mods: list[int] = []
    for mod in getattr(type_name, "typmods", None) or ():
        value = getattr(getattr(mod, "val", None), "ival", None)
        if isinstance(value, int):
            mods.append(value)
    return name, tuple(mods)


def deparse(node: Any) -> str:
    from pglast.stream import RawStream

    return str(RawStream()(node))


def label(value: Any) -> str:
    """The name of a pglast enum member (``AlterTableType.AT_AddColumn`` → ``AT_AddColumn``)."""
    return str(getattr(value, "name", value))


def alter_commands(statements: Any) -> Iterator[tuple[Any, str | None, Any]]:
    """``(statement, table, AlterTableCmd)`` for every ALTER TABLE sub-command."""
    for statement in statements:
        if statement.kind == "AlterTableStmt":
            table = table_of(statement.node)
            for command in statement.node.cmds or ():
                yield statement, table, command


def column_constraints(column_def: Any) -> list[Any]:
    return list(getattr(column_def, "constraints", None) or ())


def string_constants(node: Any) -> set[str]:
    """Every string literal under ``node``."""
    found: set[str] = set()
    for child in walk(node):
        if type(child).__name__ == "String" and isinstance(getattr(child, "sval", None), str):
            found.add(child.sval)
    return found


def has_subquery(node: Any) -> bool:
    return any(type(child).__name__ == "SubLink" for child in walk(node))


def is_not_null_check(expr: Any) -> str | None:
    """The column of a ``col IS NOT NULL`` expression, else None."""
    if type(expr).__name__ != "NullTest" or label(expr.nulltesttype) != "IS_NOT_NULL":
        return None
    fields = getattr(expr.arg, "fields", None) or ()
    names = [getattr(part, "sval", None) for part in fields]
    return names[-1] if names and isinstance(names[-1], str) else None
