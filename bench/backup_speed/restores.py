"""The restores side by side, in turns: the guide's, abmigrate's before, abmigrate's now.

    python bench/backup_speed/run.py --no-options --keep      # builds abm_bench_backup, keeps it
    python bench/backup_speed/restores.py [--rounds 3] [--db abm_bench_backup]

On a shared machine whose load swings, one timing of each method says little: this takes the
guide's file (`pg_dump | gzip`) and an abmigrate backup of the same database once, then
restores each into a fresh empty database, the three methods one after the other, for
``--rounds`` rounds, and prints every time, the load, each round's ratio to the guide, and the
CPU seconds the whole machine spent meanwhile (from /proc/stat: the server's processes
included, and whatever else runs — meaningful when little else does; 2 cores give at most
2 CPU seconds per second):

- guide:  `gunzip -c f.sql.gz | psql` (one connection, indexes built one after the other)
- before: the archive decompressed beside the backup, then `pg_restore -j N` (one COPY per
          table; what `abmigrate restore` did before issue #14 item 3's restore work)
- now:    `PostgresBackend.restore` (the rows by N concurrent COPYs straight from the zstd
          files, then `pg_restore -j N --section=post-data`)

Nothing here is a test: timings are never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from run import libpq_env  # noqa: E402  (run.py, next to this file)

from abmigrate.backup import postgres  # noqa: E402
from abmigrate.backup.base import choose_compressor, dump_jobs  # noqa: E402
from abmigrate.backup.directory import decompressed_copy  # noqa: E402


def busy_cpu_seconds() -> float:
    """CPU time the machine has spent busy (not idle, not waiting for I/O) since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="abm_bench_backup")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    server = make_url(args.server)
    env = libpq_env(args.server)
    target = f"abm_bench_restores_{os.getpid()}"
    compressor = choose_compressor()
    jobs = dump_jobs()
    work = Path(tempfile.mkdtemp(prefix="abm-restores-"))

    def psql(sql: str) -> None:
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql],
            env=env,
            check=True,
            capture_output=True,
        )

    def fresh() -> str:
        psql(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")
        psql(f"CREATE DATABASE {target}")
        psql("CHECKPOINT")  # each method starts without the previous one's dirty pages
        return server.set(database=target).render_as_string(hide_password=False)

    try:
        subprocess.run(
            ["bash", "-o", "pipefail", "-c", f"pg_dump -d {args.db} | gzip > {work}/f.sql.gz"],
            env=env,
            check=True,
        )
        folder = work / "backup"
        folder.mkdir(mode=0o700)
        source = server.set(database=args.db).render_as_string(hide_password=False)
        outcome = postgres.PostgresBackend().dump(source, folder, compressor)
        names = [name.split("/", 1)[1] for name in outcome.files]

        def guide() -> None:
            fresh()
            subprocess.run(
                [
                    "bash",
                    "-o",
                    "pipefail",
                    "-c",
                    f"gunzip -c {work}/f.sql.gz | psql -X -q -v ON_ERROR_STOP=1 -d {target}"
                    " > /dev/null",
                ],
                env=env,
                check=True,
            )

        def before() -> None:
            fresh()
            with decompressed_copy(
                folder / postgres.ARCHIVE_DIR, names, compressor, work, jobs
            ) as copy:
                assert copy is not None
                subprocess.run(
                    ["pg_restore", "--exit-on-error", f"--jobs={jobs}", "-d", target, str(copy)],
                    env=env,
                    check=True,
                )

        def now() -> None:
            postgres.PostgresBackend().restore(folder, outcome.files, compressor, fresh())

        methods = {"guide": guide, "before": before, "now": now}
        times: dict[str, list[float]] = {name: [] for name in methods}
        print(f"{'round':>5} {'method':8} {'seconds':>8} {'vs guide':>9} {'CPU s':>7}   load")
        for number in range(1, args.rounds + 1):
            for name, method in methods.items():
                load = os.getloadavg()[0]
                started, used = time.perf_counter(), busy_cpu_seconds()
                method()
                seconds = time.perf_counter() - started
                cpu = busy_cpu_seconds() - used
                times[name].append(seconds)
                print(
                    f"{number:5} {name:8} {seconds:8.2f} {times['guide'][-1] / seconds:8.2f}x"
                    f" {cpu:7.1f}   {load:.2f}",
                    flush=True,
                )
        print("\nmedian of the rounds:")
        median = {name: statistics.median(values) for name, values in times.items()}
        for name in methods:
            print(f"  {name:8} {median[name]:8.2f} s  {median['guide'] / median[name]:5.2f}x")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        psql(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
