"""Benchmark: `abmigrate check --checks round_trip` on a generated 100-revision project,
against plain `alembic upgrade head` + `alembic downgrade base` on the same database (server),
and against pytest-alembic's `test_up_down_consistency` — all measured in this one run.

    python bench/check_speed/run.py [--revisions 100] [--repeat 3] [--url SERVER_URL]
                                    [--no-postgres | --no-sqlite] [--no-pytest-alembic]
                                    [--compare-src OTHER_CHECKOUT/src]

Both PostgreSQL and SQLite are measured (the same project: constraints go through
batch_alter_table, plain ALTERs on PostgreSQL and SQLite's copy-and-move). SERVER_URL is a
PostgreSQL server (default: $ABMIGRATE_TEST_PG_URL, else the local default); every
measurement gets its own fresh database (file). pytest-alembic is installed into a separate
virtualenv under $TMPDIR (it is not a dependency of abmigrate); pass --no-pytest-alembic to
skip that comparison (PostgreSQL only). alembic and check runs alternate; the medians of
--repeat runs of each are printed with their ratio, wall clock and CPU time (user + system
of the process; the database server's own time is only in the wall clock).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

ENV_PY = """
from alembic import context
from sqlalchemy import Connection, create_engine, pool

config = context.config


def run(connection):
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


connectable = config.attributes.get("connection")  # a Connection, or pytest-alembic's Engine
if isinstance(connectable, Connection):
    run(connectable)
elif connectable is not None:
    with connectable.connect() as connection:
        run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
