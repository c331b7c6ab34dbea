"""Where `abmigrate check --checks round_trip` spends its time on PostgreSQL: every statement
and every commit of one in-process run, timed from the client and grouped by kind, and the
work of the server's sessions, against plain Alembic's upgrade head + downgrade base.

    python bench/check_speed/statements.py [--revisions 100] [--url SERVER_URL] [--repeat N]
                                           [--cprofile FILE]

Each repeat runs Alembic's upgrade head + downgrade base (alembic.command, in this process,
on a fresh database made outside the measurement) and then the check, and prints for each:
wall clock, client CPU, round trips to the server (statements, plus the BEGIN psycopg sends
before the first statement of a transaction) and the CPU time of the server sessions it
used (read from /proc when they close: a server on this host only). Round trips and server
CPU hardly move with the machine's load, unlike the wall clock. The check's statements by
kind follow, timed from the client (round trip included). ``--cprofile FILE`` writes a
cProfile of the last check run (read it with ``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DEFAULT_URL, INI, generate

KINDS = (
    ("CREATE/ALTER/DROP DATABASE", re.compile(r"^\s*(CREATE|ALTER|DROP) DATABASE", re.I)),
    ("schema digest", re.compile(r"^\s*(WITH rel AS|EXECUTE abmigrate_schema_digest)", re.I)),
    ("alembic_version", re.compile(r"alembic_version", re.I)),
    ("enum look-ups (pg_type)", re.compile(r"FROM pg_type t", re.I)),
    (
        "settings / identity",
        re.compile(
            r"set_config|^\s*(SET|SHOW|select pg_catalog\.version|"
            r"select current_schema|show standard)",
            re.I,
        ),
    ),
    ("the revisions' DDL", re.compile(r"^\s*(CREATE|ALTER|DROP|COMMENT)\b", re.I)),
)

totals: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
series: dict[str, list[float]] = collections.defaultdict(list)
server_cpu = [0.0]
sessions: list[tuple[str, bool, float]] = []  # database, autocommit, CPU of each session
IDLE = psycopg.pq.TransactionStatus.IDLE


def kind_of(statement: str) -> str:
    for name, pattern in KINDS:
        if pattern.search(statement):
            return name
    return "other: " + " ".join(statement.split())[:60]


def _timed(name: str, original: Any) -> Any:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        begun = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            entry = totals[name]
            entry[0] += 1
            entry[1] += time.perf_counter() - begun

    return wrapper


def _execute(original: Any) -> Any:
    def wrapper(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        connection = self.connection
        if not connection.autocommit and connection.info.transaction_status == IDLE:
            totals["BEGIN (sent by psycopg with the next statement)"][0] += 1
        begun = time.perf_counter()
        try:
            return original(self, query, *args, **kwargs)
        finally:
            elapsed = time.perf_counter() - begun
            kind = kind_of(query if isinstance(query, str) else str(query))
            entry = totals[kind]
            entry[0] += 1
            entry[1] += elapsed
            series[kind].append(elapsed)

    return wrapper


def _closing(original: Any) -> Any:
    """Add the CPU time of the connection's server session as it closes."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.closed:
            used = _session_cpu(self.info.backend_pid)
            server_cpu[0] += used
            sessions.append((self.info.dbname, self.autocommit, used))
        return original(self, *args, **kwargs)

    return wrapper


def _session_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# Every statement goes through psycopg's cursor (SQLAlchemy's and the schema watcher's).
psycopg.Cursor.execute = _execute(psycopg.Cursor.execute)  # type: ignore[method-assign]
psycopg.Connection.commit = _timed("COMMIT", psycopg.Connection.commit)  # type: ignore[method-assign]
psycopg.Connection.rollback = _timed("ROLLBACK", psycopg.Connection.rollback)  # type: ignore[method-assign]
psycopg.Connection.close = _closing(psycopg.Connection.close)  # type: ignore[method-assign]
psycopg.Connection.connect = classmethod(  # type: ignore[method-assign,assignment]
    _timed("connect", psycopg.Connection.connect.__func__)  # type: ignore[attr-defined]
)


def round_trips() -> int:
    return sum(count for name, (count, _) in totals.items() if name not in ("connect",))


def reset() -> None:
    totals.clear()
    series.clear()
    sessions.clear()
    server_cpu[0] = 0.0


def run_alembic(project: Path, server_url: str) -> tuple[float, float]:
    """Plain Alembic up and down on a fresh database (made and dropped outside the figures)."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.engine import make_url

    name = f"abm_bench_{os.getpid()}_{time.monotonic_ns()}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    (project / "alembic.ini").write_text(INI.format(url=url.replace("%", "%%")))
    try:
        reset()
        begun, cpu = time.perf_counter(), time.process_time()
        config = Config(str(project / "alembic.ini"))
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        return time.perf_counter() - begun, time.process_time() - cpu
    finally:
        (project / "alembic.ini").write_text(INI.format(url=""))
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run_check(project: Path, server_url: str, profiler: Any) -> tuple[float, float]:
    from abmigrate.check.checks import CheckContext, run_checks

    context = CheckContext(project / "alembic.ini", server_url=server_url)
    reset()
    begun, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    report = run_checks(context, ["round_trip"])
    if profiler:
        profiler.disable()
    assert report.passed, report.to_record()
    return time.perf_counter() - begun, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("--url", default=os.environ.get("ABMIGRATE_TEST_PG_URL") or DEFAULT_URL)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cprofile", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="abm_profile_"))
    try:
        project = work / "project"
        generate(project, args.revisions)
        (project / "alembic.ini").write_text(INI.format(url=""))
        os.chdir(project)
        print(f"{args.revisions} revisions; load average {os.getloadavg()[0]:.2f} at the start")
        for _ in range(args.repeat):
            for label, run in (
                ("alembic up + down", lambda: run_alembic(project, args.url)),
                ("check round_trip ", lambda: run_check(project, args.url, profiler)),  # noqa: B023
            ):
                profiler = cProfile.Profile() if args.cprofile and "check" in label else None
                wall, cpu = run()
                print(
                    f"  {label}  {wall:5.2f}s wall  {cpu:5.2f}s client CPU"
                    f"  {round_trips():5d} round trips  {server_cpu[0]:5.2f}s server CPU"
                    f"  (load {os.getloadavg()[0]:.2f})"
                )
        if profiler:
            profiler.dump_stats(args.cprofile)
        print("the last check's statements, timed from the client (round trip included):")
        for name, (count, seconds) in sorted(totals.items(), key=lambda item: -item[1][1]):
            print(f"  {name:<58} {count:5d} {seconds:7.3f}s")
        print("the last check's server sessions (database, autocommit, CPU):")
        for database, autocommit, used in sessions:
            print(f"  {database:<45} {'autocommit' if autocommit else '':<10} {used:5.2f}s")
        digests = series["schema digest"]
        if digests:
            print(
                "  schema digests in walk order, ms (every 20th):",
                " ".join(f"{d * 1000:.1f}" for d in digests[::20]),
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
