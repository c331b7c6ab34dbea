"""Backup and restore speed: abmigrate vs the guide's `pg_dump > f.sql && gzip f.sql`.

    python bench/backup_speed/run.py [--scale 1.6] [--server postgresql://postgres@127.0.0.1:5432/postgres]
                                     [--no-options] [--keep]

Generates a PostgreSQL database (several tables, indexes, realistic text and numeric data;
about 620 MB per unit of --scale), then times in one run:

- `pg_dump > /dev/null`                       the read-speed limit
- the guide: `pg_dump > f.sql && gzip f.sql`  and its restore `gunzip -c f.sql.gz | psql`
- `pg_dump -Fc > f.dump`                      and `pg_restore -d`
- `abmigrate backup`                          and `abmigrate restore --target-url` (empty target:
                                              concurrent COPYs, then pg_restore -j for indexes)
- `abmigrate verify-backup --restore-test`    (restore into a scratch database + compare)
- with the options table on: the pg_dump 15 / compressor combinations considered.

Prints seconds, sizes and ratios against the guide's method and the read-speed limit, the
machine's load average before and after, and the issue #14 goals met or not.
Nothing here is a test: timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

DB = "abm_bench_backup"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

GENERATE = """
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, email text NOT NULL,
  city text, created_at timestamptz NOT NULL, balance numeric(12,2));
CREATE TABLE parts (id bigserial PRIMARY KEY, sku text NOT NULL, description text NOT NULL,
  price numeric(10,2), weight_kg double precision, stock int);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, part_id bigint NOT NULL,
  quantity int NOT NULL, status text NOT NULL, note text, ordered_at timestamptz NOT NULL);
INSERT INTO customers (name, email, city, created_at, balance)
  SELECT 'Customer ' || g || ' ' || md5(g::text), 'user' || g || '@example.com',
         (ARRAY['Oslo','Nairobi','Lima','Hanoi','Turin'])[1 + g % 5],
         now() - (g || ' minutes')::interval, (g % 100000) / 7.0
  FROM generate_series(1, {customers}) g;
INSERT INTO parts (sku, description, price, weight_kg, stock)
  SELECT 'SKU-' || lpad(g::text, 8, '0'),
         'Part ' || g || ': ' || repeat(md5((g * 7)::text) || ' fits model ' || (g % 97) || ' ', 3),
         (g % 5000) / 3.0, random() * 50, g % 1000
  FROM generate_series(1, {parts}) g;
