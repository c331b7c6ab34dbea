"""Lock stall: how long do writers wait while a migration runs behind a long reader?

    python bench/lock_stall/run.py [--rows 2000000] [--url postgresql+psycopg://postgres@127.0.0.1/postgres]

A table ``parts`` with ``--rows`` rows; four writer threads update random rows in autocommit
and time every statement; one reader holds ACCESS SHARE on the table for 5 s (an open
transaction after a SELECT). Half a second into the reader's transaction a migration starts,
in each scenario (create an index; add a foreign key; add a CHECK; set NOT NULL; change a
column type; add a column) twice:

- plain: ``alembic upgrade head`` with the plain Alembic operation;
- abmigrate: ``abmigrate upgrade`` with the abmigrate.ops safe operation (where one exists)
  and a policy of ``lock_timeout = 200ms``.

Per scenario it prints the migration's wall time, the writers' max and p99 latency, the
writer-seconds stalled (the summed latency of every writer statement slower than 50 ms) and
the ratio abmigrate/plain. The baseline is measured in the same run, against the same table.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

SCENARIOS = {
    # name: (plain operation, safe operation, SQL that undoes either)
    "create index": (
        'op.create_index("ix_parts_name", "parts", ["name"])',
        'ops.create_index_concurrently("ix_parts_name", "parts", ["name"])',
        "DROP INDEX IF EXISTS ix_parts_name",
    ),
    "add foreign key": (
        'op.create_foreign_key("fk_parts_machine", "parts", "machines", ["machine_id"], ["id"])',
        'ops.add_foreign_key("fk_parts_machine", "parts", "machines", ["machine_id"], ["id"])',
        "ALTER TABLE parts DROP CONSTRAINT IF EXISTS fk_parts_machine",
    ),
    "add check": (
        'op.create_check_constraint("ck_parts_qty", "parts", "qty >= 0")',
        'ops.add_check("ck_parts_qty", "parts", "qty >= 0")',
        "ALTER TABLE parts DROP CONSTRAINT IF EXISTS ck_parts_qty",
    ),
    "set not null": (
        'op.alter_column("parts", "machine_id", nullable=False)',
        'ops.set_not_null("parts", "machine_id")',
        "ALTER TABLE parts ALTER COLUMN machine_id DROP NOT NULL",
    ),
    # varchar(50) -> varchar(200) needs no rewrite but still ACCESS EXCLUSIVE: the stall is
    # the wait behind the reader, which is what lock_timeout + the pre-check remove.
    "change column type": (
        'op.alter_column("parts", "name", type_=sa.String(200), existing_type=sa.String(50))',
        'op.alter_column("parts", "name", type_=sa.String(200), existing_type=sa.String(50))',
        "ALTER TABLE parts ALTER COLUMN name TYPE varchar(50)",
    ),
    "add column": (
        'op.add_column("parts", sa.Column("extra", sa.Integer))',
        'op.add_column("parts", sa.Column("extra", sa.Integer))',
        "ALTER TABLE parts DROP COLUMN IF EXISTS extra",
    ),
}

WRITERS = 4
READER_HOLD_S = 5.0
STALL_S = 0.05
LOCK_TIMEOUT = "200ms"

ENV_PY = """
from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

REVISION = '''"""{name}"""
import sqlalchemy as sa
from alembic import op

from abmigrate import ops

revision = "b0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    {operation}


def downgrade() -> None:
    pass
'''


def libpq(url: str) -> str:
    parsed = make_url(url)
    parts = [f"host={parsed.host or '127.0.0.1'}", f"port={parsed.port or 5432}"]
    parts.append(f"user={parsed.username or 'postgres'}")
    parts.append(f"dbname={parsed.database}")
    return " ".join(parts)


