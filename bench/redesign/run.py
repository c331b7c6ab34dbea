"""The redesign (issue #13) costs nothing: abmigrate before and after it, side by side.

The same commands the other benchmarks time (bench/upgrade_speed, bench/cli_latency,
bench/lint, bench/diagnose, bench/check_speed) run on one generated project of N linear
revisions (default 300; bench/cli_latency's generator) with two checkouts of abmigrate: a
commit from before the redesign (default d78e1f7, the last commit on main before the layout
moved into sub-packages) in a temporary git worktree, and this working tree. Both run in this
interpreter's environment (same Alembic, SQLAlchemy, Python), each put first on PYTHONPATH.

What is compared is the number of instructions each command executes under valgrind
(callgrind): the same on a busy machine as on an idle one, which wall-clock time is not
(this machine is shared). Each command runs once per checkout on a fresh copy of the same
database; the goal is "after" within 5 % of "before".

Run:  .venv/bin/python bench/redesign/run.py [--before d78e1f7] [--revisions 300]
      [--only TEXT]        (docs/performance.md has the figures)
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

GOAL = 1.05
ROOT = Path(__file__).resolve().parents[2]


def _cli_latency() -> object:
    """bench/cli_latency/run.py as a module: its project generator and environment."""
    spec = importlib.util.spec_from_file_location("cli_latency", ROOT / "bench/cli_latency/run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cli_latency"] = module
    spec.loader.exec_module(module)
    return module


def instructions(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"==\d+== Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"valgrind failed on {' '.join(argv)}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def fresh_database(database: Path, copy_of: Path | None) -> None:
    """An empty database, or a copy of ``copy_of``."""
    database.unlink(missing_ok=True)
    if copy_of is not None:
        shutil.copy(copy_of, database)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="d78e1f7", help="commit before the redesign")
    parser.add_argument("--revisions", type=int, default=300)
    parser.add_argument("--only", help="run only the commands whose label contains TEXT")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    latency = _cli_latency()
    work = Path(tempfile.mkdtemp(prefix="abmigrate-redesign-"))
    old = work / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(old), args.before],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        scripts = latency.generate_project(work, args.revisions)  # type: ignore[attr-defined]
        env = latency.bench_env()  # type: ignore[attr-defined]
        env.pop("PYTHONPATH", None)
        checkouts = {"before": old / "src", "after": ROOT / "src"}
        head_db = work / "head.db"
        ini = latency.write_ini(work, "project", scripts, f"sqlite:///{head_db}")  # type: ignore[attr-defined]
        base = [sys.executable, "-m", "abmigrate", "--alembic-ini", str(ini)]
        # A database at head, made once with plain Alembic, copied for every run.
        subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
        )
        commands: list[tuple[str, list[str], bool]] = [
            # (label, arguments, start from the database at head?)
            ("upgrade (empty → head)", ["upgrade"], False),
            ("status", ["status"], True),
            ("heads", ["heads"], True),
            ("history", ["history"], True),
            ("plan --sql", ["plan", "--sql"], False),
            ("lint", ["lint"], True),
            ("diagnose", ["diagnose"], True),
        ]
        print(
            f"abmigrate before ({args.before}) and after the redesign, {args.revisions}"
            " revisions, SQLite; instructions (callgrind), one run each"
        )
        print(f"{'command':<26}{'before':>16}{'after':>16}{'after/before':>14}")
        worst = 0.0
        for label, command, at_head in commands:
            if args.only and args.only not in label:
                continue
            counts = {}
            for name, src in checkouts.items():
                database = work / f"{name}.db"
                run_env = {**env, "PYTHONPATH": str(src)}
                argv = [*base, "--url", f"sqlite:///{database}", *command]

                # A first run compiles the bytecode (abmigrate's and the revisions'), as a
                # user's installed copy has it; the second is counted.
                fresh_database(database, head_db if at_head else None)
                subprocess.run(argv, cwd=work, env=run_env, capture_output=True, check=False)
                fresh_database(database, head_db if at_head else None)
                counts[name] = instructions(argv, work, run_env)
            ratio = counts["after"] / counts["before"]
            worst = max(worst, ratio)
            print(f"{label:<26}{counts['before']:>16,}{counts['after']:>16,}{ratio:>13.3f}x")
        verdict = "met" if worst <= GOAL else "missed"
        print(f"goal: every command within {GOAL:.2f}x of before — {verdict} (worst {worst:.3f}x)")
        return 0 if worst <= GOAL else 1
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True
        )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
