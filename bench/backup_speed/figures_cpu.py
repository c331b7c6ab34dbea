"""Server CPU of the per-table figures, v3 against v4, table by table.

    python bench/backup_speed/run.py --no-options --keep      # builds abm_bench_backup, keeps it
    python bench/backup_speed/figures_cpu.py [--db abm_bench_backup] [--rounds 3]

For each table, in turns, the figures query of v3 (what backups before v4 recorded, "c:") and
of v4 ("h:"), as `backup` runs them, on one connection with parallel workers off, so that the
whole query runs in that connection's backend: prints the backend's CPU seconds (user +
system, from /proc/<pid>/stat: the server must run on this machine), the fewest of the
rounds. CPU time, unlike wall time, hardly moves with other work on the machine. Nothing here
is a test: timings are never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from abmigrate.backup import postgres  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="abm_bench_backup")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    engine = sa.create_engine(sa.engine.make_url(args.server).set(database=args.db))
    try:
        with engine.connect() as connection:
            for statement in postgres._STABLE_TEXT:
                connection.exec_driver_sql(statement)
            connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
            pid = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)
            tables: dict[str, list[Any]] = {}
            for schema, table, column, type_oid, not_null in connection.exec_driver_sql(
                postgres._USER_TABLES
            ).all():
                columns = tables.setdefault(
                    f"{postgres._quote(schema)}.{postgres._quote(table)}", []
                )
                if column is not None:
                    columns.append((str(column), int(type_oid), bool(not_null)))
            totals = {"v3": 0.0, "v4": 0.0}
            print(f"{'table':32} {'v3 CPU s':>9} {'v4 CPU s':>9} {'v4/v3':>6}")
            for table, columns in tables.items():
                methods = {
                    "v3": ("c:", postgres._row_expression(columns)),
                    "v4": ("h:", postgres._chain_expression(columns)),
                }
                best = {name: float("inf") for name in methods}
                for _ in range(args.rounds):
                    for name, (method, row) in methods.items():
                        before = cpu_seconds(pid)
                        postgres._one_table(connection, table, method, row)
                        best[name] = min(best[name], cpu_seconds(pid) - before)
                for name in totals:
                    totals[name] += best[name]
                ratio = best["v4"] / best["v3"] if best["v3"] else float("nan")
                print(f"{table:32} {best['v3']:9.2f} {best['v4']:9.2f} {ratio:6.2f}")
            ratio = totals["v4"] / totals["v3"] if totals["v3"] else float("nan")
            print(f"{'all tables':32} {totals['v3']:9.2f} {totals['v4']:9.2f} {ratio:6.2f}")
            connection.rollback()
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
