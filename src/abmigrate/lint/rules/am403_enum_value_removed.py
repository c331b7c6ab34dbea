from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import enum_name


@register
class EnumValueRemoved(Rule):
    """
    ### What it does
    Flags an enum recreated without some of the values it had before the revision (the
    values are tracked through every earlier revision).

    ### Why is this bad?
    Every row still holding a removed value makes the column conversion fail (`invalid
    input value for enum`), and code deployed before the migration may still write it.

    ### Example
    ```python
    op.execute("ALTER TYPE userrole RENAME TO userrole_old")
    op.execute("CREATE TYPE userrole AS ENUM ('user', 'admin')")  # 'super_admin' is gone
    op.execute("ALTER TABLE users ALTER COLUMN role TYPE userrole USING role::text::userrole")
    ```

    ### Use instead
    ```python
    op.execute("UPDATE users SET role = 'admin' WHERE role = 'super_admin'")  # move the rows
    # ... then recreate the type, in a release where no code writes 'super_admin'
    ```
    """

    code = "AM403"
    name = "enum-value-removed"
    severity = "error"
    hint = "move the rows off the removed values first, and stop writing them in code"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            if statement.kind != "CreateEnumStmt":
                continue
            name = enum_name(statement.node.typeName)
            if name not in unit.before.enums:
                continue
            values = {getattr(value, "sval", "") for value in statement.node.vals or ()}
            removed = [value for value in unit.before.enums[name] if value not in values]
            if removed:
                yield Hit(
                    f"enum {name} loses value(s) {', '.join(map(repr, removed))}: rows holding"
                    " them make the conversion fail",
                    statement.line,
                    statement.sql,
                )
