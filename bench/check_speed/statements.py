"""Where `abmigrate check --checks round_trip` spends its time on PostgreSQL: every statement
and every commit of one in-process run, timed from the client and grouped by kind.

    python bench/check_speed/statements.py [--revisions 100] [--url SERVER_URL] [--cprofile FILE]

The times include the round trip to the server (what the check waits for); the run's wall
clock and the load average are printed with them. ``--cprofile FILE`` also writes a cProfile
of the run (read it with ``python -m pstats FILE``).
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


# Every statement goes through psycopg's cursor (SQLAlchemy's and the schema watcher's).
psycopg.Cursor.execute = _execute(psycopg.Cursor.execute)  # type: ignore[method-assign]
psycopg.Connection.commit = _timed("COMMIT", psycopg.Connection.commit)  # type: ignore[method-assign]
psycopg.Connection.rollback = _timed("ROLLBACK", psycopg.Connection.rollback)  # type: ignore[method-assign]
psycopg.Connection.connect = classmethod(  # type: ignore[method-assign,assignment]
    _timed("connect", psycopg.Connection.connect.__func__)  # type: ignore[attr-defined]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("--url", default=os.environ.get("ABMIGRATE_TEST_PG_URL") or DEFAULT_URL)
    parser.add_argument("--cprofile", type=Path)
    args = parser.parse_args()

    from abmigrate.check.checks import CheckContext, run_checks

    work = Path(tempfile.mkdtemp(prefix="abm_profile_"))
    try:
        project = work / "project"
        generate(project, args.revisions)
        (project / "alembic.ini").write_text(INI.format(url=""))
        os.chdir(project)
        load = os.getloadavg()[0]
        context = CheckContext(project / "alembic.ini", server_url=args.url)
        profiler = cProfile.Profile() if args.cprofile else None
        begun, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        report = run_checks(context, ["round_trip"])
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        wall, cpu = time.perf_counter() - begun, time.process_time() - cpu
        assert report.passed, report.to_record()
        print(
            f"{args.revisions} revisions: {wall:.2f}s wall, {cpu:.2f}s CPU in-process;"
            f" load average {load:.2f} before, {os.getloadavg()[0]:.2f} after"
        )
        for name, (count, seconds) in sorted(totals.items(), key=lambda item: -item[1][1]):
            print(f"  {name:<58} {count:5d} {seconds:7.3f}s")
        print(
            f"  {'all of the above':<58} {sum(c for c, _ in totals.values()):5d}"
            f" {sum(s for _, s in totals.values()):7.3f}s"
        )
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
