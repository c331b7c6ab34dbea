from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import has_subquery, label, walk


@register
class CheckWithSubquery(Rule):
    """
    ### What it does
    Flags a CHECK constraint whose expression contains a subquery.

    ### Why is this bad?
    PostgreSQL rejects it when the migration runs ("cannot use subquery in check
    constraint"); SQLite accepts different things again, so it may pass in development and
    fail in production.

    ### Example
    ```python
    op.create_check_constraint(
        "ck_items_part_exists", "items", "part_id IN (SELECT id FROM parts)"
    )
    ```

    ### Use instead
    ```python
    op.create_foreign_key("fk_items_part", "items", "parts", ["part_id"], ["id"],
                          postgresql_not_valid=True)
    # or a trigger, for rules a foreign key cannot express
    ```
    """

    code = "AM602"
    name = "check-with-subquery"
    severity = "error"
    hint = "use a foreign key or a trigger; CHECK constraints may only look at their own row"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            if statement.kind not in ("AlterTableStmt", "CreateStmt", "CreateDomainStmt"):
                continue
            for node in walk(statement.node):
                if type(node).__name__ != "Constraint" or label(node.contype) != "CONSTR_CHECK":
                    continue
                if has_subquery(node.raw_expr):
                    yield Hit(
                        f"CHECK constraint {node.conname or ''} uses a subquery, which"
                        " PostgreSQL rejects",
                        statement.line,
                        statement.sql,
                    )
