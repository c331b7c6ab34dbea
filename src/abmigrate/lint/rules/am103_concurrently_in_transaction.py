from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register


@register
class ConcurrentlyInTransaction(Rule):
    """
    ### What it does
    Flags `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY` and `REINDEX ...
    CONCURRENTLY` that would run inside the migration's transaction.

    ### Why is this bad?
    PostgreSQL refuses them inside a transaction block ("CREATE INDEX CONCURRENTLY cannot run
    inside a transaction block"), and Alembic runs each PostgreSQL migration in a
    transaction: the migration fails in production.

    ### Example
    ```python
    op.create_index("ix_orders_created_at", "orders", ["created_at"],
                    postgresql_concurrently=True)
    ```

    ### Use instead
    ```python
    from abmigrate import ops

    ops.create_index_concurrently("ix_orders_created_at", "orders", ["created_at"])
    # and ops.drop_index_concurrently("ix_orders_created_at", "orders") to drop it
    ```
    or, with plain Alembic:
    ```python
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_created_at", "orders", ["created_at"],
                        postgresql_concurrently=True)
    ```
    """

    code = "AM103"
    name = "concurrently-in-transaction"
    severity = "error"
    hint = (
        'use `ops.create_index_concurrently("ix", "t", ["c"])` or'
        ' `ops.drop_index_concurrently("ix", "t")` from abmigrate.ops, or wrap the operation'
        " in `with op.get_context().autocommit_block():`"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            if not statement.in_transaction:
                continue
            node = statement.node
            concurrent = False
            if statement.kind in ("IndexStmt", "DropStmt"):
                concurrent = bool(node.concurrent)
            elif statement.kind == "ReindexStmt":
                concurrent = any(
                    getattr(option, "defname", "") == "concurrently" for option in node.params or ()
                )
            if concurrent:
                yield Hit(
                    "CONCURRENTLY cannot run inside a transaction block, and this statement"
                    " runs inside the migration's transaction",
                    statement.line,
                    statement.sql,
                )
