"""CLI latency: abmigrate's read-only commands against their alembic counterparts.

Generates an Alembic project of N revisions (default 300: create table / add column /
create index, each with its downgrade) in a temporary folder, migrates a SQLite database
(and, when reachable, a fresh PostgreSQL database) to head with `abmigrate upgrade` (so
they hold abmigrate's journal, as any database it migrates does, and `status` reads it),
then times each command as a
fresh subprocess, median of --runs runs, alembic and abmigrate interleaved so that machine
noise hits both alike:

    alembic --version          abmigrate --version          (start-up)
    alembic current            abmigrate status             (database at head)
    alembic history            abmigrate history            (database at head)
    alembic heads              abmigrate heads
    alembic upgrade head --sql abmigrate plan --sql         (empty database: all revisions)

Run:  .venv/bin/python bench/cli_latency/run.py [--runs 7] [--revisions 300] [--no-postgres]
      [--only TEXT] [--instructions]        (docs/performance.md has the figures)

abmigrate runs twice per round: warm (its caches, the revision graph's and the analysis',
filled by the untimed first run) and cold (an empty cache folder every run:
$ABMIGRATE_CACHE_DIR pointed at a new folder), so each row has both against the same
alembic runs. The goals (issue #14): status, current, heads and history warm <= 0.5x and
cold <= 1.2x their alembic counterpart; plan --sql warm <= 1.0x; start-up <= 1.2x (#2).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

GOAL = 1.2  # start-up (issue #2); the others: Pair.warm_goal / cold_goal (issue #14)
DEFAULT_PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

ALEMBIC_INI = """\
[alembic]
script_location = {script_location}
sqlalchemy.url = {url}

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
"""

# Alembic's "generic" template, as most projects have it: the URL comes from alembic.ini.
ENV_PY = """\
from logging.config import fileConfig

from sqlalchemy import engine_from_config, pool

from alembic import context

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = None


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"""

SCRIPT_MAKO = '''\
"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''

REVISION = '''\
"""{message}

Revision ID: {revision}
Revises: {down_revision}
Create Date: 2026-01-01 00:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down_revision_repr}
branch_labels = None
depends_on = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def _revision_body(index: int) -> tuple[str, str, str]:
    """(message, upgrade body, downgrade body) for the index-th revision, cycling 3 kinds."""
    table = f"item_{index // 3:03d}"
    kind = index % 3
    if kind == 0:
        return (
            f"create {table}",
            f"""    op.create_table(
        "{table}",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.func.now(), nullable=False),
    )""",
            f'    op.drop_table("{table}")',
        )
    if kind == 1:
        return (
            f"add {table}.status",
            f'    op.add_column("{table}", sa.Column("status", sa.String(length=20), nullable=True))',
            f'    op.drop_column("{table}", "status")',
        )
    return (
        f"index {table}.status",
        f'    op.create_index("ix_{table}_status", "{table}", ["status"])',
        f'    op.drop_index("ix_{table}_status", table_name="{table}")',
    )


def generate_project(root: Path, count: int) -> Path:
    """An Alembic script directory with ``count`` linear revisions; returns its folder."""
    scripts = root / "migrations"
    versions = scripts / "versions"
    versions.mkdir(parents=True)
    (scripts / "env.py").write_text(ENV_PY)
    (scripts / "script.py.mako").write_text(SCRIPT_MAKO)
    rng = random.Random(2)
    down: str | None = None
    for index in range(count):
        revision = f"{rng.getrandbits(48):012x}"
        message, upgrade, downgrade = _revision_body(index)
        slug = message.replace(" ", "_").replace(".", "_")
        (versions / f"{revision}_{slug}.py").write_text(
            REVISION.format(
                message=message,
                revision=revision,
                down_revision=down or "",
                down_revision_repr=repr(down),
                upgrade=upgrade,
                downgrade=downgrade,
            )
        )
        down = revision
    return scripts


def write_ini(root: Path, name: str, scripts: Path, url: str) -> Path:
    ini = root / f"{name}.ini"
    ini.write_text(ALEMBIC_INI.format(script_location=scripts, url=url.replace("%", "%%")))
    return ini


@dataclass
class Tool:
    """How to start a command line tool as a fresh process."""

    argv: list[str]

    @classmethod
    def find(cls, name: str) -> Tool:
        # The console script next to this interpreter is what a user runs; `-m` otherwise.
        script = Path(sys.executable).parent / name
        if script.is_file() and os.access(script, os.X_OK):
            return cls([str(script)])
        return cls([sys.executable, "-m", name])