"""

INI = """[alembic]
script_location = %(here)s/migrations
sqlalchemy.url = {url}
"""


def revision_body(number: int) -> tuple[str, str]:
    """A mix of what real histories do: tables, columns, indexes, constraints, defaults."""
    table = f"t{number // 4}"
    kind = number % 4
    if kind == 0:
        return (
            f"""op.create_table(
        "{table}",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )""",
            f'op.drop_table("{table}")',
        )
    if kind == 1:
        return (
            f"""op.add_column("{table}", sa.Column("code", sa.String(20)))
    op.create_index("ix_{table}_code", "{table}", ["code"])""",
            f"""op.drop_index("ix_{table}_code", table_name="{table}")
    op.drop_column("{table}", "code")""",
        )
    # Constraints through batch_alter_table: plain ALTERs on PostgreSQL, SQLite's
    # copy-and-move where it cannot alter a constraint (what SQLite projects write).
    if kind == 2:
        parent = f"t{number // 4 - 1}" if number >= 4 else None
        if parent is None:
            return (
                f"""with op.batch_alter_table("{table}") as batch:
        batch.create_unique_constraint("uq_{table}_name", ["name"])""",
                f"""with op.batch_alter_table("{table}") as batch:
        batch.drop_constraint("uq_{table}_name", type_="unique")""",
            )
        return (
            f"""op.add_column("{table}", sa.Column("parent_id", sa.Integer))
    with op.batch_alter_table("{table}") as batch:
        batch.create_foreign_key("fk_{table}_parent", "{parent}", ["parent_id"], ["id"])""",
            f"""with op.batch_alter_table("{table}") as batch:
        batch.drop_constraint("fk_{table}_parent", type_="foreignkey")
    op.drop_column("{table}", "parent_id")""",
        )
    return (
        f"""op.add_column(
        "{table}", sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true())
    )
    with op.batch_alter_table("{table}") as batch:
        batch.create_check_constraint("ck_{table}_name", "length(name) > 0")""",
        f"""with op.batch_alter_table("{table}") as batch:
        batch.drop_constraint("ck_{table}_name", type_="check")
    op.drop_column("{table}", "active")""",
    )


def generate(project: Path, revisions: int) -> None:
    versions = project / "migrations" / "versions"
    versions.mkdir(parents=True)
    (project / "migrations" / "env.py").write_text(ENV_PY)
    previous = None
    for number in range(revisions):
        revision = f"bench{number:04d}"
        up, down = revision_body(number)
        (versions / f"{revision}.py").write_text(
            textwrap.dedent(
                f'''\
                """revision {number}"""
                import sqlalchemy as sa
                from alembic import op

                revision = "{revision}"
                down_revision = {previous!r}
                branch_labels = None
                depends_on = None


                def upgrade():
                    {{up}}


                def downgrade():
                    {{down}}
                '''
            ).format(up=up, down=down)
        )
        previous = revision


class Server:
    def __init__(self, url: str) -> None:
        self.url = make_url(url)

    def _admin(self, statement: str) -> None:
        engine = sa.create_engine(
            self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(statement))
        finally:
            engine.dispose()

    def fresh(self) -> tuple[str, str]:
        name = f"abm_bench_{secrets.token_hex(4)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name, self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class SQLiteFiles:
    """The SQLite side: a fresh database file per measurement, in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        # check names a URL only to say "SQLite": its scratch databases are temporary files.
        self.url = make_url(f"sqlite:///{folder / 'unused.db'}")

    def fresh(self) -> tuple[str, str]:
        path = self.folder / f"abm_bench_{secrets.token_hex(4)}.db"
        return str(path), f"sqlite:///{path}"

    def drop(self, name: str) -> None:
        Path(name).unlink(missing_ok=True)


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the child) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def bench_alembic(project: Path, server: Server | SQLiteFiles, python: str) -> tuple[float, float]:
    name, url = server.fresh()
    try:
        (project / "alembic.ini").write_text(INI.format(url=url.replace("%", "%%")))
        up = timed([python, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"], project)
        down = timed([python, "-m", "alembic", "-c", "alembic.ini", "downgrade", "base"], project)
        return up[0] + down[0], up[1] + down[1]
    finally:
        server.drop(name)


def bench_check(
    project: Path, server: Server | SQLiteFiles, python: str, source: str | None = None
) -> tuple[float, float]:
    """One run of check; ``source``: another tree's ``src`` to run instead of this one."""
    (project / "alembic.ini").write_text(INI.format(url=""))
    return timed(
        [
            python,
            "-m",
            "abmigrate",
            "--alembic-ini",
            "alembic.ini",
            "check",
            "--checks",
            "round_trip",
            "--url",
            server.url.render_as_string(hide_password=False),
        ],
        project,
        env={"PYTHONPATH": source} if source else None,
    )


CONFTEST = """
import os
import pytest
import sqlalchemy as sa


@pytest.fixture
def alembic_config():
    return {"file": "alembic.ini"}


@pytest.fixture
def alembic_engine():
    engine = sa.create_engine(os.environ["BENCH_DB_URL"], poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()
"""


def pytest_alembic_python() -> str | None:
    venv = Path(tempfile.gettempdir()) / "abmigrate-bench-pytest-alembic"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing pytest-alembic into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        result = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "pytest-alembic",
                "psycopg[binary]",
                "pytest",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            print(f"pytest-alembic could not be installed:\n{result.stderr}", file=sys.stderr)
            shutil.rmtree(venv, ignore_errors=True)
            return None
    return str(python)


def bench_pytest_alembic(project: Path, server: Server, python: str) -> float:
    (project / "alembic.ini").write_text(INI.format(url=""))
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_migrations.py").write_text(
        "from pytest_alembic.tests import test_up_down_consistency  # noqa: F401\n"
    )
    name, url = server.fresh()
    try:
        return timed(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_migrations.py"],
            project,
            env={"BENCH_DB_URL": url},
        )[0]
    finally:
        server.drop(name)
        (project / "conftest.py").unlink()
        (project / "test_migrations.py").unlink()


def bench_scratch(server: Server) -> float:
    """Creating and dropping one empty scratch database: the fixed cost check pays."""
    from abmigrate.db.scratch import scratch_database

    started = time.perf_counter()
    with scratch_database(server.url.render_as_string(hide_password=False)):
        pass
    return time.perf_counter() - started


def measure(
    label: str,
    project: Path,
    target: Server | SQLiteFiles,
    repeat: int,
    other: str | None,
    compare: str | None = None,
) -> None:
    """Interleaved runs of alembic and check on ``target``; the medians and their ratios.
    ``compare``: the ``src`` folder of another tree whose check runs interleaved too."""
    wall: dict[str, list[float]] = {
        "alembic": [],
        "check": [],
        "compare": [],
        "pytest-alembic": [],
        "scratch": [],
    }
    cpu: dict[str, list[float]] = {"alembic": [], "check": [], "compare": []}
    for _ in range(repeat):
        if isinstance(target, Server):
            wall["scratch"].append(bench_scratch(target))
        elapsed, used = bench_alembic(project, target, sys.executable)
        wall["alembic"].append(elapsed)
        cpu["alembic"].append(used)
        elapsed, used = bench_check(project, target, sys.executable)
        wall["check"].append(elapsed)
        cpu["check"].append(used)
        if compare:
            elapsed, used = bench_check(project, target, sys.executable, compare)
            wall["compare"].append(elapsed)
            cpu["compare"].append(used)
        if other and isinstance(target, Server):
            wall["pytest-alembic"].append(bench_pytest_alembic(project, target, other))
    median = {key: statistics.median(values) for key, values in wall.items() if values}
    alembic_cpu, check_cpu = statistics.median(cpu["alembic"]), statistics.median(cpu["check"])
    print(f"{label}, median of {repeat} runs")
    print(
        f"  alembic upgrade head + downgrade base     {median['alembic']:7.2f}s"
        f"  (baseline; CPU {alembic_cpu:.2f}s)"
    )
    print(
        f"  abmigrate check --checks round_trip        {median['check']:7.2f}s"
        f"  ratio {median['check'] / median['alembic']:.2f}x"
        f"  (CPU {check_cpu:.2f}s, ratio {check_cpu / alembic_cpu:.2f}x)"
    )
    if "compare" in median:
        compare_cpu = statistics.median(cpu["compare"])
        print(
            f"  the same check from {compare}:"
            f" {median['compare']:.2f}s  ratio {median['compare'] / median['alembic']:.2f}x"
            f"  (CPU {compare_cpu:.2f}s, ratio {compare_cpu / alembic_cpu:.2f}x)"
        )
    if "scratch" in median:
        print(
            f"    of which creating + dropping an empty scratch database {median['scratch']:.2f}s;"
            f" without it: ratio {(median['check'] - median['scratch']) / median['alembic']:.2f}x"
        )
    if "pytest-alembic" in median:
        print(
            f"  pytest-alembic test_up_down_consistency    {median['pytest-alembic']:7.2f}s"
            f"  ratio {median['pytest-alembic'] / median['alembic']:.2f}x"
            f"  (check is {median['pytest-alembic'] / median['check']:.1f}x faster)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("ABMIGRATE_TEST_PG_URL") or DEFAULT_URL)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--no-pytest-alembic", action="store_true")
    parser.add_argument(
        "--compare-src",
        metavar="SRC",
        help="also time check from this source folder (another checkout's src), interleaved",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="abm_bench_"))
    try:
        project = work / "project"
        generate(project, args.revisions)
        print(f"{args.revisions} revisions; load average {os.getloadavg()[0]:.2f} at the start")
        if not args.no_postgres:
            other = None if args.no_pytest_alembic else pytest_alembic_python()
            measure("PostgreSQL", project, Server(args.url), args.repeat, other, args.compare_src)
        if not args.no_sqlite:
            measure(
                "SQLite", project, SQLiteFiles(work / "sqlite"), args.repeat, None, args.compare_src
            )
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
