"""`abmigrate report` against `abmigrate plan --sql` on the 300-revision project.

The report holds the plan with every revision's SQL and adds the status, the revision graph
(laid out by Graphviz), the journal, the backups and the HTML rendering (Jinja2, Pygments).
The goal (issue #16): the report within 2x of `plan --sql` on the same project.

The project is bench/cli_latency's (N linear revisions: create table / add column / create
index) on an empty SQLite database, so all N revisions are pending and in the plan. Each
command runs as a fresh process, median of --runs runs, the two interleaved so machine noise
hits both alike, after one warm-up run each (the analysis cache filled, as on a developer's
machine after the first `plan`).

Run:  .venv/bin/python bench/report/run.py [--runs 5] [--revisions 300] [--instructions]
      (docs/performance.md has the figures)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli_latency"))

# bench/cli_latency/run.py: the same project, the same timing
from run import (
    Tool,
    bench_env,
    count_instructions,
    generate_project,
    run_once,
    write_ini,
)

GOAL = 2.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--revisions", type=int, default=300)
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    args = parser.parse_args(argv)
    env = bench_env()
    abmigrate = Tool.find("abmigrate")
    with tempfile.TemporaryDirectory(prefix="abmigrate-bench-report-") as folder:
        root = Path(folder)
        scripts = generate_project(root, args.revisions)
        url = f"sqlite:///{root / 'bench.db'}"
        ini = write_ini(root, "alembic", scripts, url)
        common = [*abmigrate.argv, "--alembic-ini", str(ini), "--url", url]
        plan = [*common, "plan", "--sql"]
        report = [*common, "report", "-o", str(root / "report.html")]
        # warm-up: the analysis cache, the bytecode of the revision files
        run_once(plan, root, env)
        run_once(report, root, env)
        size = (root / "report.html").stat().st_size
        page = (root / "report.html").read_text()
        drawn = page.count('class="node revision')
        times: dict[str, list[float]] = {"plan": [], "report": []}
        cpus: dict[str, list[float]] = {"plan": [], "report": []}
        for _ in range(args.runs):
            for name, command in (("plan", plan), ("report", report)):
                wall, cpu, _ = run_once(command, root, env)
                times[name].append(wall)
                cpus[name].append(cpu)
        instructions = None
        if args.instructions:
            instructions = (
                count_instructions(plan, root, env),
                count_instructions(report, root, env),
            )
    plan_ms, report_ms = (statistics.median(times[name]) for name in ("plan", "report"))
    plan_cpu, report_cpu = (statistics.median(cpus[name]) for name in ("plan", "report"))
    print(
        f"{args.revisions} revisions, all pending (SQLite); median of {args.runs} runs;"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    print(f"report: {size // 1024} KB of HTML, {drawn} graph nodes drawn")
    print(f"{'':28} {'wall ms':>9} {'cpu ms':>9}")
    print(f"{'abmigrate plan --sql':28} {plan_ms:9.0f} {plan_cpu:9.0f}")
    print(f"{'abmigrate report':28} {report_ms:9.0f} {report_cpu:9.0f}")
    ratio = report_ms / plan_ms
    print(
        f"ratio report / plan --sql: {ratio:.2f}x wall, {report_cpu / plan_cpu:.2f}x cpu"
        f" (goal: within {GOAL:.0f}x) {'OK' if ratio <= GOAL else 'OVER'}"
    )
    if instructions is not None:
        plan_i, report_i = instructions
        print(
            f"instructions: plan --sql {plan_i / 1e9:.2f} G, report {report_i / 1e9:.2f} G,"
            f" ratio {report_i / plan_i:.2f}x"
        )
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
