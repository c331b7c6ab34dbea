"""Safe operations for migration authors: the PostgreSQL patterns that keep writers moving.

Use them inside an Alembic revision, next to ``op``::

    from abmigrate import ops

    def upgrade() -> None:
        ops.create_index_concurrently("ix_parts_name", "parts", ["name"])
        ops.add_foreign_key("fk_parts_machine", "parts", "machines", ["machine_id"], ["id"])
        ops.set_not_null("parts", "machine_id")
        ops.backfill("parts", "unit = 'pcs'", where="unit IS NULL", batch_size=5000)

What each does on PostgreSQL, and why:

- ``create_index_concurrently`` / ``drop_index_concurrently``: ``CREATE/DROP INDEX
  CONCURRENTLY`` in an ``autocommit_block()`` (it cannot run in a transaction). A previous
  attempt that failed half way leaves an INVALID index: it is dropped and rebuilt; a valid
  one is kept, so a retried revision does not fail on "already exists".
- ``add_foreign_key`` / ``add_check``: ``ADD CONSTRAINT … NOT VALID`` (a brief lock, no scan),
  committed, then ``VALIDATE CONSTRAINT`` (scans under SHARE UPDATE EXCLUSIVE, which does not
  block reads or writes).
- ``set_not_null``: a validated ``CHECK (col IS NOT NULL)`` first, so ``SET NOT NULL`` needs no
  table scan under its ACCESS EXCLUSIVE lock (PostgreSQL 12+), then the check is dropped.
- ``backfill``: ``UPDATE`` in batches of ``batch_size`` rows, each committed on its own, with
  a pause between batches and progress reported; resumable, because ``where`` selects only
  the rows still to do.

On other dialects they fall back to the plain operation (SQLite through batch mode), so the
same revision runs in development. In offline mode (``plan --sql``) they render the SQL
they would run; ``backfill`` renders one ``UPDATE`` there (a script cannot loop), outside the
migration's transaction as online. They work under plain ``alembic`` as well as under
``abmigrate upgrade``; ``abmigrate lint`` does not flag the SQL they render.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from abmigrate.events import BackfillBatch, Event, InvalidIndexDropped, Observer

__all__ = [
    "add_check",
    "add_foreign_key",
    "backfill",
    "create_index_concurrently",
    "drop_index_concurrently",
    "set_not_null",
    "validate_constraint",
]

log = logging.getLogger("abmigrate.ops")

# Set by the runner while it applies a plan: progress of long operations reaches the CLI.
progress_hook: Observer | None = None


def _op() -> Any:
    from abmigrate.bridge.project import migration_op

    return migration_op()


def _context() -> Any:
    return _op().get_context()


def _offline() -> bool:
    return bool(_context().as_sql)


def _dialect() -> str:
    # The helpers below write each dialect's SQL for one operation (NOT VALID, CONCURRENTLY,
    # UPDATE ... LIMIT): that is what a helper inside a revision is for, and ops.py sits
    # outside the layers (it imports none of abmigrate's packages), so it does not ask
    # abmigrate.db.dialects.
    return str(_context().dialect.name)


def _quote(name: str) -> str:
    return str(_context().dialect.identifier_preparer.quote(name))


def _scalar(sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    return _op().get_bind().execute(text(sql), params).scalar()


def _report(event: Event) -> None:
    log.info("%s", event)
    if progress_hook is not None:
        progress_hook(event)


# --------------------------------------------------------------------------- indexes


def create_index_concurrently(
    index_name: str,
    table_name: str,
    columns: Sequence[str],
    *,
    unique: bool = False,
    where: str | None = None,
) -> None:
    """Build an index without blocking writes (PostgreSQL), cleaning up an invalid one."""
    op = _op()
    if _dialect() != "postgresql":
        op.create_index(index_name, table_name, list(columns), unique=unique)
        return
    from sqlalchemy import text

    with _context().autocommit_block():
        if not _offline():
            valid = _scalar(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = :name AND pg_table_is_visible(c.oid)",
                name=index_name,
            )
            if valid is True:
                log.info("index %s exists and is valid: nothing to build", index_name)
                return
            if valid is False:
                _report(InvalidIndexDropped(index=index_name))
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(index_name)}")
        op.create_index(
            index_name,
            table_name,
            list(columns),
            unique=unique,
            postgresql_concurrently=True,
            postgresql_where=text(where) if where else None,
        )


def drop_index_concurrently(index_name: str, table_name: str | None = None) -> None:
    """Drop an index without blocking writes (PostgreSQL)."""
    op = _op()
    if _dialect() != "postgresql":
        op.drop_index(index_name, table_name=table_name)
        return
    with _context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(index_name)}")


# --------------------------------------------------------------------------- constraints


def _constraint_exists(table_name: str, constraint_name: str) -> bool:
    if _offline():
        return False
    found = _scalar(
        "SELECT count(*) FROM pg_constraint WHERE conname = :name"
        " AND conrelid = to_regclass(:table)",
        name=constraint_name,
        table=_quote(table_name),
    )
    return bool(found)


def validate_constraint(table_name: str, constraint_name: str) -> None:
    """``VALIDATE CONSTRAINT`` in its own transaction (SHARE UPDATE EXCLUSIVE: writers go on)."""
    if _dialect() != "postgresql":
        return
    with _context().autocommit_block():
        _op().execute(
            f"ALTER TABLE {_quote(table_name)} VALIDATE CONSTRAINT {_quote(constraint_name)}"
        )


def add_foreign_key(
    constraint_name: str,
    source_table: str,
    referent_table: str,
    local_cols: Sequence[str],
    remote_cols: Sequence[str],
    *,
    ondelete: str | None = None,
    validate: bool = True,
) -> None:
    """A foreign key added NOT VALID, then validated without blocking writes."""
    op = _op()
    dialect = _dialect()
    if dialect == "sqlite":
        with op.batch_alter_table(source_table) as batch:
            batch.create_foreign_key(
                constraint_name,
                referent_table,
                list(local_cols),
                list(remote_cols),
                ondelete=ondelete,
            )
        return
    if dialect != "postgresql":
        op.create_foreign_key(
            constraint_name,
            source_table,
            referent_table,
            list(local_cols),
            list(remote_cols),
            ondelete=ondelete,
        )
        return
    if not _constraint_exists(source_table, constraint_name):
        locals_ = ", ".join(_quote(c) for c in local_cols)
        remotes = ", ".join(_quote(c) for c in remote_cols)
        on_delete = f" ON DELETE {ondelete}" if ondelete else ""
        op.execute(
            f"ALTER TABLE {_quote(source_table)} ADD CONSTRAINT {_quote(constraint_name)}"
            f" FOREIGN KEY ({locals_}) REFERENCES {_quote(referent_table)} ({remotes})"
            f"{on_delete} NOT VALID"
        )
    if validate:
        validate_constraint(source_table, constraint_name)


def add_check(
    constraint_name: str, table_name: str, condition: str, *, validate: bool = True
) -> None:
    """A CHECK constraint added NOT VALID, then validated without blocking writes."""
    op = _op()
    dialect = _dialect()
    if dialect == "sqlite":
        with op.batch_alter_table(table_name) as batch:
            batch.create_check_constraint(constraint_name, condition)
        return
    if dialect != "postgresql":
        op.create_check_constraint(constraint_name, table_name, condition)
        return
    if not _constraint_exists(table_name, constraint_name):
        op.execute(
            f"ALTER TABLE {_quote(table_name)} ADD CONSTRAINT {_quote(constraint_name)}"
            f" CHECK ({condition}) NOT VALID"
        )
    if validate:
        validate_constraint(table_name, constraint_name)


def set_not_null(table_name: str, column_name: str, *, existing_type: Any = None) -> None:
    """SET NOT NULL without a table scan under ACCESS EXCLUSIVE (through a validated CHECK)."""
    op = _op()
    dialect = _dialect()
    if dialect != "postgresql":
        if existing_type is None and not _offline():
            from sqlalchemy import inspect

            columns = inspect(op.get_bind()).get_columns(table_name)
            existing_type = next(c["type"] for c in columns if c["name"] == column_name)
        if dialect == "sqlite":
            with op.batch_alter_table(table_name) as batch:
                batch.alter_column(column_name, nullable=False, existing_type=existing_type)
        else:
            op.alter_column(table_name, column_name, nullable=False, existing_type=existing_type)
        return
    check = f"{table_name}_{column_name}_not_null"[:63]
    add_check(check, table_name, f"{_quote(column_name)} IS NOT NULL", validate=True)
    op.alter_column(table_name, column_name, nullable=False)
    op.execute(f"ALTER TABLE {_quote(table_name)} DROP CONSTRAINT IF EXISTS {_quote(check)}")


# --------------------------------------------------------------------------- data


def backfill(
    table_name: str,
    set_sql: str,
    *,
    where: str,
    key: str = "id",
    batch_size: int = 1000,
    pause_s: float = 0.0,
) -> int:
    """Update rows matching ``where`` in committed batches; returns the rows updated.

    ``where`` must stop matching a row once it is updated (e.g. ``"unit IS NULL"`` with
    ``set_sql="unit = 'pcs'"``): that is what makes a re-run resume where it stopped.
    """
    op = _op()
    table = _quote(table_name)
    if _offline():
        # A script cannot loop: one UPDATE, but outside the migration's transaction as online
        # (the schema change before it is committed first, its locks released).
        with _context().autocommit_block():
            op.execute(f"UPDATE {table} SET {set_sql} WHERE {where}")
        return 0
    from sqlalchemy import text

    if _dialect() in ("mysql", "mariadb"):
        statement = f"UPDATE {table} SET {set_sql} WHERE {where} LIMIT {int(batch_size)}"
    else:
        column = _quote(key)
        statement = (
            f"UPDATE {table} SET {set_sql} WHERE {column} IN"
            f" (SELECT {column} FROM {table} WHERE {where} LIMIT {int(batch_size)})"
        )
    total = 0
    batches = 0
    started = time.monotonic()
    with _context().autocommit_block():
        bind = op.get_bind()
        while True:
            updated = bind.execute(text(statement)).rowcount or 0
            total += updated
            batches += 1
            _report(
                BackfillBatch(
                    table=table_name,
                    batch=batches,
                    rows=total,
                    elapsed_s=round(time.monotonic() - started, 2),
                )
            )
            if updated < batch_size:
                return total
            if pause_s:
                time.sleep(pause_s)
