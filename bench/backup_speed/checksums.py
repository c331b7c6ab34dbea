"""Per-table checksum speed on PostgreSQL: the v2 method, the row's text, v3 and v4 (abmigrate's).

    python bench/backup_speed/checksums.py [--rows 1000000] [--repeat 7]
                                           [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
                                           [--keep]

Creates a database with one orders table (bigint ids, int quantity, an enum status, text
note, numeric price, timestamptz; --rows rows), then times, --repeat times each in turn
(one pass over the table each, count included):

- count(*)                                        the scan alone
- v2: sum(hash_record_extended(row, 0))           the old figure (hashes enums by OID)
- text: sum(hashtextextended(row::text, 0))       the row's text form
- v3: the figure older backups recorded (PostgresBackend.table_stats given a "c:" figure)
- v4: abmigrate's figure (PostgresBackend.table_stats, catalog query included)

Prints the median and the fastest run of each, and checks that v3 and v4 give the same figure
on every run. Nothing here is a test: timings are never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from abmigrate.backup.postgres import PostgresBackend  # noqa: E402

DB = "abm_bench_checksums"
GENERATE = """
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, part_id bigint NOT NULL,
  quantity int NOT NULL, status order_status NOT NULL, note text, price numeric(10,2),
  ordered_at timestamptz NOT NULL);
INSERT INTO orders (customer_id, part_id, quantity, status, note, price, ordered_at)
  SELECT 1 + g % 960000, 1 + g % 480000, 1 + g % 9,
         (ARRAY['new','paid','shipped','cancelled'])[1 + g % 4]::order_status,
         CASE WHEN g % 3 = 0 THEN 'deliver to gate ' || (g % 40) || ', ' || md5(g::text) END,
         (g % 5000) / 3.0, now() - (g || ' seconds')::interval
  FROM generate_series(1, {rows}) g;
VACUUM ANALYZE orders;
"""
STABLE = (
    "SET DateStyle = 'ISO, YMD'",
    "SET TimeZone = 'UTC'",
    "SET extra_float_digits = 1",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()

    server = make_url(args.server)
    url = server.set(database=DB).render_as_string(hide_password=False)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        connection.execute(sa.text(f"CREATE DATABASE {DB}"))
    engine = sa.create_engine(url)
    try:
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for statement in GENERATE.format(rows=args.rows).split(";\n"):
                if statement.strip():
                    connection.execute(sa.text(statement))
        with engine.connect() as connection:
            size = connection.exec_driver_sql(
                "SELECT pg_size_pretty(pg_table_size('orders'))"
            ).scalar()
        print(
            f"orders: {args.rows} rows, {size}, generated in {time.perf_counter() - started:.1f}s"
        )

        def query(sql: str) -> Callable[[], str]:
            def run() -> str:
                with engine.connect() as connection:
                    for statement in STABLE:
                        connection.exec_driver_sql(statement)
                    return str(connection.exec_driver_sql(sql).one())

            return run

        backend = PostgresBackend()
        methods: dict[str, Callable[[], str]] = {
            "count(*)": query("SELECT count(*) FROM orders"),
            "v2: sum(hash_record_extended(row,0))": query(
                "SELECT count(*), sum(hash_record_extended(o, 0)) FROM orders o"
            ),
            "text: sum(hashtextextended(row::text,0))": query(
                "SELECT count(*), sum(hashtextextended(o::text, 0)) FROM orders o"
            ),
            "v3: table_stats of a c: figure": lambda: str(
                backend.table_stats(url, {"public.orders": "c:"})["public.orders"]
            ),
            "v4: abmigrate (table_stats)": lambda: str(backend.table_stats(url)["public.orders"]),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        results: dict[str, set[str]] = {name: set() for name in methods}
        for _ in range(args.repeat):
            for name, method in methods.items():
                started = time.perf_counter()
                results[name].add(method())
                times[name].append(time.perf_counter() - started)
        base = statistics.median(times["v2: sum(hash_record_extended(row,0))"])
        print(f"\n{'method':44}{'median':>9}{'fastest':>9}{'vs v2':>8}")
        for name, taken in times.items():
            median = statistics.median(taken)
            print(f"{name:44}{median:8.3f}s{min(taken):8.3f}s{median / base:7.2f}x")
        stable = all(
            len(results[name]) == 1
            for name in ("v3: table_stats of a c: figure", "v4: abmigrate (table_stats)")
        )
        print(f"\nv3 and v4 figures identical on every run: {'yes' if stable else 'NO'}")
        return 0 if stable else 1
    finally:
        engine.dispose()
        if not args.keep:
            with admin.connect() as connection:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
