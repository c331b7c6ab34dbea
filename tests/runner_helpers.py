"""Shared helpers for the runner tests: a copy of the runner_chain scenario with a policy."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

ALL = ["r1", "r2", "r3", "r4", "r5"]


def make_project(copy_scenario: Any, policies: dict[str, dict[str, Any]] | None = None) -> Path:
    """runner_chain with abmigrate.toml rewritten: development + the given environments."""
    root: Path = copy_scenario("runner_chain")
    lines = ['alembic_ini = "alembic.ini"', 'default_env = "development"', ""]
    environments = {"development": {}, **(policies or {})}
    for name, policy in environments.items():
        lines.append(f"[environments.{name}]")
        lines.append('url_env = "DATABASE_URL"')
        for key, value in policy.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    (root / "abmigrate.toml").write_text("\n".join(lines), encoding="utf-8")
    return root


PRODUCTION = {
    "require_backup": False,
    "require_confirmation": True,
    "allow_destructive": False,
    "lock_timeout": "1s",
    "lock_retries": 3,
}


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def execute_all(url: str, statements: Sequence[str]) -> None:
    """Run ``statements`` as they are (no bind parameters) in one transaction."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def version_rows(url: str) -> list[str]:
    """The rows of alembic_version, sorted (the table must exist)."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return sorted(
                connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            )
    finally:
        engine.dispose()


def wait_for_lock_request(url: str, table: str, *, deadline_s: float = 120.0) -> None:
    """Poll until another session is queued for a lock on ``table`` (a not yet granted
    entry in pg_locks): the migration has reached its statement. Raises after ``deadline_s``
    (a loaded machine may take long to start a process; the state, not a guess, decides)."""
    wait_until(
        lambda: query(
            url,
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            f" WHERE NOT l.granted AND c.relname = '{table}'"
            # Relation OIDs are per database: other tests' databases on the server are not ours.
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )[0][0],
        f"a session queued for a lock on {table}",
        timeout=deadline_s,
        interval=0.02,
    )


def versions(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return []
            return sorted(
                str(v)
                for v in connection.execute(
                    sa.text("SELECT version_num FROM alembic_version")
                ).scalars()
            )
    finally:
        engine.dispose()


def schema_revision(url: str) -> str | None:
    """Which revision the live schema matches exactly, or None if none does."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            tables = set(inspector.get_table_names()) - {"alembic_version", "abmigrate_journal"}
            price = "items" in tables and "price" in {
                c["name"] for c in inspector.get_columns("items")
            }
            index = "orders" in tables and any(
                i["name"] == "ix_orders_item_id" for i in inspector.get_indexes("orders")
            )
    finally:
        engine.dispose()
    shapes = {
        None: (set(), False, False),
        "r1": ({"items"}, False, False),
        "r2": ({"items", "orders"}, False, False),
        "r3": ({"items", "orders"}, True, False),
        "r4": ({"items", "orders"}, True, True),
        "r5": ({"items", "orders", "notes"}, True, True),
    }
    for revision, shape in shapes.items():
        if shape == (tables, price, index):
            return revision or "base"
    return None


def journal_runs(url: str) -> list[dict[str, Any]]:
    rows = query(url, "SELECT record, outcome FROM abmigrate_journal ORDER BY started_at")
    runs = []
    for record, outcome in rows:
        run = json.loads(record)
        run["outcome"] = outcome
        runs.append(run)
    return runs


def wait_until(
    condition: Callable[[], Any], what: str, *, timeout: float = 120, interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something true (returned); fail naming ``what``
    after ``timeout`` seconds. Generous: a loaded two-core CI machine is slow, never wrong."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def note_imports(scripts: Sequence[Path], log: Path) -> None:
    """Make each script note in ``log`` when it is imported (one line per import): Alembic
    keeps no module of a revision in ``sys.modules``, so this is how a test sees it."""
    for script in scripts:
        script.write_text(
            script.read_text() + f"\nwith open({str(log)!r}, 'a') as _log:\n"
            "    _log.write(__file__ + '\\n')\n"
        )
