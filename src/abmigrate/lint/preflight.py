"""Data preflight: predict, from live rows, which pending steps would fail or lose data.

This module says which checks a step calls for (:func:`checks_for`, from its statements
alone); :mod:`abmigrate.lint.preflight_run` runs them against the live database.

Each step's PostgreSQL statements (rendered offline, parsed by pglast) are turned into
read-only counting queries: NULLs before ``SET NOT NULL``, rows before a ``NOT NULL``
column without default, duplicates before a UNIQUE constraint or index, orphans before a
FOREIGN KEY, rows violating a new CHECK, values a narrowing type change cannot hold, and the
data a DROP TABLE / DROP COLUMN deletes. Queries run in a read-only transaction (PostgreSQL)
under a statement timeout; a check that cannot run is reported as such, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from abmigrate.lint.model import Statement
from abmigrate.lint.sql import (
    alter_commands,
    column_constraints,
    column_type,
    deparse,
    label,
    qualified,
    table_of,
)

__all__ = ["PreflightCheck", "checks_for"]

_INT_RANGES = {
    "int2": (-32768, 32767),
    "smallint": (-32768, 32767),
    "int4": (-2147483648, 2147483647),
    "integer": (-2147483648, 2147483647),
    "int": (-2147483648, 2147483647),
}


@dataclass
class PreflightCheck:
    """One query to run: rows of ``table`` matching ``where`` are the offending ones."""

    check: str
    table: str
    columns: list[str]
    where: (
        str  # SQL condition; {table}, {col0}, {col1} …, {text}, {length} are filled in per dialect
    )
    fails: bool  # True: offending rows make the step fail; False: they are lost
    describe: str  # the statement, as the subject of the message
    group_by: bool = False  # duplicates: offending rows are groups of equal keys
    columns_exist: bool = True  # False when the step itself adds the column
    extra_tables: dict[str, str] = field(default_factory=dict)


def checks_for(statements: list[Statement], *, direction: str) -> Iterator[PreflightCheck]:
    """The checks a revision's statements call for, in statement order."""
    # Columns this revision adds or backfills: their live values say nothing about what
    # SET NOT NULL will find, so that check is left out.
    added_columns: set[tuple[str, str]] = set()
    for statement in statements:
        if statement.node is None:
            continue
        kind = statement.kind
        if kind == "DropStmt" and label(statement.node.removeType) == "OBJECT_TABLE":
            for names in statement.node.objects or ():
                table = str(getattr(names[-1], "sval", ""))
                yield PreflightCheck(
                    "drop_table_rows", table, [], "1 = 1", False, f"DROP TABLE {table}"
                )
        elif kind == "IndexStmt" and statement.node.unique:
            columns = [p.name for p in statement.node.indexParams or () if p.name]
            if columns and len(columns) == len(statement.node.indexParams):
                check = _duplicates(table_of(statement.node) or "", columns, "unique index")
                if statement.node.whereClause is not None:  # a partial index: only its rows
                    where = (
                        deparse(statement.node.whereClause).replace("{", "{{").replace("}", "}}")
                    )
                    check.where += f" AND ({where})"
                yield check
        elif kind == "AlterTableStmt":
            yield from _alter_checks(statement, added_columns)
        elif kind == "UpdateStmt":
            table = table_of(statement.node) or ""
            for target in statement.node.targetList or ():
                added_columns.add((table, str(target.name)))
    del direction


