from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import label, table_of


@register
class RenameColumn(Rule):
    """
    ### What it does
    Flags renaming a column of a table that existed before the revision.

    ### Why is this bad?
    The running application selects the old column name; it fails from the moment the
    rename commits until every instance runs the new code.

    ### Example
    ```python
    op.alter_column("users", "name", new_column_name="full_name")
    ```

    ### Use instead
    ```python
    # expand: add the new column and write both; backfill; switch reads; contract later.
    op.add_column("users", sa.Column("full_name", sa.String(255)))
    ```
    """

    code = "AM302"
    name = "rename-column"
    severity = "warning"
    judged_by = "in_use"
    hint = "add the new column, write both, backfill, switch reads, drop the old one later"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            node = statement.node
            if statement.kind != "RenameStmt" or label(node.renameType) != "OBJECT_COLUMN":
                continue
            table = table_of(node)
            if not unit.is_new_table(table):
                yield Hit(
                    f"renaming {table}.{node.subname} to {node.newname} breaks code still"
                    " using the old name",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
