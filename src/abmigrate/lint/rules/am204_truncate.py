from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register


@register
class Truncate(Rule):
    """
    ### What it does
    Flags `TRUNCATE` of a table that existed before the revision.

    ### Why is this bad?
    Every row is deleted, under an ACCESS EXCLUSIVE lock. A migration that empties a table
    in development empties it in production too.

    ### Example
    ```python
    op.execute("TRUNCATE audit_log")
    ```

    ### Use instead
    ```python
    # delete what must go, in batches, with a condition you can review:
    op.execute("DELETE FROM audit_log WHERE id IN"
               " (SELECT id FROM audit_log WHERE created_at < now() - interval '1 year' LIMIT 10000)")
    ```
    """

    code = "AM204"
    name = "truncate"
    severity = "error"
    destructive = True
    judged_by = "in_use"
    hint = "delete with a reviewed condition in batches, or suppress with the reason"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            if statement.kind != "TruncateStmt":
                continue
            tables = [str(relation.relname) for relation in statement.node.relations or ()]
            existing = [table for table in tables if not unit.is_new_table(table)]
            if existing:
                yield Hit(
                    f"TRUNCATE {', '.join(existing)} deletes every row",
                    statement.line,
                    statement.sql,
                    tables=tuple(existing),
                )