@dataclass
class Pair:
    label: str
    alembic: list[str]
    abmigrate: list[str]
    check: Callable[[str], bool] = lambda output: True
    warm_goal: float = GOAL
    cold_goal: float | None = None  # None: reported, no goal


@dataclass
class Row:
    label: str
    alembic_ms: float
    abmigrate_ms: float  # warm
    alembic_cpu_ms: float
    abmigrate_cpu_ms: float
    cold_ms: float = 0.0
    cold_cpu_ms: float = 0.0
    warm_goal: float = GOAL
    cold_goal: float | None = None
    alembic_instructions: int | None = None
    abmigrate_instructions: int | None = None

    @property
    def ratio(self) -> float:
        return self.abmigrate_ms / self.alembic_ms

    @property
    def cpu_ratio(self) -> float:
        return self.abmigrate_cpu_ms / self.alembic_cpu_ms

    @property
    def cold_ratio(self) -> float:
        return self.cold_ms / self.alembic_ms

    @property
    def cold_cpu_ratio(self) -> float:
        return self.cold_cpu_ms / self.alembic_cpu_ms

    @property
    def met(self) -> bool:
        return self.ratio <= self.warm_goal and (
            self.cold_goal is None or self.cold_ratio <= self.cold_goal
        )

    @property
    def instruction_ratio(self) -> float | None:
        if not self.alembic_instructions or self.abmigrate_instructions is None:
            return None
        return self.abmigrate_instructions / self.alembic_instructions


def migrate_to_head(abmigrate: Tool, ini: Path, url: str, root: Path, env: dict[str, str]) -> None:
    """`abmigrate upgrade` to head, in a cache folder of its own (the timed runs start cold
    or from the warm folder the first of them fills)."""
    upgrade_env = dict(env, ABMIGRATE_CACHE_DIR=str(root / "cache-upgrade"))
    run_once(
        [*abmigrate.argv, "--alembic-ini", str(ini), "--url", url, "upgrade", "--yes"],
        root,
        upgrade_env,
    )


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    # Nothing from the caller's shell may change the policy or the output.
    for name in ("ABMIGRATE_ENV", "ENVIRONMENT", "DATABASE_URL", "PYTHONPROFILEIMPORTTIME"):
        env.pop(name, None)
    # Users run with cached bytecode (pip compiles it at install); without this, a shell
    # that sets PYTHONDONTWRITEBYTECODE would make every run recompile abmigrate's sources
    # (an editable install) and every revision file, for both tools.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    return env


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall ms, CPU ms, stdout) of one run. CPU time suffers less from a busy machine."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    cpu = (_children_cpu_s() - cpu_before) * 1000
    if done.returncode != 0:
        raise SystemExit(
            f"command failed (exit {done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}"
        )
    return elapsed, cpu, done.stdout


