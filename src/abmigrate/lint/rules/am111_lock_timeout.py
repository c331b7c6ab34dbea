from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit, Statement
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import label, table_of


@register
class LockTimeout(Rule):
    """
    ### What it does
    Flags a revision whose statements take an ACCESS EXCLUSIVE lock on an existing table
    (ALTER TABLE except `VALIDATE CONSTRAINT`, DROP TABLE, TRUNCATE, RENAME) when no
    `lock_timeout` is set: neither in the revision nor by abmigrate's runner (an environment
    with `lock_timeout` configured).

    ### Why is this bad?
    Waiting for an ACCESS EXCLUSIVE lock behind one long query makes every later query on
    the table queue behind the migration: a one-millisecond ALTER becomes an outage. A short
    `lock_timeout` makes the migration give up (and retry) instead.

    ### Example
    ```python
    def upgrade():
        op.add_column("orders", sa.Column("note", sa.Text()))
    ```

    ### Use instead
    ```python
    def upgrade():
        op.execute("SET LOCAL lock_timeout = '2s'")
        op.add_column("orders", sa.Column("note", sa.Text()))
    ```
    or set `lock_timeout = "2s"` on the environment so `abmigrate upgrade` sets it.
    """

    code = "AM111"
    name = "missing-lock-timeout"
    severity = "warning"
    judged_by = "in_use"
    hint = "set lock_timeout on the environment (abmigrate sets it) or SET LOCAL lock_timeout"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        if unit.assume_lock_timeout:
            return
        for statement in unit.parsed():
            node = statement.node
            if statement.kind == "VariableSetStmt" and node.name == "lock_timeout":
                return
            table = _exclusive_table(statement)
            if table is not None and not unit.is_new_table(table):
                yield Hit(
                    f"takes an ACCESS EXCLUSIVE lock on {table} with no lock_timeout: if it"
                    " waits, every query on the table waits behind it",
                    statement.line,
                    statement.sql,
                    tables=(table,),
                )
                return


def _exclusive_table(statement: Statement) -> str | None:
    node, kind = statement.node, statement.kind
    if (
        kind == "AlterTableStmt"
        and node.cmds
        and all(label(command.subtype) == "AT_ValidateConstraint" for command in node.cmds)
    ):
        return None  # SHARE UPDATE EXCLUSIVE: reads and writes go on while it waits and scans
    if kind in ("AlterTableStmt", "RenameStmt"):
        return table_of(node)
    if kind == "TruncateStmt":
        relations = node.relations or ()
        return str(relations[0].relname) if relations else None
    if kind == "DropStmt" and not node.concurrent and label(node.removeType) == "OBJECT_TABLE":
        names = node.objects[0] if node.objects else ()
        return str(getattr(names[-1], "sval", "")) if names else None
    return None
