"""Upgrade speed: `abmigrate upgrade` (development policy) against `alembic upgrade head`.

Generates the same Alembic project as bench/cli_latency (N linear revisions: create table /
add column / create index; default 300), then, for each database (SQLite always, PostgreSQL
when reachable), runs both tools from an empty database to head as fresh processes, the two
interleaved and each on its own fresh database every run, median of --runs runs:

    alembic -c alembic.ini upgrade head        abmigrate --alembic-ini … --url … upgrade

abmigrate's run includes everything its development policy does: migration lock, graph and
state checks, the plan with lint and preflight, one env.py run for the whole plan (plus one
env.py run that checks env.py reaches the named database), verification and the journal.

Every abmigrate run after the first finds the per-revision analysis of the earlier ones in
the project's cache (.abmigrate/analysis: lint, offline SQL, lock needs), as a developer's
second upgrade would; --cold empties that cache before every abmigrate run instead (a first
run after a checkout or an edit of env.py). Wall and CPU time (user + system of the
process) are both shown: on a busy machine the CPU ratio is the steadier one.

Run:  .venv/bin/python bench/upgrade_speed/run.py [--runs 5] [--revisions 300] [--no-postgres]
      [--cold]
The goal (issue #11): abmigrate within 1.3x of plain Alembic.
"""

from __future__ import annotations

import argparse
import shutil
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
    root: Path,
    scripts: Path,
    runs: int,
    url_for: dict[str, object],
    env: dict[str, str],
    cold: bool,
) -> dict[str, list[float]]:
    alembic, abmigrate = Tool.find("alembic"), Tool.find("abmigrate")
    times: dict[str, list[float]] = {"alembic": [], "abmigrate": [], "alembic cpu": []}
    times["abmigrate cpu"] = []
    # run -1: each tool once, untimed (bytecode, the OS's file cache and, for abmigrate,
    # its analysis cache as a developer's earlier runs leave them)
    for run in range(-1, runs):
        for tool in ("alembic", "abmigrate") if run % 2 == 0 else ("abmigrate", "alembic"):
            url = url_for["fresh"](f"{tool}_{run + 1}")  # type: ignore[operator]
            ini = write_ini(root, f"{tool}_{run + 1}", scripts, url)
            if tool == "alembic":
                argv = [*alembic.argv, "-c", str(ini), "upgrade", "head"]
            else:
                if cold:
                    shutil.rmtree(root / ".abmigrate" / "analysis", ignore_errors=True)
                argv = [*abmigrate.argv, "--alembic-ini", str(ini), "--url", url, "upgrade"]
            elapsed, cpu, _ = run_once(argv, root, env)
            if run >= 0:
                times[tool].append(elapsed)
                times[f"{tool} cpu"].append(cpu)
            url_for["done"](f"{tool}_{run + 1}")  # type: ignore[operator]
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--revisions", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    parser.add_argument(
        "--cold", action="store_true", help="empty abmigrate's analysis cache before each run"
    )
    args = parser.parse_args(argv)
    env = bench_env()
    env.pop("ABMIGRATE_CACHE_DIR", None)
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="abm-upgrade-bench-") as folder:
        root = Path(folder)
        scripts = generate_project(root, args.revisions)
        (root / "abmigrate.toml").write_text('default_env = "development"\n')

        def sqlite_fresh(name: str) -> str:
            return f"sqlite:///{root / name}.db"

        def sqlite_done(name: str) -> None:
            (root / f"{name}.db").unlink(missing_ok=True)

        def medians(times: dict[str, list[float]]) -> dict[str, float]:
            return {key: statistics.median(values) for key, values in times.items()}

        times = _measure(
            root,
            scripts,
            args.runs,
            {"fresh": sqlite_fresh, "done": sqlite_done},
            env,
            args.cold,
        )
        rows.append(("sqlite", medians(times)))
        if not args.no_postgres:

            def pg_fresh(name: str) -> str:
                postgres_databases(args.pg_server, [f"abm_bench_{name}"], create=True)
                return database_url(args.pg_server, f"abm_bench_{name}", env)

            def pg_done(name: str) -> None:
                postgres_databases(args.pg_server, [f"abm_bench_{name}"], create=False)

            if postgres_databases(args.pg_server, [], create=False):
                times = _measure(
                    root, scripts, args.runs, {"fresh": pg_fresh, "done": pg_done}, env, args.cold
                )
                rows.append(("postgresql", medians(times)))
    cache = "emptied before every abmigrate run" if args.cold else "kept between runs"
    print(
        f"upgrade of {args.revisions} revisions from an empty database, median of {args.runs}"
        f" (analysis cache {cache})"
    )
    print(
        f"{'database':<12}{'alembic upgrade head':>22}{'abmigrate upgrade':>20}{'ratio':>8}"
        f"{'cpu: alembic':>15}{'abmigrate':>11}{'ratio':>8}"
    )
    worst = 0.0
    for name, m in rows:
        ratio = m["abmigrate"] / m["alembic"]
        cpu_ratio = m["abmigrate cpu"] / m["alembic cpu"]
        worst = max(worst, ratio)
        print(
            f"{name:<12}{m['alembic'] / 1000:>20.2f} s{m['abmigrate'] / 1000:>18.2f} s"
            f"{ratio:>7.2f}x{m['alembic cpu'] / 1000:>13.2f} s{m['abmigrate cpu'] / 1000:>9.2f} s"
            f"{cpu_ratio:>7.2f}x"
        )
    verdict = "met" if worst <= GOAL else "MISSED"
    print(f"goal: within {GOAL}x of plain Alembic (wall): {verdict} (worst {worst:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
