from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, label


@register
class DropAddPair(Rule):
    """
    ### What it does
    Flags a revision that drops a column and adds another column to the same existing
    table.

    ### Why is this bad?
    That is what autogenerate writes for a renamed model attribute: it cannot tell a rename
    from a drop and an add. Applied as written, the old column's data is deleted and the new
    column starts empty.

    ### Example
    ```python
    op.add_column("users", sa.Column("full_name", sa.String(255)))
    op.drop_column("users", "name")
    ```

    ### Use instead
    ```python
    op.alter_column("users", "name", new_column_name="full_name")
    # or: add, copy the data over (UPDATE users SET full_name = name), then drop.
    ```
    """

    code = "AM303"
    name = "drop-add-pair"
    severity = "error"
    destructive = True
    judged_by = "in_use"
    hint = "if this is a rename, use op.alter_column(new_column_name=...) or copy the data first"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        dropped: dict[str, list[tuple[str, int | None, str]]] = {}
        added: dict[str, list[str]] = {}
        copied: set[str] = set()
        for statement, table, command in alter_commands(unit.parsed()):
            if table is None or unit.is_new_table(table):
                continue
            subtype = label(command.subtype)
            if subtype == "AT_DropColumn":
                dropped.setdefault(table, []).append((command.name, statement.line, statement.sql))
            elif subtype == "AT_AddColumn":
                added.setdefault(table, []).append(command.def_.colname)
        for statement in unit.parsed():
            if statement.kind == "UpdateStmt":
                copied.add(str(statement.node.relation.relname))
        for table, drops in dropped.items():
            if table in added and table not in copied:
                for column, line, sql in drops:
                    yield Hit(
                        f"{table}.{column} is dropped while {', '.join(added[table])} is added"
                        " to the same table: if this is a rename, the data is lost",
                        line,
                        sql,
                        tables=(table,),
                    )
