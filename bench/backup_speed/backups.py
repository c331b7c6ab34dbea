"""`abmigrate backup` against the read-speed limit, in turns, with the machine's CPU seconds.

    python bench/backup_speed/run.py --no-options --keep      # builds abm_bench_backup, keeps it
    python bench/backup_speed/backups.py [--rounds 4] [--before OTHER/src] [--db abm_bench_backup]

Each round times `pg_dump -f /dev/null` (the limit), then `abmigrate backup` of this checkout,
then, with ``--before``, `abmigrate backup` run from another checkout's ``src`` folder (say a
git worktree of an earlier commit), each as its own process, as a user runs it. Prints the
seconds, the ratio to the round's limit, the CPU seconds the whole machine spent meanwhile
(from /proc/stat: the server included, and whatever else runs), and the load. The backups go
to a temporary folder, removed afterwards. Nothing here is a test: timings are never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from restores import busy_cpu_seconds
from run import libpq_env
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="abm_bench_backup")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--before", type=Path, help="another checkout's src folder")
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    server = make_url(args.server)
    url = server.set(database=args.db).render_as_string(hide_password=False)
    env = {**libpq_env(args.server), "PGDATABASE": args.db}
    project = Path(tempfile.mkdtemp(prefix="abm-backups-"))
    (project / "alembic.ini").write_text("[alembic]\nscript_location = .\n")
    (project / "abmigrate.toml").write_text(
        f'alembic_ini = "alembic.ini"\nbackup_dir = "backups"\ndefault_env = "bench"\n'
        f'[environments.bench]\nurl = "{url}"\n'
    )
    backup = [sys.executable, "-m", "abmigrate", "backup"]
    methods: dict[str, tuple[list[str], dict[str, str]]] = {
        "limit": (["pg_dump", "-f", os.devnull], env)
    }
    if args.before:
        methods["before"] = (backup, {**env, "PYTHONPATH": str(args.before.resolve())})
    methods["now"] = (backup, {**env, "PYTHONPATH": str(REPO / "src")})
    try:
        subprocess.run(methods["limit"][0], env=env, check=True)  # warm the cache
        print(f"{'round':>5} {'method':8} {'seconds':>8} {'vs limit':>9} {'CPU s':>7}   load")
        for number in range(1, args.rounds + 1):
            limit = 0.0
            for name, (argv, run_env) in methods.items():
                load = os.getloadavg()[0]
                started, used = time.perf_counter(), busy_cpu_seconds()
                subprocess.run(
                    argv, env=run_env, cwd=project, check=True, stdout=subprocess.DEVNULL
                )
                seconds = time.perf_counter() - started
                cpu = busy_cpu_seconds() - used
                limit = limit or seconds
                print(
                    f"{number:5} {name:8} {seconds:8.2f} {seconds / limit:8.2f}x {cpu:7.1f}"
                    f"   {load:.2f}",
                    flush=True,
                )
                shutil.rmtree(project / "backups", ignore_errors=True)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(project, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
