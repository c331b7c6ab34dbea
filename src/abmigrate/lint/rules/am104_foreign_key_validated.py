from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, label, qualified


@register
class ForeignKeyValidated(Rule):
    """
    ### What it does
    Flags a FOREIGN KEY constraint added to an existing table without `NOT VALID`.

    ### Why is this bad?
    Adding a validated foreign key scans the whole table while holding a SHARE ROW EXCLUSIVE
    lock on both the table and the referenced table: writes to both wait for the scan.

    ### Example
    ```python
    op.create_foreign_key("fk_orders_customer", "orders", "customers",
                          ["customer_id"], ["id"])
    ```

    ### Use instead
    ```python
    from abmigrate import ops

    ops.add_foreign_key("fk_orders_customer", "orders", "customers", ["customer_id"], ["id"])
    ```
    `abmigrate.ops` adds it `NOT VALID` (no scan), commits, then runs `VALIDATE CONSTRAINT` in
    its own transaction (a SHARE UPDATE EXCLUSIVE lock: reads and writes go on). With plain
    Alembic:
    ```python
    op.create_foreign_key("fk_orders_customer", "orders", "customers",
                          ["customer_id"], ["id"], postgresql_not_valid=True)
    # then, in a later revision (a SHARE UPDATE EXCLUSIVE lock only):
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_customer")
    ```
    """

    code = "AM104"
    name = "foreign-key-validated"
    severity = "warning"
    judged_by = "size"
    hint = (
        'use `ops.add_foreign_key("fk", "t", "ref", ["c"], ["id"])` from abmigrate.ops'
        " (NOT VALID, then VALIDATE without blocking writes)"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement, table, command in alter_commands(unit.parsed()):
            if label(command.subtype) != "AT_AddConstraint" or unit.is_new_table(table):
                continue
            constraint = command.def_
            if label(constraint.contype) == "CONSTR_FOREIGN" and not constraint.skip_validation:
                yield Hit(
                    f"foreign key {constraint.conname or ''} on {table} →"
                    f" {qualified(constraint.pktable)} is validated at once, blocking writes"
                    " to both tables during the scan",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
