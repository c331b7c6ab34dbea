from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import enum_name, string_constants


@register
class EnumValueUsedInTransaction(Rule):
    """
    ### What it does
    Flags `ALTER TYPE ... ADD VALUE 'x'` followed, in the same transaction, by a statement
    that uses `'x'`.

    ### Why is this bad?
    PostgreSQL refuses to use a new enum value before the transaction that added it commits
    ("unsafe use of new value"): the migration fails half way.

    ### Example
    ```python
    op.execute("ALTER TYPE userrole ADD VALUE 'super_admin'")
    op.execute("UPDATE users SET role = 'super_admin' WHERE email = 'root@example.com'")
    ```

    ### Use instead
    ```python
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE userrole ADD VALUE IF NOT EXISTS 'super_admin'")
    op.execute("UPDATE users SET role = 'super_admin' WHERE email = 'root@example.com'")
    ```
    """

    code = "AM401"
    name = "enum-value-used-in-transaction"
    severity = "error"
    hint = "add the value inside op.get_context().autocommit_block() (it commits first)"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        statements = unit.statements
        for index, statement in enumerate(statements):
            node = statement.node
            if statement.kind != "AlterEnumStmt" or not node.newVal:
                continue
            if not statement.in_transaction:
                continue
            for later in statements[index + 1 :]:
                if not later.in_transaction:
                    break
                if later.node is not None and node.newVal in string_constants(later.node):
                    yield Hit(
                        f"enum value {node.newVal!r} added to {enum_name(node.typeName)} is used"
                        " before the transaction that added it commits",
                        later.line,
                        later.sql,
                    )
                    break
