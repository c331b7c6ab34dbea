"""A fleet of tenant databases: `abmigrate fleet upgrade` vs a serial shell loop of Alembic.

    python bench/fleet/run.py [--targets 200] [--concurrency 8]
                              [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Creates N empty PostgreSQL databases and migrates them to the head of the ABParts history
(examples/abparts, 10 revisions), twice in one run:

- the baseline: `for url in …; do DATABASE_URL=$url alembic upgrade head; done`, what teams
  write today (one Alembic process per tenant, one after the other);
- abmigrate: `abmigrate fleet upgrade --targets FILE --concurrency C` on a fresh set of N
  databases: every target through the full pipeline (lock, state checks, plan, lint and
  preflight, journal, apply, verification), C at a time in one process.

Prints both wall times and their ratio, then where a target's time goes in the fleet run
(from the fleet report and each target's journal): the revisions' own time, the guards before
the journal's row (lock, env.py probe, checks, plan, analysis) and after (journal writes,
verification). The databases are dropped at the end. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ALEMBIC_INI = REPO / "examples" / "abparts" / "alembic.ini"
PREFIX = "abm_bench_fleet"


def in_parallel(work: Callable[[str], None], items: list[str], threads: int = 8) -> None:
    pending = list(items)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                item = pending.pop()
            work(item)

    running = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()


class Server:
    def __init__(self, url: str) -> None:
        self.url = make_url(url)

    def admin(self, statement: str) -> None:
        with psycopg.connect(
            host=self.url.host,
            port=self.url.port,
            user=self.url.username,
            password=self.url.password,
            dbname=self.url.database or "postgres",
            autocommit=True,
        ) as connection:
            connection.execute(statement)

    def create(self, names: list[str]) -> list[str]:
        in_parallel(
            lambda name: self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'), names
        )
        in_parallel(lambda name: self.admin(f'CREATE DATABASE "{name}"'), names)
        return [self.url.set(database=name).render_as_string(hide_password=False) for name in names]

    def drop(self, names: list[str]) -> None:
        in_parallel(
            lambda name: self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'), names
        )

    def journal(self, url: str) -> dict[str, Any]:
        target = make_url(url)
        with psycopg.connect(
            host=target.host, port=target.port, user=target.username, dbname=target.database
        ) as connection:
            row = connection.execute(
                "SELECT record FROM abmigrate_journal ORDER BY 1 DESC LIMIT 1"
            ).fetchone()
        assert row is not None, url
        record: dict[str, Any] = json.loads(row[0])
        return record


def seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    options = parser.parse_args()
    server = Server(options.server)
    bin_dir = Path(sys.executable).parent
    alembic, abmigrate = shutil.which("alembic", path=str(bin_dir)), bin_dir / "abmigrate"
    assert alembic is not None, "alembic is not installed next to this interpreter"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env.update({"NO_COLOR": "1", "COLUMNS": "80"})
    count = options.targets
    names = [f"{PREFIX}_{n:04d}" for n in range(count)]
    with tempfile.TemporaryDirectory(prefix="abm-fleet-bench-") as folder:
        work = Path(folder)
        try:
            # -- the baseline: a serial shell loop of `alembic upgrade head` ------------------
            urls = server.create(names)
            (work / "urls.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
            loop = (
                f'while read -r url; do DATABASE_URL="$url" "{alembic}" -c "{ALEMBIC_INI}"'
                " upgrade head >/dev/null 2>&1 || exit 1; done < urls.txt"
            )
            started = time.perf_counter()
            subprocess.run(["bash", "-c", loop], cwd=work, env=env, check=True)
            baseline = time.perf_counter() - started
            print(f"serial alembic loop: {baseline:.1f} s for {count} targets", flush=True)

            # -- abmigrate fleet upgrade, on fresh databases -------------------------------
            urls = server.create(names)
            targets = work / "targets.txt"
            targets.write_text(
                "".join(f"t{n:04d}={url}\n" for n, url in enumerate(urls)), encoding="utf-8"
            )
            command = [
                str(abmigrate),
                "--alembic-ini",
                str(ALEMBIC_INI),
                "fleet",
                "upgrade",
                "--targets",
                str(targets),
                "--concurrency",
                str(options.concurrency),
                "--format",
                "json",
            ]
            started = time.perf_counter()
            done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
            fleet_wall = time.perf_counter() - started
            if done.returncode != 0:
                failed = [
                    t for t in json.loads(done.stdout or "{}").get("targets", []) if t["error"]
                ]
                sys.exit(f"fleet upgrade failed ({done.returncode}): {failed[:3]}")
            report = json.loads(done.stdout)
            assert report["counts"]["succeeded"] == count, report["counts"]

            # -- where a target's time goes ------------------------------------------------
            revisions, before_journal, after_steps, totals = [], [], [], []
            durations = {t["name"]: t["duration_s"] for t in report["targets"]}
            for n, url in enumerate(urls):
                record = server.journal(url)
                own = sum(step["elapsed_s"] for step in record["applied"])
                span = seconds(record["started_at"], record["finished_at"])
                total = durations[f"t{n:04d}"]
                revisions.append(own)
                totals.append(total)
                after_steps.append(max(span - own, 0.0))
                before_journal.append(max(total - span, 0.0))
                if os.environ.get("BENCH_FLEET_DEBUG"):
                    print(f"t{n:04d} total {total} span {span} own {own}")
        finally:
            server.drop(names)
    load = os.getloadavg()
    print(f"{count} PostgreSQL databases, ABParts history (10 revisions) to head")
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
    print(
        f"  serial `alembic upgrade head` loop   {baseline:8.1f} s   {baseline / count:.3f} s/target"
    )
    print(
        f"  abmigrate fleet upgrade -c {options.concurrency:<2}        {fleet_wall:8.1f} s"
        f"   {fleet_wall / count:.3f} s/target"
    )
    print(f"  ratio (alembic loop / fleet)          {baseline / fleet_wall:8.2f}x")

    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} s"

    print(f"per target in the fleet run (median of {count}, wall time inside its thread):")
    print(f"  whole target                          {median(totals)}")
    print(f"  the revisions themselves              {median(revisions)}")
    print(
        f"  guards before the journal's row       {median(before_journal)}"
        "  (lock, env.py probe, checks, plan, analysis)"
    )
    print(
        f"  guards after the first step           {median(after_steps)}"
        "  (journal writes, verification)"
    )
    overhead = statistics.median([t - r for t, r in zip(totals, revisions, strict=True)])
    print(
        f"  overhead of the guards                {overhead:.3f} s"
        f"  ({overhead / statistics.median(revisions):.1f}x the revisions' own time)"
    )


if __name__ == "__main__":
    main()
