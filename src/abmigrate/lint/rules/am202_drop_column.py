from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, label


@register
class DropColumn(Rule):
    """
    ### What it does
    Flags `DROP COLUMN` on a table that existed before the revision.

    ### Why is this bad?
    The column's data is lost, and any running code that selects or inserts the column
    fails the moment the migration commits (SQLAlchemy models list every column).

    ### Example
    ```python
    op.drop_column("users", "legacy_role")
    ```

    ### Use instead
    ```python
    # release 1: remove the column from the model (deferred/unused);
    # release 2, after a backup:
    op.drop_column("users", "legacy_role")  # abmigrate: ignore[AM202] reason: unused since v2.3
    ```
    """

    code = "AM202"
    name = "drop-column"
    severity = "error"
    destructive = True
    judged_by = "in_use"
    hint = "remove the column from the code first, back it up, then drop it in a later release"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement, table, command in alter_commands(unit.parsed()):
            if label(command.subtype) == "AT_DropColumn" and not unit.is_new_table(table):
                yield Hit(
                    f"DROP COLUMN {table}.{command.name} deletes its data",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
