from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import label


@register
class DropIndexNotConcurrent(Rule):
    """
    ### What it does
    Flags `DROP INDEX` without `CONCURRENTLY` on an index of a table that existed before the
    revision.

    ### Why is this bad?
    A plain `DROP INDEX` takes an ACCESS EXCLUSIVE lock on the index's table. While it waits
    for running queries to finish, every new read and write queues behind it.

    ### Example
    ```python
    op.drop_index("ix_orders_created_at", table_name="orders")
    ```

    ### Use instead
    ```python
    from abmigrate import ops

    ops.drop_index_concurrently("ix_orders_created_at", "orders")
    ```
    or, with plain Alembic:
    ```python
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_orders_created_at", table_name="orders", postgresql_concurrently=True
        )
    ```
    """

    code = "AM102"
    name = "drop-index-not-concurrent"
    severity = "warning"
    judged_by = "in_use"
    hint = (
        'use `ops.drop_index_concurrently("ix", "t")` from abmigrate.ops'
        " (DROP INDEX CONCURRENTLY in an autocommit block)"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        tables = {
            captured.op.index_name: captured.op.table_name
            for captured in unit.ops_of("DropIndexOp")
        }
        for statement in unit.parsed():
            node = statement.node
            if statement.kind != "DropStmt" or label(node.removeType) != "OBJECT_INDEX":
                continue
            if node.concurrent:
                continue
            for names in node.objects or ():
                index = getattr(names[-1], "sval", "") if names else ""
                table = tables.get(index)
                if unit.is_new_table(table):
                    continue
                yield Hit(
                    f"DROP INDEX {index} without CONCURRENTLY locks its table against reads"
                    " and writes",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