def count_instructions(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> int:
    """Instructions executed by one run, under valgrind: the same on a busy machine as on an
    idle one, where wall-clock and even CPU time are not."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"==\d+== Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed on {' '.join(argv)}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def time_pair(
    pair: Pair, runs: int, cwd: Path, env: dict[str, str], *, instructions: bool = False
) -> Row:
    """Median wall and CPU time of alembic, abmigrate with its caches warm, and abmigrate
    with an empty cache folder (a new one per run), interleaved."""
    tools = ("alembic", "warm", "cold")
    walls: dict[str, list[float]] = {tool: [] for tool in tools}
    cpus: dict[str, list[float]] = {tool: [] for tool in tools}
    warm_env = {**env, "ABMIGRATE_CACHE_DIR": str(cwd / "cache-warm")}
    # One untimed warm-up each, so the first measured run does not pay for a cold file
    # cache (and abmigrate's own caches are filled for the warm runs).
    run_once(pair.alembic, cwd, env)
    _, _, output = run_once(pair.abmigrate, cwd, warm_env)
    if not pair.check(output):
        raise SystemExit(f"unexpected output from {' '.join(pair.abmigrate)}:\n{output[:2000]}")
    for index in range(runs):
        cold_env = {**env, "ABMIGRATE_CACHE_DIR": tempfile.mkdtemp(dir=cwd, prefix="cold-")}
        # Rotate which goes first, so slow drift of the machine hits all alike.
        order = [
            ("alembic", pair.alembic, env),
            ("warm", pair.abmigrate, warm_env),
            ("cold", pair.abmigrate, cold_env),
        ]
        order = order[index % 3 :] + order[: index % 3]
        for tool, argv, tool_env in order:
            wall, cpu, _ = run_once(argv, cwd, tool_env)
            walls[tool].append(wall)
            cpus[tool].append(cpu)
        shutil.rmtree(cold_env["ABMIGRATE_CACHE_DIR"], ignore_errors=True)
    median = statistics.median
    row = Row(
        pair.label,
        median(walls["alembic"]),
        median(walls["warm"]),
        median(cpus["alembic"]),
        median(cpus["warm"]),
        cold_ms=median(walls["cold"]),
        cold_cpu_ms=median(cpus["cold"]),
        warm_goal=pair.warm_goal,
        cold_goal=pair.cold_goal,
    )
    if instructions:
        row.alembic_instructions = count_instructions(pair.alembic, cwd, env)
        row.abmigrate_instructions = count_instructions(pair.abmigrate, cwd, warm_env)
    return row


def pairs_for(
    backend: str,
    alembic: Tool,
    abmigrate: Tool,
    head_ini: Path,
    head_url: str,
    empty_ini: Path,
    empty_url: str,
    count: int,
) -> list[Pair]:
    def ab(ini: Path, url: str, *command: str) -> list[str]:
        return [*abmigrate.argv, "--alembic-ini", str(ini), "--url", url, *command]

    def al(ini: Path, *command: str) -> list[str]:
        return [*alembic.argv, "-c", str(ini), *command]

    graph = {"warm_goal": 0.5, "cold_goal": 1.2}  # issue #14: the revision-graph cache
    return [
        Pair(
            f"{backend}: current / status",
            al(head_ini, "current"),
            ab(head_ini, head_url, "status"),
            lambda output: "up_to_date" in output or "up to date" in output,
            **graph,
        ),
        Pair(
            f"{backend}: current / current",
            al(head_ini, "current"),
            ab(head_ini, head_url, "current"),
            lambda output: output.strip() != "",
            **graph,
        ),
        Pair(
            f"{backend}: history / history",
            al(head_ini, "history"),
            ab(head_ini, head_url, "history"),
            lambda output: output.count("item_") >= count,
            **graph,
        ),
        Pair(
            f"{backend}: heads / heads",
            al(head_ini, "heads"),
            ab(head_ini, head_url, "heads"),
            **graph,
        ),
        Pair(
            f"{backend}: upgrade head --sql / plan --sql",
            al(empty_ini, "upgrade", "head", "--sql"),
            ab(empty_ini, empty_url, "plan", "--sql"),
            # Every revision rendered: one CREATE/ALTER/INDEX statement each.
            lambda output: (
                sum(output.count(word) for word in ("CREATE TABLE", "ADD COLUMN"))
                + output.count("CREATE INDEX")
                >= count
            ),
            warm_goal=1.0,
        ),
    ]


def postgres_databases(server_url: str, names: Sequence[str], create: bool) -> bool:
    """Create (or drop) throwaway databases; False when the server is not reachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                if create:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        print(f"PostgreSQL not reachable, skipped: {str(exc.orig).strip()}", file=sys.stderr)
        return False
    finally:
        engine.dispose()
    return True


def database_url(server_url: str, name: str, env: dict[str, str]) -> str:
    """The bench database's URL without its password, which goes to the children through
    PGPASSWORD: never a password in a process's arguments."""
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return url.set(database=name, password=None).render_as_string(hide_password=False)


def print_table(rows: Sequence[Row], runs: int) -> None:
    """A Markdown table (pasted as is into docs/performance.md)."""
    with_instructions = any(row.instruction_ratio is not None for row in rows)
    header = [
        "command pair (alembic / abmigrate)",
        "alembic ms",
        "warm ms",
        "warm ratio",
        "cold ms",
        "cold ratio",
        "CPU ms (alembic / warm / cold)",
        "CPU ratio warm / cold",
        "goal warm / cold",
    ]
    if with_instructions:
        header += ["instructions, M (alembic / warm)", "instr. ratio"]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if index == 0 else "--:" for index in range(len(header))) + "|")
    for row in rows:
        cells = [
            row.label,
            f"{row.alembic_ms:.0f}",
            f"{row.abmigrate_ms:.0f}",
            _ratio(row.ratio, row.warm_goal),
            f"{row.cold_ms:.0f}",
            _ratio(row.cold_ratio, row.cold_goal),
            f"{row.alembic_cpu_ms:.0f} / {row.abmigrate_cpu_ms:.0f} / {row.cold_cpu_ms:.0f}",
            f"{_ratio(row.cpu_ratio, row.warm_goal)} / {_ratio(row.cold_cpu_ratio, row.cold_goal)}",
            f"{row.warm_goal}x / " + (f"{row.cold_goal}x" if row.cold_goal else "-"),
        ]
        if with_instructions:
            ratio = row.instruction_ratio
            cells += [
                f"{(row.alembic_instructions or 0) / 1e6:.0f} / "
                f"{(row.abmigrate_instructions or 0) / 1e6:.0f}",
                "" if ratio is None else _ratio(ratio, row.warm_goal),
            ]
        print("| " + " | ".join(cells) + " |")
    print()
    print(
        f"Median of {runs} runs each, a fresh process per run; warm: abmigrate's caches filled"
        " by an earlier run; cold: an empty cache folder every run. ** marks a ratio over its"
        " goal. CPU = user+system time of the process."
        + (" Instructions: one warm run under valgrind (callgrind)." if with_instructions else "")
    )


