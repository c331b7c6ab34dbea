from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, label


@register
class CheckValidated(Rule):
    """
    ### What it does
    Flags a CHECK constraint added to an existing table without `NOT VALID`.

    ### Why is this bad?
    Adding a validated CHECK constraint scans every row while holding an ACCESS EXCLUSIVE
    lock: nobody can read or write the table until the scan ends.

    ### Example
    ```python
    op.create_check_constraint("ck_parts_price_positive", "parts", "price > 0")
    ```

    ### Use instead
    ```python
    from abmigrate import ops

    ops.add_check("ck_parts_price_positive", "parts", "price > 0")
    ```
    `abmigrate.ops` adds it `NOT VALID` (no scan), commits, then runs `VALIDATE CONSTRAINT` in
    its own transaction, which does not block reads or writes. With plain Alembic:
    ```python
    op.execute(
        "ALTER TABLE parts ADD CONSTRAINT ck_parts_price_positive CHECK (price > 0) NOT VALID"
    )
    op.execute("ALTER TABLE parts VALIDATE CONSTRAINT ck_parts_price_positive")
    ```
    """

    code = "AM105"
    name = "check-validated"
    severity = "warning"
    judged_by = "size"
    hint = (
        'use `ops.add_check("ck", "t", "c > 0")` from abmigrate.ops'
        " (NOT VALID, then VALIDATE without blocking writes)"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement, table, command in alter_commands(unit.parsed()):
            if label(command.subtype) != "AT_AddConstraint" or unit.is_new_table(table):
                continue
            constraint = command.def_
            if label(constraint.contype) == "CONSTR_CHECK" and not constraint.skip_validation:
                yield Hit(
                    f"CHECK constraint {constraint.conname or ''} on existing table {table}"
                    " scans every row under an ACCESS EXCLUSIVE lock",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