INSERT INTO orders (customer_id, part_id, quantity, status, note, ordered_at)
  SELECT 1 + g % {customers}, 1 + g % {parts}, 1 + g % 9,
         (ARRAY['new','paid','shipped','cancelled'])[1 + g % 4],
         CASE WHEN g % 3 = 0 THEN 'deliver to gate ' || (g % 40) || ', ' || md5(g::text) END,
         now() - (g || ' seconds')::interval
  FROM generate_series(1, {orders}) g;
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON orders (ordered_at);
CREATE INDEX ON customers (email);
VACUUM ANALYZE;
"""


def libpq_env(server_url: str) -> dict[str, str]:
    """This process's environment with the server's address and user for libpq's tools (the
    password in PGPASSWORD, never on a command line)."""
    server = make_url(server_url)
    env = dict(os.environ)
    env.update(
        PGHOST=server.host or "127.0.0.1",
        PGPORT=str(server.port or 5432),
        PGUSER=server.username or "postgres",
    )
    if server.password:
        env["PGPASSWORD"] = str(server.password)
    return env


def sh(command: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, check=True)
    return time.perf_counter() - started


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def mib(size: int) -> str:
    return f"{size / (1 << 20):8.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.6, help="~620 MB of database per unit")
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-options", action="store_true", help="skip the options table")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()

    server = make_url(args.server)
    env = libpq_env(args.server)
    db_env = {**env, "PGDATABASE": DB}
    bench_url = server.set(database=DB).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="abm-bench-backup-"))
    restored: list[str] = []

    def psql(sql: str, database: str = "postgres") -> str:
        return subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def fresh(name: str) -> str:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        psql(f"CREATE DATABASE {name}")
        restored.append(name)
        return name

    try:
        print(f"generating {DB} (scale {args.scale}) ...", flush=True)
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        psql(f"CREATE DATABASE {DB}")
        sql = GENERATE.format(
            customers=int(600_000 * args.scale),
            parts=int(300_000 * args.scale),
            orders=int(3_000_000 * args.scale),
        )
        started = time.perf_counter()
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", DB],
            input=sql,
            text=True,
            env=env,
            check=True,
        )
        db_size = int(psql(f"SELECT pg_database_size('{DB}')"))
        print(f"database: {mib(db_size)} ({time.perf_counter() - started:.1f}s to generate)")
        print(
            f"pg_dump: {subprocess.run(['pg_dump', '--version'], capture_output=True, text=True).stdout.strip()}"
        )
        print(f"server:  {psql('SHOW server_version')}; cores: {os.cpu_count()}\n", flush=True)

        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        sh("pg_dump > /dev/null", db_env)  # warm the cache so every method reads from memory
        rows: list[tuple[str, float, int | None]] = []
        limit = sh("pg_dump > /dev/null", db_env)
        rows.append(("pg_dump > /dev/null (read-speed limit)", limit, None))

        dump_s = sh(f"pg_dump > {work}/f.sql", db_env)
        gzip_s = sh(f"gzip {work}/f.sql", db_env)
        guide = dump_s + gzip_s
        rows.append(
            (
                f"guide: pg_dump > f.sql ({dump_s:.1f}s) && gzip ({gzip_s:.1f}s)",
                guide,
                size_of(work / "f.sql.gz"),
            )
        )
        custom = sh(f"pg_dump -Fc > {work}/f.dump", db_env)
        rows.append(("pg_dump -Fc > f.dump", custom, size_of(work / "f.dump")))

        project = work / "project"
        project.mkdir()
        (project / "alembic.ini").write_text("[alembic]\nscript_location = .\n")
        (project / "abmigrate.toml").write_text(
            f'alembic_ini = "alembic.ini"\nbackup_dir = "backups"\ndefault_env = "bench"\n'
            f'[environments.bench]\nurl = "{bench_url}"\n'
        )
        abm = [sys.executable, "-m", "abmigrate"]
        started = time.perf_counter()
        made = subprocess.run(
            [*abm, "backup", "--format", "json"], cwd=project, capture_output=True, text=True
        )
        ours = time.perf_counter() - started
        if made.returncode != 0:
            print(made.stderr, file=sys.stderr)
            return 1
        record = json.loads(made.stdout)
        rows.append(
            ("abmigrate backup (dump + checksums + tests as written)", ours, int(record["size"]))
        )

        print(f"{'backup':58} {'seconds':>8} {'size':>12} {'vs guide':>9} {'vs limit':>9}")
        for name, seconds, size in rows:
            print(
                f"{name:58} {seconds:8.2f} {mib(size) if size else '':>12}"
                f" {guide / seconds:8.2f}x {seconds / limit:8.2f}x"
            )

        print(f"\n{'restore':58} {'seconds':>8} {'vs guide':>9}")
        guide_target = fresh("abm_bench_r_guide")
        guide_restore = sh(
            f"gunzip -c {work}/f.sql.gz | psql -X -q -v ON_ERROR_STOP=1 -d {guide_target}"
            " > /dev/null",
            env,
        )
        custom_target = fresh("abm_bench_r_custom")
        custom_restore = sh(f"pg_restore -d {custom_target} {work}/f.dump", env)
        ours_target = fresh("abm_bench_r_abm")
        target_url = server.set(database=ours_target).render_as_string(hide_password=False)
        started = time.perf_counter()
        subprocess.run(
            [*abm, "restore", record["id"], "--target-url", target_url],
            cwd=project,
            check=True,
            capture_output=True,
        )
        ours_restore = time.perf_counter() - started
        started = time.perf_counter()
        verified = subprocess.run(
            [*abm, "verify-backup", record["id"], "--restore-test"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        verify_s = time.perf_counter() - started
        for name, seconds in (
            ("guide: gunzip -c f.sql.gz | psql", guide_restore),
            ("pg_restore -d (from pg_dump -Fc)", custom_restore),
            ("abmigrate restore --target-url (empty database)", ours_restore),
            ("abmigrate verify-backup --restore-test (restore+compare)", verify_s),
        ):
            print(f"{name:58} {seconds:8.2f} {guide_restore / seconds:8.2f}x")
        print("restore test:", "passed" if verified.returncode == 0 else verified.stderr.strip())

        guide_size = size_of(work / "f.sql.gz")
        ours_size = int(record["size"])
        print("\nissue #14 goals (this run):")
        for goal, met in (
            (f"backup <= 1.1x pg_dump > /dev/null: {ours / limit:.2f}x", ours <= 1.1 * limit),
            (f"backup >= 3.5x faster than the guide: {guide / ours:.2f}x", guide >= 3.5 * ours),
            (
                f"backup no larger than the guide's file: {mib(ours_size).strip()}"
                f" vs {mib(guide_size).strip()}",
                ours_size <= guide_size,
            ),
            (
                f"restore >= 2x faster than gunzip | psql: {guide_restore / ours_restore:.2f}x",
                guide_restore >= 2 * ours_restore,
            ),
        ):
            print(f"  {'met    ' if met else 'NOT met'}  {goal}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        if not args.no_options:
            print(
                f"\n{'pg_dump 15 option (dump only)':58} {'seconds':>8} {'size':>12} {'vs limit':>9}"
            )
            options = [
                (
                    "-Fc -Z0 | zstd -T0 -1   (abmigrate's format before -Fd)",
                    f"pg_dump -Fc -Z0 | zstd -q -T0 -1 > {work}/o1",
                ),
                ("-Fc -Z0 | zstd -T0 -3", f"pg_dump -Fc -Z0 | zstd -q -T0 -3 > {work}/o2"),
                ("-Fc -Z0 | lz4 -1", f"pg_dump -Fc -Z0 | lz4 -q -1 > {work}/o3"),
                ("plain | zstd -T0 -1", f"pg_dump | zstd -q -T0 -1 > {work}/o4"),
                ("-Fc -Z1 (gzip level 1, inside pg_dump)", f"pg_dump -Fc -Z1 > {work}/o5"),
                ("-Fd -j2 -Z1 (directory, 2 jobs)", f"pg_dump -Fd -j2 -Z1 -f {work}/o6"),
                (
                    "-Fd -j2 -Z0 (directory, plain files: no compression)",
                    f"pg_dump -Fd -j2 -Z0 -f {work}/o7",
                ),
            ]
            for number, (name, command) in enumerate(options, 1):
                if shutil.which(command.split("|")[-1].split()[0]) is None:
                    continue
                seconds = sh(command, db_env)
                print(
                    f"{name:58} {seconds:8.2f} {mib(size_of(work / f'o{number}')):>12}"
                    f" {seconds / limit:8.2f}x"
                )
    finally:
        for name in restored:
            subprocess.run(
                ["psql", "-X", "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                env=env,
                check=False,
                capture_output=True,
            )
        if not args.keep:
            subprocess.run(
                ["psql", "-X", "-q", "-c", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"],
                env=env,
                check=False,
                capture_output=True,
            )
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