def create_database(server_url: str, rows: int) -> str:
    name = "abm_bench_lock_stall"
    with psycopg.connect(libpq(server_url), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE machines (id int PRIMARY KEY)")
        conn.execute("INSERT INTO machines SELECT g FROM generate_series(1, 1000) g")
        conn.execute(
            "CREATE TABLE parts (id bigserial PRIMARY KEY, machine_id int, name varchar(50),"
            " qty int NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "INSERT INTO parts (machine_id, name, qty) SELECT 1 + g % 1000, 'part ' || g, g % 97"
            f" FROM generate_series(1, {rows}) g"
        )
        conn.execute("VACUUM ANALYZE parts")
    return url


def write_project(root: Path, url: str, scenario: str, operation: str, mode: str) -> Path:
    project = root / f"{mode}-{scenario.replace(' ', '_')}"
    (project / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s\nversion_locations = %(here)s/versions\n"
        f"sqlalchemy.url = {url}\n"
    )
    (project / "env.py").write_text(ENV_PY)
    (project / "versions" / "b0001.py").write_text(
        REVISION.format(name=scenario, operation=operation)
    )
    (project / "abmigrate.toml").write_text(
        textwrap.dedent(
            f"""
            alembic_ini = "alembic.ini"
            default_env = "bench"
            [environments.bench]
            url = "{url}"
            lock_timeout = "{LOCK_TIMEOUT}"
            lock_retries = 20
            lock_wait = "30s"
            """
        )
    )
    return project


def run_once(url: str, project: Path, mode: str) -> dict[str, float]:
    stop = threading.Event()
    samples: list[tuple[float, float]] = []  # (started, latency)
    lock = threading.Lock()

    def writer() -> None:
        rng = random.Random()
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            while not stop.is_set():
                began = time.monotonic()
                conn.execute(
                    "UPDATE parts SET qty = qty + 1 WHERE id = %s", (rng.randint(1, 1000),)
                )
                latency = time.monotonic() - began
                with lock:
                    samples.append((began, latency))
                time.sleep(0.005)

    def reader(ready: threading.Event) -> None:
        with psycopg.connect(libpq(url)) as conn:
            conn.execute("SELECT count(*) FROM parts WHERE id < 10")
            ready.set()
            time.sleep(READER_HOLD_S)
            conn.rollback()

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    ready = threading.Event()
    reading = threading.Thread(target=reader, args=(ready,))
    reading.start()
    ready.wait()
    time.sleep(0.5)
    env = {**os.environ, "NO_COLOR": "1"}
    if mode == "plain":
        command = [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(project / "alembic.ini"),
            "upgrade",
            "head",
        ]
    else:
        command = [sys.executable, "-m", "abmigrate", "upgrade"]
    began = time.monotonic()
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, check=False
    )
    migration_s = time.monotonic() - began
    if done.returncode != 0:
        stop.set()
        raise SystemExit(f"{mode} migration failed:\n{done.stdout}\n{done.stderr}")
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    reading.join()
    window = [latency for started, latency in samples if started >= began - 0.2]
    window.sort()
    p99 = window[int(len(window) * 0.99) - 1] if window else 0.0
    return {
        "migration_s": migration_s,
        "max_s": max(window, default=0.0),
        "p99_s": p99,
        "stalled_s": sum(latency for latency in window if latency > STALL_S),
        "statements": len(window),
        "median_ms": statistics.median(window) * 1000 if window else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "ABMIGRATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--only", help="run one scenario (by name)")
    args = parser.parse_args()

    print(f"building parts with {args.rows:,} rows …", flush=True)
    url = create_database(args.url, args.rows)
    header = (
        f"{'scenario':<20}{'mode':<11}{'migration':>10}{'max wait':>10}{'p99':>8}"
        f"{'stalled':>10}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    totals = {"plain": 0.0, "abmigrate": 0.0}
    with tempfile.TemporaryDirectory(prefix="abm-lock-stall-") as tmp:
        for scenario, (plain_op, safe_op, undo) in SCENARIOS.items():
            if args.only and args.only != scenario:
                continue
            results = {}
            for mode, operation in (("plain", plain_op), ("abmigrate", safe_op)):
                project = write_project(Path(tmp), url, scenario, operation, mode)
                results[mode] = run_once(url, project, mode)
                with psycopg.connect(libpq(url), autocommit=True) as conn:
                    conn.execute(undo)
                    conn.execute("DROP TABLE IF EXISTS alembic_version")
                totals[mode] += results[mode]["stalled_s"]
            for mode in ("plain", "abmigrate"):
                r = results[mode]
                ratio = ""
                if mode == "abmigrate" and results["plain"]["stalled_s"] > 0:
                    ratio = f"{r['stalled_s'] / results['plain']['stalled_s']:.1%}"
                print(
                    f"{scenario:<20}{mode:<11}{r['migration_s']:>9.2f}s{r['max_s']:>9.2f}s"
                    f"{r['p99_s']:>7.2f}s{r['stalled_s']:>9.2f}s{ratio:>8}",
                    flush=True,
                )
    if totals["plain"]:
        print(
            f"\nwriter-seconds stalled, all scenarios: plain {totals['plain']:.2f}s,"
            f" abmigrate {totals['abmigrate']:.2f}s"
            f" ({totals['abmigrate'] / totals['plain']:.1%} of plain);"
            f" lock_timeout {LOCK_TIMEOUT}"
        )
    with psycopg.connect(libpq(args.url), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS abm_bench_lock_stall WITH (FORCE)")


if __name__ == "__main__":
    main()
