from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import table_of

_DML = {"InsertStmt", "UpdateStmt", "DeleteStmt"}
_NOT_DDL = _DML | {"SelectStmt", "VariableSetStmt", "TransactionStmt"}


@register
class MixedSchemaAndData(Rule):
    """
    ### What it does
    Flags a revision that both changes the schema and changes rows of existing tables
    (seed rows inserted into a table the same revision creates are fine, and so is
    `abmigrate.ops.backfill`, which commits the schema change before its first batch).

    ### Why is this bad?
    Schema changes want to be short (they hold strong locks); data changes can be long.
    Together in one transaction the locks of the first are held for the duration of the
    second, and a data error rolls the schema change back with it.

    ### Example
    ```python
    op.add_column("parts", sa.Column("unit", sa.String(50)))
    op.execute("UPDATE parts SET unit = 'pieces'")
    ```

    ### Use instead
    ```python
    # revision 1: op.add_column(...)
    # revision 2 (data only): the backfill, in batches
    ```
    or, in one revision, `abmigrate.ops.backfill`: it commits what came before (releasing
    its locks), then updates in batches that each commit:
    ```python
    from abmigrate import ops

    op.add_column("parts", sa.Column("unit", sa.String(50)))
    ops.backfill("parts", "unit = 'pieces'", where="unit IS NULL")
    ```
    """

    code = "AM502"
    name = "mixed-schema-and-data"
    severity = "warning"
    judged_by = "size"
    hint = (
        "split the data change into its own revision, or run it with `ops.backfill(...)`"
        " from abmigrate.ops (after the schema change commits, in batches)"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        ddl = [s for s in unit.parsed() if s.kind not in _NOT_DDL]
        dml = [
            s
            for s in unit.parsed()
            if s.kind in _DML
            and not unit.is_new_table(table_of(s.node))
            and s.safe_op != "backfill"
        ]
        if ddl and dml:
            tables = tuple(dict.fromkeys(t for s in dml if (t := table_of(s.node))))
            yield Hit(
                f"this revision changes the schema ({len(ddl)} statement(s)) and rows of"
                f" existing tables {', '.join(tables)} ({len(dml)} statement(s)) in one"
                " migration",
                dml[0].line,
                dml[0].sql,
                tables=tables,
            )
