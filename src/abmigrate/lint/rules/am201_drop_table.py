from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import label


@register
class DropTable(Rule):
    """
    ### What it does
    Flags `DROP TABLE` of a table that existed before the revision.

    ### Why is this bad?
    The rows are gone for good (only a backup brings them back), and application code still
    reading the table fails as soon as the migration commits. The migration guide says
    "NEVER drop tables or columns without careful planning".

    ### Example
    ```python
    op.drop_table("legacy_orders")
    ```

    ### Use instead
    ```python
    # release 1: stop using the table in code; release 2 (after a verified backup):
    op.drop_table("legacy_orders")  # abmigrate: ignore[AM201] reason: unused since v2.3, backed up
    ```
    """

    code = "AM201"
    name = "drop-table"
    severity = "error"
    destructive = True
    judged_by = "in_use"
    hint = "stop using the table first, back it up, and record why with an ignore comment"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            node = statement.node
            if statement.kind != "DropStmt" or label(node.removeType) != "OBJECT_TABLE":
                continue
            for names in node.objects or ():
                table = str(getattr(names[-1], "sval", "")) if names else ""
                if not unit.is_new_table(table):
                    yield Hit(
                        f"DROP TABLE {table} deletes all of its rows",
                        statement.line,
                        statement.sql,
                        tables=(table,),
                    )