def _ratio(value: float, goal: float | None = GOAL) -> str:
    return f"**{value:.2f}x**" if goal is not None and value > goal else f"{value:.2f}x"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (median)")
    parser.add_argument("--revisions", type=int, default=300, help="revisions in the project")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--pg-server-url",
        default=os.environ.get("ABMIGRATE_TEST_PG_URL", DEFAULT_PG_SERVER),
        help="PostgreSQL maintenance-database URL used to create/drop the bench databases",
    )
    parser.add_argument("--only", help="time only the pairs whose label contains this text")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions under valgrind (slow; unaffected by other load)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args(argv)

    alembic, abmigrate = Tool.find("alembic"), Tool.find("abmigrate")
    env = bench_env()
    root = Path(tempfile.mkdtemp(prefix="abmigrate-bench-latency-"))
    pg_names = [f"abm_bench_latency_{os.getpid()}_head", f"abm_bench_latency_{os.getpid()}_empty"]
    pg_created = False
    started = time.perf_counter()
    try:
        scripts = generate_project(root, args.revisions)
        print(f"project: {args.revisions} revisions in {scripts}", file=sys.stderr)
        sqlite_head = f"sqlite:///{root / 'head.db'}"
        sqlite_empty = f"sqlite:///{root / 'empty.db'}"
        head_ini = write_ini(root, "sqlite_head", scripts, sqlite_head)
        empty_ini = write_ini(root, "sqlite_empty", scripts, sqlite_empty)
        # The head database as abmigrate leaves it, with its journal (which `status` reads):
        # alembic's commands read it as they read any database at head.
        migrate_to_head(abmigrate, head_ini, sqlite_head, root, env)

        pairs = [
            Pair(
                "start-up: --version", [*alembic.argv, "--version"], [*abmigrate.argv, "--version"]
            )
        ]
        pairs += pairs_for(
            "sqlite", alembic, abmigrate, head_ini, sqlite_head, empty_ini, sqlite_empty,
            args.revisions,
        )  # fmt: skip
        if not args.no_postgres and postgres_databases(args.pg_server_url, pg_names, True):
            pg_created = True
            pg_head, pg_empty = (database_url(args.pg_server_url, name, env) for name in pg_names)
            pg_head_ini = write_ini(root, "pg_head", scripts, pg_head)
            pg_empty_ini = write_ini(root, "pg_empty", scripts, pg_empty)
            migrate_to_head(abmigrate, pg_head_ini, pg_head, root, env)
            pairs += pairs_for(
                "postgresql", alembic, abmigrate, pg_head_ini, pg_head, pg_empty_ini, pg_empty,
                args.revisions,
            )  # fmt: skip

        if args.only:
            pairs = [pair for pair in pairs if args.only in pair.label]
        rows = []
        for pair in pairs:
            row = time_pair(pair, args.runs, root, env, instructions=args.instructions)
            print(
                f"  {row.label}: {row.alembic_ms:.0f} / {row.abmigrate_ms:.0f} (warm)"
                f" / {row.cold_ms:.0f} (cold) ms",
                file=sys.stderr,
            )
            rows.append(row)
        print_table(rows, args.runs)
        print(
            f"python {platform.python_version()}, {os.cpu_count()} CPUs,"
            f" total {time.perf_counter() - started:.0f}s"
        )
        return 0 if all(row.met for row in rows) else 1
    finally:
        if pg_created:
            postgres_databases(args.pg_server_url, pg_names, False)
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
