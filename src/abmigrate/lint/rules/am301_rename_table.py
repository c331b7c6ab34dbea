from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import label, table_of


@register
class RenameTable(Rule):
    """
    ### What it does
    Flags renaming a table that existed before the revision.

    ### Why is this bad?
    Code deployed before the migration still queries the old name and fails from the moment
    the rename commits until the new code is running: a rename is never backward
    compatible.

    ### Example
    ```python
    op.rename_table("customer", "customers")
    ```

    ### Use instead
    ```python
    # expand/contract: create the new table (or a view under the new name), make the code
    # read both, move the data, and drop the old name in a later release.
    op.execute("CREATE VIEW customers AS SELECT * FROM customer")
    ```
    """

    code = "AM301"
    name = "rename-table"
    severity = "warning"
    judged_by = "in_use"
    hint = "deploy code that works with both names first (e.g. a view), rename later"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            node = statement.node
            if statement.kind != "RenameStmt" or label(node.renameType) != "OBJECT_TABLE":
                continue
            table = table_of(node)
            if not unit.is_new_table(table):
                yield Hit(
                    f"renaming table {table} to {node.newname} breaks code still using the old"
                    " name",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
