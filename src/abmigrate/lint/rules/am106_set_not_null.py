from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, is_not_null_check, label


@register
class SetNotNull(Rule):
    """
    ### What it does
    Flags `ALTER COLUMN ... SET NOT NULL` on an existing table when no validated
    `CHECK (column IS NOT NULL)` constraint proves the column already has no NULLs.

    ### Why is this bad?
    `SET NOT NULL` scans the whole table under an ACCESS EXCLUSIVE lock (reads and writes
    wait), and fails the migration if a single NULL is left. Since PostgreSQL 12 it skips the
    scan when a validated CHECK constraint already proves the column has no NULLs.

    ### Example
    ```python
    op.alter_column("parts", "unit_of_measure", nullable=False)
    ```

    ### Use instead
    ```python
    from abmigrate import ops

    ops.set_not_null("parts", "unit_of_measure")
    ```
    `abmigrate.ops` adds `CHECK (unit_of_measure IS NOT NULL) NOT VALID`, validates it
    without blocking writes, sets NOT NULL (no scan), then drops the check. With plain
    Alembic:
    ```python
    op.execute("ALTER TABLE parts ADD CONSTRAINT ck_uom_not_null"
               " CHECK (unit_of_measure IS NOT NULL) NOT VALID")
    op.execute("ALTER TABLE parts VALIDATE CONSTRAINT ck_uom_not_null")
    op.alter_column("parts", "unit_of_measure", nullable=False)
    op.drop_constraint("ck_uom_not_null", "parts")
    ```
    """

    code = "AM106"
    name = "set-not-null"
    severity = "warning"
    judged_by = "size"
    hint = (
        'use `ops.set_not_null("t", "c")` from abmigrate.ops (a validated CHECK (c IS NOT'
        " NULL) first, so SET NOT NULL needs no scan under its lock)"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        proven = set(unit.before.not_null_checked)
        pending = dict(unit.before.pending_not_null_checks)
        for statement, table, command in alter_commands(unit.parsed()):
            subtype = label(command.subtype)
            if table is None:
                continue
            if subtype == "AT_AddConstraint" and label(command.def_.contype) == "CONSTR_CHECK":
                column = is_not_null_check(command.def_.raw_expr)
                if column and command.def_.skip_validation:
                    pending[(table, command.def_.conname or "")] = column
                elif column:
                    proven.add((table, column))
            elif subtype == "AT_ValidateConstraint" and (table, command.name) in pending:
                proven.add((table, pending[(table, command.name)]))
            elif (
                subtype == "AT_SetNotNull"
                and not unit.is_new_table(table)
                and (table, command.name) not in proven
            ):
                yield Hit(
                    f"SET NOT NULL on {table}.{command.name} scans the table under an"
                    " ACCESS EXCLUSIVE lock (and fails if a NULL is left)",
                    statement.line,
                    statement.sql,
                    tables=(table,),
                )