def _alter_checks(
    statement: Statement, added_columns: set[tuple[str, str]]
) -> Iterator[PreflightCheck]:
    for _, table, command in alter_commands([statement]):
        if table is None:
            continue
        subtype = label(command.subtype)
        if subtype == "AT_AddColumn":
            column_def = command.def_
            added_columns.add((table, column_def.colname))
            kinds = {label(c.contype) for c in column_constraints(column_def)}
            if "CONSTR_NOTNULL" in kinds and not kinds & {"CONSTR_DEFAULT", "CONSTR_IDENTITY"}:
                yield PreflightCheck(
                    "not_null_column_without_default",
                    table,
                    [column_def.colname],
                    "1 = 1",
                    True,
                    f"ADD COLUMN {column_def.colname} NOT NULL without default",
                    columns_exist=False,
                )
        elif subtype == "AT_SetNotNull" and (table, command.name) not in added_columns:
            yield PreflightCheck(
                "not_null",
                table,
                [command.name],
                "{col0} IS NULL",
                True,
                f"SET NOT NULL on {table}.{command.name}",
            )
        elif subtype == "AT_DropColumn":
            yield PreflightCheck(
                "drop_column_values",
                table,
                [command.name],
                "{col0} IS NOT NULL",
                False,
                f"DROP COLUMN {table}.{command.name}",
            )
        elif subtype == "AT_AlterColumnType":
            check = _narrowing(table, command)
            if check is not None:
                yield check
        elif subtype == "AT_AddConstraint":
            yield from _constraint_checks(table, command.def_)


def _constraint_checks(table: str, constraint: Any) -> Iterator[PreflightCheck]:
    kind = label(constraint.contype)
    name = constraint.conname or ""
    if kind in ("CONSTR_UNIQUE", "CONSTR_PRIMARY") and not constraint.indexname:
        keys = [key.sval for key in constraint.keys or ()]
        if keys:
            yield _duplicates(table, keys, f"constraint {name}".strip())
    elif kind == "CONSTR_FOREIGN" and not constraint.skip_validation:
        fk = [attr.sval for attr in constraint.fk_attrs or ()]
        pk = [attr.sval for attr in constraint.pk_attrs or ()]
        referenced = qualified(constraint.pktable) or ""
        if fk and len(fk) == len(pk):
            not_null = " AND ".join(f"{{col{i}}} IS NOT NULL" for i in range(len(fk)))
            join = " AND ".join(f"{{ref}}.{{pk{i}}} = {{table}}.{{col{i}}}" for i in range(len(fk)))
            check = PreflightCheck(
                "foreign_key_orphans",
                table,
                fk,
                f"{not_null} AND NOT EXISTS (SELECT 1 FROM {{ref}} WHERE {join})",
                True,
                f"FOREIGN KEY {name} to {referenced}",
            )
            check.extra_tables = {"ref": referenced, **{f"pk{i}": c for i, c in enumerate(pk)}}
            yield check
    elif kind == "CONSTR_CHECK" and not constraint.skip_validation:
        yield PreflightCheck(
            "check_violations",
            table,
            [],
            f"NOT ({deparse(constraint.raw_expr)})",
            True,
            f"CHECK {name} on {table}",
        )


def _duplicates(table: str, columns: list[str], what: str) -> PreflightCheck:
    return PreflightCheck(
        "unique_duplicates",
        table,
        columns,
        " AND ".join(f"{{col{i}}} IS NOT NULL" for i in range(len(columns))),
        True,
        f"{what} on {table}({', '.join(columns)})",
        group_by=True,
    )


def _narrowing(table: str, command: Any) -> PreflightCheck | None:
    name, mods = column_type(command.def_.typeName)
    column = command.name
    condition = None
    if name in ("varchar", "bpchar", "char") and mods:
        condition = f"{{length}}(CAST({{col0}} AS {{text}})) > {mods[0]}"
        target = f"{name}({mods[0]})"
    elif name in _INT_RANGES:
        low, high = _INT_RANGES[name]
        condition = f"({{col0}} < {low} OR {{col0}} > {high})"
        target = name
    elif name == "numeric" and mods:
        scale = mods[1] if len(mods) > 1 else 0
        condition = f"abs({{col0}}) >= 1e{mods[0] - scale}"
        target = f"numeric({', '.join(map(str, mods))})"
    if condition is None:
        return None
    return PreflightCheck(
        "type_narrowing",
        table,
        [column],
        condition,
        True,
        f"changing {table}.{column} to {target}",
    )
