from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import enum_name, label


@register
class DropTypeCascade(Rule):
    """
    ### What it does
    Flags `DROP TYPE ... CASCADE` (and `DROP ... CASCADE` of any object).

    ### Why is this bad?
    CASCADE silently drops every column that uses the type: an enum "cleanup" done as
    `DROP TYPE userrole CASCADE` deletes the `users.role` column and its data without a
    word.

    ### Example
    ```python
    op.execute("DROP TYPE userrole CASCADE")
    ```

    ### Use instead
    ```python
    op.execute("ALTER TYPE userrole RENAME TO userrole_old")
    op.execute("CREATE TYPE userrole AS ENUM ('user', 'admin')")
    op.execute("ALTER TABLE users ALTER COLUMN role TYPE userrole USING role::text::userrole")
    op.execute("DROP TYPE userrole_old")
    ```
    """

    code = "AM203"
    name = "drop-cascade"
    severity = "error"
    destructive = True
    hint = "drop without CASCADE so PostgreSQL refuses while something still depends on it"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            node = statement.node
            if statement.kind != "DropStmt" or label(node.behavior) != "DROP_CASCADE":
                continue
            kind = label(node.removeType).removeprefix("OBJECT_").lower()
            names = ", ".join(enum_name(getattr(obj, "names", obj)) for obj in node.objects or ())
            yield Hit(
                f"DROP {kind.upper()} {names} CASCADE also drops every object that depends on"
                " it (columns of that type included)",
                statement.line,
                statement.sql,
            )
