"""Where `abmigrate backup` and `restore` spend their time on PostgreSQL, phase by phase.

    python bench/backup_speed/run.py --no-options --keep      # builds abm_bench_backup, keeps it
    python bench/backup_speed/phases.py [--db abm_bench_backup] [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Times, in this process, on an existing database: the directory dump alone (pg_dump -Fd -j
with each table's file compressed, hashed and test-decompressed beside it), the per-table
figures alone (one pass in SQL), both together as `backup` runs them, what `backup` still
does after the dump (sha256 of the table of contents, pg_restore -l), for reference the full
read-back `verify-backup` does (sha256 and zstd -t of every file), and the restore into an
empty database step by step (definitions, rows by concurrent COPYs, sequences, indexes and
constraints). Prints each phase's seconds, the CPU seconds of this process and its children
(zstd, pg_restore; not the server's), those of the whole machine (the server included, and
anything else that runs), and the machine's load. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import sqlalchemy as sa
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from restores import busy_cpu_seconds  # noqa: E402

from abmigrate.backup import postgres  # noqa: E402
from abmigrate.backup.base import choose_compressor  # noqa: E402
from abmigrate.backup.manifest import FileEntry, Manifest, sha256_of  # noqa: E402
from abmigrate.backup.operations import _check_archive  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="abm_bench_backup")
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    server = make_url(args.server)
    url = server.set(database=args.db).render_as_string(hide_password=False)
    backend = postgres.PostgresBackend()
    compressor = choose_compressor()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="abm-phases-"))
    try:

        def cpu() -> float:
            return sum(
                usage.ru_utime + usage.ru_stime
                for usage in (
                    resource.getrusage(resource.RUSAGE_SELF),
                    resource.getrusage(resource.RUSAGE_CHILDREN),
                )
            )

        def timed(name: str, action):  # type: ignore[no-untyped-def]
            started, used, busy = time.perf_counter(), cpu(), busy_cpu_seconds()
            result = action()
            print(
                f"{name:60} {time.perf_counter() - started:7.2f} s"
                f"  (client CPU {cpu() - used:5.2f} s, machine {busy_cpu_seconds() - busy:5.1f} s)",
                flush=True,
            )
            return result

        def fresh(name: str) -> Path:
            folder = work / name
            folder.mkdir(mode=0o700)
            return folder

        with mock.patch.object(postgres, "_table_stats", lambda connection: {}):
            timed(
                "dump alone (pg_dump -Fd -j + zstd per table)",
                lambda: backend.dump(url, fresh("a"), compressor),
            )
        timed("figures alone (one SQL pass: count + checksum)", lambda: backend.table_stats(url))
        outcome = timed(
            "dump with the figures beside it (as backup runs)",
            lambda: backend.dump(url, fresh("b"), compressor),
        )
        folder = work / "b"
        tested = set(outcome.tested)
        entries = timed(
            "after the dump: sha256 of the files not hashed as written",
            lambda: [
                FileEntry(
                    name,
                    outcome.tested[name][0] if name in tested else sha256_of(folder / name),
                    (folder / name).stat().st_size,
                )
                for name in outcome.files
            ],
        )
        manifest = Manifest(
            id="x",
            environment="bench",
            database="",
            dialect="postgresql",
            server_version="",
            format=outcome.format,
            compression=compressor.name,
            compression_level=compressor.level,
            revisions=[],
            files=entries,
            tools={},
            tables={},
            checksum_method="",
            created_at="",
            duration_s=0,
            folder=folder,
        )
        timed(
            "after the dump: the rest of the read-back (pg_restore -l)",
            lambda: _check_archive(backend, manifest, compressor, tested=tested),
        )
        timed(
            "reference, not in backup: sha256 of every file",
            lambda: [sha256_of(folder / name) for name in outcome.files],
        )
        timed(
            "reference, not in backup: zstd -t of every file, pg_restore -l",
            lambda: _check_archive(backend, manifest, compressor),
        )
        target = f"abm_phases_{os.getpid()}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {target}"))
        steps = {
            "--section=pre-data": "  definitions (pg_restore --section=pre-data)",
            "--section=data": "  sequence values (pg_restore --section=data -L)",
            "--section=post-data": "  indexes, constraints (pg_restore --section=post-data -j)",
        }
        load = postgres.PostgresBackend._load

        def timed_load(self, pg_restore, arguments, url, **options):  # type: ignore[no-untyped-def]
            step = next((steps[a] for a in arguments if a in steps), "  pg_restore")
            return timed(step, lambda: load(self, pg_restore, arguments, url, **options))

        load_tables = postgres.load_tables
        try:
            with (
                mock.patch.object(postgres.PostgresBackend, "_load", timed_load),
                mock.patch.object(
                    postgres,
                    "load_tables",
                    lambda *a: timed(
                        f"  rows: concurrent COPYs ({postgres.dump_jobs()} connections)",
                        lambda: load_tables(*a),
                    ),
                ),
            ):
                timed(
                    "restore into an empty database, all steps",
                    lambda: backend.restore(
                        folder,
                        outcome.files,
                        compressor,
                        server.set(database=target).render_as_string(hide_password=False),
                    ),
                )
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)"))
            admin.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
