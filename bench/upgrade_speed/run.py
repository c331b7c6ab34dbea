"""Upgrade speed: `abmigrate upgrade` (development policy) against `alembic upgrade head`.

Generates the same Alembic project as bench/cli_latency (N linear revisions: create table /
add column / create index; default 300), then, for each database (SQLite always, PostgreSQL
when reachable), runs both tools from an empty database to head as fresh processes, the two
interleaved and each on its own fresh database every run, median of --runs runs:

    alembic -c alembic.ini upgrade head        abmigrate --alembic-ini … --url … upgrade

abmigrate's run includes everything its development policy does: migration lock, graph and
state checks, the plan with lint and preflight, one env.py run for the whole plan (plus one
env.py run that checks env.py reaches the named database), verification and the journal.

Run:  .venv/bin/python bench/upgrade_speed/run.py [--runs 5] [--revisions 300] [--no-postgres]
The goal (issue #11): abmigrate within 1.3x of plain Alembic.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli_latency"))

from run import (  # type: ignore[import-not-found]
    DEFAULT_PG_SERVER,
    Tool,
    bench_env,
    database_url,
    generate_project,
    postgres_databases,
    run_once,
    write_ini,
)

GOAL = 1.3


def _measure(
    root: Path, scripts: Path, runs: int, url_for: dict[str, object], env: dict[str, str]
) -> tuple[list[float], list[float]]:
    alembic, abmigrate = Tool.find("alembic"), Tool.find("abmigrate")
    plain: list[float] = []
    ours: list[float] = []
    for run in range(runs):
        for tool in ("alembic", "abmigrate") if run % 2 == 0 else ("abmigrate", "alembic"):
            url = url_for["fresh"](f"{tool}_{run}")  # type: ignore[operator]
            ini = write_ini(root, f"{tool}_{run}", scripts, url)
            if tool == "alembic":
                elapsed, _, _ = run_once(
                    [*alembic.argv, "-c", str(ini), "upgrade", "head"], root, env
                )
                plain.append(elapsed)
            else:
                argv = [*abmigrate.argv, "--alembic-ini", str(ini), "--url", url, "upgrade"]
                elapsed, _, _ = run_once(argv, root, env)
                ours.append(elapsed)
            url_for["done"](f"{tool}_{run}")  # type: ignore[operator]
    return plain, ours


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--revisions", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    args = parser.parse_args(argv)
    env = bench_env()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="abm-upgrade-bench-") as folder:
        root = Path(folder)
        scripts = generate_project(root, args.revisions)
        (root / "abmigrate.toml").write_text('default_env = "development"\n')

        def sqlite_fresh(name: str) -> str:
            return f"sqlite:///{root / name}.db"

        def sqlite_done(name: str) -> None:
            (root / f"{name}.db").unlink(missing_ok=True)

        plain, ours = _measure(
            root, scripts, args.runs, {"fresh": sqlite_fresh, "done": sqlite_done}, env
        )
        rows.append(("sqlite", statistics.median(plain), statistics.median(ours)))
        if not args.no_postgres:

            def pg_fresh(name: str) -> str:
                postgres_databases(args.pg_server, [f"abm_bench_{name}"], create=True)
                return database_url(args.pg_server, f"abm_bench_{name}", env)

            def pg_done(name: str) -> None:
                postgres_databases(args.pg_server, [f"abm_bench_{name}"], create=False)

            if postgres_databases(args.pg_server, [], create=False):
                plain, ours = _measure(
                    root, scripts, args.runs, {"fresh": pg_fresh, "done": pg_done}, env
                )
                rows.append(("postgresql", statistics.median(plain), statistics.median(ours)))
    print(f"upgrade of {args.revisions} revisions from an empty database, median of {args.runs}")
    print(f"{'database':<12}{'alembic upgrade head':>22}{'abmigrate upgrade':>20}{'ratio':>8}")
    worst = 0.0
    for name, plain_ms, ours_ms in rows:
        ratio = ours_ms / plain_ms
        worst = max(worst, ratio)
        print(f"{name:<12}{plain_ms / 1000:>20.2f} s{ours_ms / 1000:>18.2f} s{ratio:>7.2f}x")
    verdict = "met" if worst <= GOAL else "MISSED"
    print(f"goal: within {GOAL}x of plain Alembic: {verdict} (worst {worst:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
