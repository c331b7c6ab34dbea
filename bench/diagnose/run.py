"""Benchmark: schema fingerprints and `abmigrate diagnose`, with baselines from this same run.

    python bench/diagnose/run.py [--tables 300] [--revisions 100] [--repeat 3] [--url SERVER]

1. The fingerprint of a PostgreSQL schema of --tables tables (each: 6 columns, a primary key,
   a unique constraint, an index, a partial index, a foreign key to the previous table, a
   CHECK, and an enum column), against SQLAlchemy's own full reflection of the same schema
   (``MetaData.reflect``) as the baseline.
2. `abmigrate diagnose` (the real CLI, a new process each time) on a generated project of
   --revisions revisions whose database is at head: the first call (cold cache: every
   revision replayed into a scratch database) and the cached call, against `abmigrate
   status` on the same project as the baseline.

SERVER is a PostgreSQL server URL (default $ABMIGRATE_TEST_PG_URL, else the local default);
the benchmark creates and drops its own databases there. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from abmigrate.db.fingerprint import fingerprint_url  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

INI = """[alembic]
script_location = %(here)s/migrations
sqlalchemy.url =
"""

ENV_PY = """
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config


def run(connection):
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
"""

MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''


@contextmanager
def database(server: str) -> Iterator[str]:
    name = f"abm_bench_diag_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def build_schema(url: str, tables: int) -> None:
    statements = ["CREATE TYPE state AS ENUM ('new', 'active', 'closed')"]
    for number in range(tables):
        parent = (
            f", parent_id INTEGER REFERENCES t{number - 1:03d}(id) ON DELETE CASCADE"
            if number
            else ""
        )
        statements += [
            f"CREATE TABLE t{number:03d} (id SERIAL PRIMARY KEY, code VARCHAR(40) NOT NULL"
            f" UNIQUE, amount NUMERIC(12, 2) NOT NULL DEFAULT 0 CHECK (amount >= 0),"
            f" status state NOT NULL DEFAULT 'new', created TIMESTAMPTZ DEFAULT now(),"
            f" note TEXT{parent})",
            f"CREATE INDEX ix_t{number:03d}_created ON t{number:03d} (created)",
            f"CREATE INDEX ix_t{number:03d}_open ON t{number:03d} (code) WHERE status <> 'closed'",
        ]
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def reflect(url: str) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        sa.MetaData().reflect(engine)
    finally:
        engine.dispose()


def timed(function: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def write_project(folder: Path, revisions: int) -> None:
    versions = folder / "migrations" / "versions"
    versions.mkdir(parents=True)
    (folder / "alembic.ini").write_text(INI)
    (folder / "migrations" / "env.py").write_text(ENV_PY)
    (folder / "migrations" / "script.py.mako").write_text(MAKO)
    previous = None
    for number in range(revisions):
        revision = f"b{number:011d}"
        table = f"r{number // 3:03d}"
        if number % 3 == 0:
            body = (
                f"op.create_table({table!r}, sa.Column('id', sa.Integer, primary_key=True),"
                " sa.Column('name', sa.String(50), nullable=False))"
            )
            down = f"op.drop_table({table!r})"
        elif number % 3 == 1:
            body = f"op.add_column({table!r}, sa.Column('extra', sa.Integer, nullable=True))"
            down = f"op.drop_column({table!r}, 'extra')"
        else:
            body = f"op.create_index('ix_{table}_name', {table!r}, ['name'])"
            down = f"op.drop_index('ix_{table}_name', table_name={table!r})"
        (versions / f"{revision}.py").write_text(
            textwrap.dedent(
                f'''\
                """step {number}"""
                import sqlalchemy as sa
                from alembic import op

                revision = {revision!r}
                down_revision = {previous!r}
                branch_labels = None
                depends_on = None


                def upgrade() -> None:
                    {body}


                def downgrade() -> None:
                    {down}
                '''
            )
        )
        previous = revision


def cli(folder: Path, url: str, *args: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "abmigrate", "--alembic-ini", str(folder / "alembic.ini")]
    result = subprocess.run(
        [*command, "--url", url, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"abmigrate {' '.join(args)} failed:\n{result.stderr}")
    return elapsed


def diagnose_in_process(folder: Path, url: str, repeat: int) -> float:
    """The cached diagnose's own work: imports are paid once, before timing."""
    os.environ["ABMIGRATE_CACHE_DIR"] = str(folder / "cache")
    from abmigrate import api
    from abmigrate.config.workspace import Workspace

    def run() -> None:
        workspace = Workspace.open(alembic_ini=folder / "alembic.ini", url=url)
        assert api.diagnose(workspace, with_models=False).state == "up_to_date"

    run()
    return timed(run, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, default=300)
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="keep the generated project in this folder (profiling)")
    parser.add_argument("--url", default=os.environ.get("ABMIGRATE_TEST_PG_URL") or DEFAULT_URL)
    args = parser.parse_args()

    print(f"== fingerprint of a {args.tables}-table PostgreSQL schema (median of {args.repeat})")
    with database(args.url) as url:
        build_schema(url, args.tables)
        fingerprint_s = timed(lambda: fingerprint_url(url), args.repeat)
        reflect_s = timed(lambda: reflect(url), args.repeat)
        objects = len(fingerprint_url(url).objects)
    print(f"fingerprint_url        {fingerprint_s:7.3f}s  ({objects} objects described)")
    print(f"MetaData.reflect       {reflect_s:7.3f}s  (baseline: SQLAlchemy full reflection)")
    print(f"ratio fingerprint/reflect = {fingerprint_s / reflect_s:.2f}")

    print(f"\n== diagnose on a {args.revisions}-revision project at head (real CLI)")
    folder = Path(tempfile.mkdtemp(prefix="abm-bench-diagnose-"))
    try:
        write_project(folder, args.revisions)
        env = {
            **os.environ,
            "ABMIGRATE_CACHE_DIR": str(folder / "cache"),
            "PYTHONPATH": str(ROOT / "src"),
        }
        with database(args.url) as url:
            cli(folder, url, "upgrade", env=env)
            first = cli(folder, url, "diagnose", "--no-models", env=env)
            cached = statistics.median(
                cli(folder, url, "diagnose", "--no-models", env=env) for _ in range(args.repeat)
            )
            status = statistics.median(
                cli(folder, url, "status", env=env) for _ in range(args.repeat)
            )
            in_process = diagnose_in_process(folder, url, args.repeat)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"diagnose, first call   {first:7.3f}s  (replays {args.revisions} revisions)")
    print(f"diagnose, cached       {cached:7.3f}s")
    print(f"status                 {status:7.3f}s  (baseline: the cheapest command reading the DB)")
    print(f"diagnose, cached, in-process {in_process:7.3f}s  (without interpreter start/imports)")
    print(f"ratio first/cached = {first / cached:.1f}; cached/status = {cached / status:.2f}")


if __name__ == "__main__":
    main()
