from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import enum_name


@register
class EnumRecreated(Rule):
    """
    ### What it does
    Flags an enum type created under the name of an enum that existed before the revision
    (dropped or renamed away and created again).

    ### Why is this bad?
    Recreating an enum means converting every column of that type (`ALTER COLUMN ... TYPE
    ... USING`), a full table rewrite under an ACCESS EXCLUSIVE lock; done with `DROP TYPE
    ... CASCADE` it silently drops those columns instead.

    ### Example
    ```python
    op.execute("DROP TYPE orderstatus")
    op.execute("CREATE TYPE orderstatus AS ENUM ('open', 'shipped', 'closed')")
    ```

    ### Use instead
    ```python
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE orderstatus ADD VALUE IF NOT EXISTS 'closed'")
    ```
    """

    code = "AM402"
    name = "enum-recreated"
    severity = "warning"
    hint = "to add a value use ALTER TYPE ... ADD VALUE; recreate only with a reviewed plan"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            if statement.kind != "CreateEnumStmt":
                continue
            name = enum_name(statement.node.typeName)
            if name in unit.before.enums:
                yield Hit(
                    f"enum {name} is recreated: every column of this type must be converted",
                    statement.line,
                    statement.sql,
                )
