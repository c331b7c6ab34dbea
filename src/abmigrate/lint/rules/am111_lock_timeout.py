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
    with `lock_timeout` configured). One finding per revision, naming every table it locks.

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
        # One finding per revision, naming every existing table locked before any
        # `SET lock_timeout` (statements after it wait at most that long).
        locking: list[Statement] = []
        tables: dict[str, None] = {}
        for statement in unit.parsed():
            node = statement.node
            if statement.kind == "VariableSetStmt" and node.name == "lock_timeout":
                break
            existing = [t for t in _exclusive_tables(statement) if not unit.is_new_table(t)]
            if existing:
                locking.append(statement)
                tables.update(dict.fromkeys(existing))
        if not tables:
            return
        names = list(tables)
        if len(names) == 1:
            what = f"an ACCESS EXCLUSIVE lock on {names[0]}"
        else:
            what = f"ACCESS EXCLUSIVE locks on {len(names)} tables ({', '.join(names)})"
        yield Hit(
            f"takes {what} with no lock_timeout: if it waits, every query on the table waits"
            " behind it",
            locking[0].line,
            "\n".join(statement.sql for statement in locking if statement.sql) or None,
            tables=tuple(names),
        )


def _exclusive_tables(statement: Statement) -> list[str]:
    node, kind = statement.node, statement.kind
    if (
        kind == "AlterTableStmt"
        and node.cmds
        and all(label(command.subtype) == "AT_ValidateConstraint" for command in node.cmds)
    ):
        return []  # SHARE UPDATE EXCLUSIVE: reads and writes go on while it waits and scans
    if kind in ("AlterTableStmt", "RenameStmt"):
        table = table_of(node)
        return [table] if table else []
    if kind == "TruncateStmt":
        return [str(relation.relname) for relation in node.relations or ()]
    if kind == "DropStmt" and not node.concurrent and label(node.removeType) == "OBJECT_TABLE":
        return [str(getattr(names[-1], "sval", "")) for names in node.objects or () if names]
    return []
