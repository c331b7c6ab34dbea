from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import table_of


@register
class IndexNotConcurrent(Rule):
    """
    ### What it does
    Flags `CREATE INDEX` without `CONCURRENTLY` on a table that existed before the revision.

    ### Why is this bad?
    A plain `CREATE INDEX` holds a SHARE lock on the table for the whole build: every
    INSERT, UPDATE and DELETE waits until the index is built, which on a large table means
    minutes of blocked writers.

    ### Example
    ```python
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    ```

    ### Use instead
    ```python
    from abmigrate import ops

    ops.create_index_concurrently("ix_orders_created_at", "orders", ["created_at"])
    ```
    `abmigrate.ops` builds it `CONCURRENTLY` in an autocommit block (a plain `CREATE INDEX`
    on SQLite/MySQL), and drops and rebuilds an INVALID index a failed build left behind.
    With plain Alembic:
    ```python
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_orders_created_at", "orders", ["created_at"], postgresql_concurrently=True
        )
    ```
    """

    code = "AM101"
    name = "index-not-concurrent"
    severity = "error"
    judged_by = "size"
    hint = (
        'use `ops.create_index_concurrently("ix", "t", ["c"])` from abmigrate.ops'
        " (CREATE INDEX CONCURRENTLY in an autocommit block)"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            node = statement.node
            if statement.kind != "IndexStmt" or node.concurrent:
                continue
            table = table_of(node)
            if not unit.is_new_table(table):
                yield Hit(
                    f"CREATE INDEX {node.idxname or ''} on existing table {table} without"
                    " CONCURRENTLY blocks writes while it builds",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
