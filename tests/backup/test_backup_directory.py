"""PostgreSQL directory archives (issue #14 item 3): ``pg_dump -Fd -j`` with a zstd file per
table, restored by ``pg_restore -j``; backups taken before them (one ``-Fc`` file) still
verify and restore."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import unique_db_name
from runner_helpers import wait_until
from test_backup import contents, execute, write_config
from test_backup_faults import start_backup
from test_backup_types import rewrite_archive

from abmigrate.backup import copyload
from abmigrate.backup.base import dump_jobs

TABLES = ("customers", "parts", "orders", "notes", "events")
SCHEMA = (
    "CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, city text)",
    "CREATE TABLE parts (id serial PRIMARY KEY, sku text UNIQUE, price numeric(10,2))",
    "CREATE TABLE orders (id bigserial PRIMARY KEY,"
    " customer_id bigint REFERENCES customers, part_id int REFERENCES parts,"
    " quantity int, ordered_at timestamptz)",
    "CREATE INDEX ON orders (ordered_at)",
    "CREATE TABLE notes (id int PRIMARY KEY, body text, tags text[])",
    "CREATE TABLE events (id int PRIMARY KEY, payload jsonb, at date)",
    "INSERT INTO customers (name, city) SELECT 'c' || g, (ARRAY['Oslo','Lima'])[1 + g % 2]"
    " FROM generate_series(1, 3000) g",
    "INSERT INTO parts (sku, price) SELECT 'sku-' || g, g / 7.0 FROM generate_series(1, 500) g",
    "INSERT INTO orders (customer_id, part_id, quantity, ordered_at)"
    " SELECT 1 + g % 3000, 1 + g % 500, g % 9, '2026-01-01'::timestamptz + g * interval '1 min'"
    " FROM generate_series(1, 20000) g",
    "INSERT INTO notes SELECT g, repeat(md5(g::text), 4), ARRAY['a', g::text]"
    " FROM generate_series(1, 2000) g",
    "INSERT INTO events SELECT g, jsonb_build_object('n', g), DATE '2026-01-01' + g % 300"
    " FROM generate_series(1, 2000) g",
)


@pytest.fixture
def project(copy_scenario, pg_url: str) -> Path:  # type: ignore[no-untyped-def]
    folder: Path = copy_scenario("backup_shop")
    write_config(folder, pg_url)
    execute(pg_url, *SCHEMA)
    return folder


@pytest.fixture
def empty_database(pg_server_url: str) -> Iterator[str]:
    """A second fresh, empty database on the test server."""
    name = unique_db_name()
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield (
            sa.engine.make_url(pg_server_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def logged_tools(tmp_path: Path, body_after: str = "") -> tuple[dict[str, str], Path]:
    """PATH with pg_dump/pg_restore shims that log their arguments, then run the real tool
    (and ``body_after`` once it has finished)."""
    shims = tmp_path / "shims"
    shims.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("pg_dump", "pg_restore"):
        real = shutil.which(tool)
        assert real, f"{tool} must be installed"
        run = (
            f'{real} "$@"\nstatus=$?\n{body_after}\nexit $status\n' if tool == "pg_restore" else ""
        )
        (shims / tool).write_text(
            f'#!/bin/sh\necho "{tool} $*" >> {log}\n' + (run or f'exec {real} "$@"\n')
        )
        (shims / tool).chmod(0o755)
    return {"PATH": f"{shims}:{os.environ['PATH']}"}, log


def tables_of(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_directory_archive_round_trip_restores_tables_in_parallel(  # type: ignore[no-untyped-def]
    project: Path, run_cli, pg_url: str, empty_database: str, tmp_path: Path
) -> None:
    env, log = logged_tools(tmp_path)
    made = run_cli("backup", "--format", "json", cwd=project, env=env)
    assert made.exit_code == 0, made
    record = json.loads(made.stdout)
    folder = Path(record["path"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"].startswith("pg_dump directory (-Fd -j")
    names = [entry["name"] for entry in manifest["files"]]
    assert "data.dir/toc.dat" in names
    # One compressed file per table with data; no plain table file left behind.
    packed = [name for name in names if name.endswith(".dat.zst")]
    assert len(packed) == len(TABLES)
    plain = [p for p in (folder / "data.dir").iterdir() if p.suffix == ".dat" and p.stem != "toc"]
    assert plain == []
    assert sorted(manifest["tables"]) == sorted(f"public.{name}" for name in TABLES)
    assert manifest["tables"]["public.orders"]["rows"] == 20000
    # Owner-only: the backup folder and the archive's folder 0700, every file 0600.
    for path in [folder, *folder.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    dump_call = next(line for line in log.read_text().splitlines() if "pg_dump --format" in line)
    assert "--format=directory" in dump_call and "--jobs=" in dump_call

    restored = run_cli(
        "restore",
        record["id"],
        "--target-url",
        empty_database,
        "--format",
        "json",
        cwd=project,
        env=env,
    )
    assert restored.exit_code == 0, restored
    assert contents(empty_database) == contents(pg_url)
    verified = run_cli("verify-backup", record["id"], "--restore-test", cwd=project, env=env)
    assert verified.exit_code == 0, verified
    assert f"{len(TABLES)} of {len(TABLES)} match" in verified.stdout
    restores = [line for line in log.read_text().splitlines() if line.startswith("pg_restore -")]
    # Each restore (the plain one, the restore test's): definitions, then the rows (COPYs of
    # its own), the sequences, then indexes and constraints by pg_restore -j.
    loads = [line.split(" /")[0] for line in restores if "--dbname=" in line]
    assert loads == 2 * [
        "pg_restore --exit-on-error --dbname= --section=pre-data",
        "pg_restore --exit-on-error --dbname= --section=data -L",
        f"pg_restore --exit-on-error --dbname= --section=post-data --jobs={dump_jobs()}",
    ], restores
    # The decompressed copy pg_restore read is gone.
    assert not list((project / "backups").rglob(".partial-*"))


def test_a_failed_parallel_restore_leaves_the_empty_target_empty(  # type: ignore[no-untyped-def]
    project: Path, run_cli, empty_database: str, tmp_path: Path
) -> None:
    assert run_cli("backup", cwd=project).exit_code == 0
    # The rows are loaded; the last step (pg_restore building indexes and constraints) does
    # its work, then reports a failure (as a late error would).
    env, _ = logged_tools(
        tmp_path,
        body_after='case "$*" in *--section=post-data*)'
        ' echo "pg_restore: error: late failure" >&2; status=1;; esac',
    )
    result = run_cli("restore", "latest", "--target-url", empty_database, cwd=project, env=env)
    assert result.exit_code == 1, result
    assert "error: restore failed: pg_restore: error: late failure" in result.stderr
    assert tables_of(empty_database) == []
    assert not list((project / "backups").rglob(".partial-*"))


def scalar(url: str, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def test_a_table_loaded_in_blocks_by_several_connections_restores_exactly(  # type: ignore[no-untyped-def]
    project: Path, run_cli, pg_url: str, empty_database: str, monkeypatch
) -> None:
    # Blocks of 64 KiB: 300000 more orders (about 12 MiB of COPY text) go to the restore's
    # connections in some 200 blocks, as the rows of a large table do; a note longer than a
    # block is loaded whole.
    monkeypatch.setattr(copyload, "BLOCK", 64 << 10)
    execute(
        pg_url,
        "INSERT INTO notes SELECT 100000, string_agg(md5(g::text), E'\\n') || '\\.',"
        " ARRAY['long'] FROM generate_series(1, 6000) g",
        "INSERT INTO orders (customer_id, part_id, quantity, ordered_at)"
        " SELECT 1 + g % 3000, 1 + g % 500, g % 9, '2025-01-01'::timestamptz + g * interval '1 s'"
        " FROM generate_series(1, 300000) g",
    )
    made = run_cli("backup", "--format", "json", cwd=project)
    assert made.exit_code == 0, made
    backup_id = json.loads(made.stdout)["id"]
    restored = run_cli("restore", backup_id, "--target-url", empty_database, cwd=project)
    assert restored.exit_code == 0, restored
    assert contents(empty_database) == contents(pg_url)
    # More than one COPY (transaction) wrote the orders: the table really was split.
    assert scalar(empty_database, "SELECT count(DISTINCT xmin::text) FROM orders") > 1
    # Sequences carry on where the source's were; indexes and keys are back.
    for sequence in ("orders_id_seq", "customers_id_seq", "parts_id_seq"):
        sql = f"SELECT last_value FROM {sequence}"
        assert scalar(empty_database, sql) == scalar(pg_url, sql)
    indexes = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
    assert scalar(empty_database, indexes) == scalar(pg_url, indexes)
    with pytest.raises(sa.exc.IntegrityError):  # the foreign key is enforced again
        execute(empty_database, "INSERT INTO orders (customer_id) VALUES (999999)")
    verified = run_cli("verify-backup", backup_id, "--restore-test", cwd=project)
    assert verified.exit_code == 0, verified
    assert f"{len(TABLES)} of {len(TABLES)} match" in verified.stdout


def test_a_row_that_fails_to_load_mid_restore_is_named_and_leaves_the_target_empty(  # type: ignore[no-untyped-def]
    project: Path, run_cli, empty_database: str, monkeypatch
) -> None:
    monkeypatch.setattr(copyload, "BLOCK", 16 << 10)
    made = run_cli("backup", "--format", "json", cwd=project)
    assert made.exit_code == 0, made
    record = json.loads(made.stdout)
    folder = Path(record["path"])
    manifest = json.loads((folder / "manifest.json").read_text())
    # A damaged row in the middle of the orders (its file and the manifest agree: only the
    # load can tell).
    rewrite_archive(folder, manifest, b"\t2026-01-08 22:40:00+00\n", b"\tnot a time\n")
    result = run_cli("restore", record["id"], "--target-url", empty_database, cwd=project)
    assert result.exit_code == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "error: restore failed: COPY public.orders: invalid input syntax for type timestamp"
    ), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert tables_of(empty_database) == []
    tested = run_cli("verify-backup", record["id"], "--restore-test", cwd=project)
    assert tested.exit_code == 1, tested
    assert "restore test: restore failed: COPY public.orders: invalid input" in tested.stderr


def test_replacing_a_database_from_a_directory_archive(  # type: ignore[no-untyped-def]
    project: Path, run_cli, pg_url: str
) -> None:
    before = contents(pg_url)
    made = run_cli("backup", "--format", "json", cwd=project)
    assert made.exit_code == 0, made
    execute(pg_url, "DELETE FROM orders WHERE id > 100", "UPDATE customers SET city = 'x'")
    backup_id = json.loads(made.stdout)["id"]
    restored = run_cli("restore", backup_id, "--yes", "--env", "development", cwd=project)
    assert restored.exit_code == 0, restored
    assert contents(pg_url) == before


# --------------------------------------------------------------------------- older backups


def single_file_backup(project: Path, url: str) -> str:
    """A backup as abmigrate wrote them before directory archives: ``pg_dump -Fc -Z0 | zstd``
    in one file, the manifest beside it. Returns its id."""
    from abmigrate.backup.postgres import CHECKSUM_METHOD, PostgresBackend, libpq_env

    backup_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-01d0"
    folder = project / "backups" / "production" / backup_id
    folder.mkdir(parents=True, mode=0o700)
    data = folder / "data.dump.zst"
    dumped = subprocess.run(
        ["pg_dump", "-Fc", "-Z0"], env=libpq_env(url), check=True, capture_output=True
    ).stdout
    data.write_bytes(
        subprocess.run(["zstd", "-q", "-1"], input=dumped, check=True, capture_output=True).stdout
    )
    tables = PostgresBackend().table_stats(url)
    manifest: dict[str, Any] = {
        "id": backup_id,
        "environment": "production",
        "database": url,
        "dialect": "postgresql",
        "server_version": "15",
        "format": "pg_dump custom (-Fc -Z0)",
        "compression": "zstd",
        "compression_level": 1,
        "revisions": [],
        "files": [
            {
                "name": data.name,
                "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
                "size": data.stat().st_size,
            }
        ],
        "tools": {"pg_dump": "15"},
        "tables": {name: figures.to_record() for name, figures in tables.items()},
        "checksum_method": CHECKSUM_METHOD,
        "created_at": datetime.now(UTC).isoformat(),
        "duration_s": 1.0,
        "reason": "manual",
        "verified": True,
        "verified_at": None,
        "restore_test": None,
        "format_version": 1,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return backup_id


def test_a_single_file_backup_from_before_still_verifies_and_restores(  # type: ignore[no-untyped-def]
    project: Path, run_cli, pg_url: str, empty_database: str
) -> None:
    before = contents(pg_url)
    backup_id = single_file_backup(project, pg_url)
    listed = json.loads(run_cli("backups", "--format", "json", cwd=project).stdout)["backups"]
    assert [entry["id"] for entry in listed] == [backup_id]
    assert listed[0]["sha256"] == listed[0]["files"][0]["sha256"]

    verified = run_cli("verify-backup", backup_id, "--restore-test", cwd=project)
    assert verified.exit_code == 0, verified
    assert f"{len(TABLES)} of {len(TABLES)} match" in verified.stdout
    restored = run_cli("restore", backup_id, "--target-url", empty_database, cwd=project)
    assert restored.exit_code == 0, restored
    assert contents(empty_database) == before
    execute(pg_url, "DELETE FROM orders")
    replaced = run_cli("restore", backup_id, "--yes", "--env", "development", cwd=project)
    assert replaced.exit_code == 0, replaced
    assert contents(pg_url) == before


def test_without_zstd_pg_dump_gzips_each_table_itself(  # type: ignore[no-untyped-def]
    project: Path, run_cli, pg_url: str, empty_database: str, tmp_path: Path
) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("pg_dump", "pg_restore", "psql", "gzip"):
        found = shutil.which(tool)
        assert found, f"{tool} must be installed"
        os.symlink(found, bare / tool)
    env = {"PATH": str(bare)}
    made = run_cli("backup", "--format", "json", cwd=project, env=env)
    assert made.exit_code == 0, made
    record = json.loads(made.stdout)
    assert record["compression"] == "gzip -1"
    names = [entry["name"] for entry in record["files"]]
    assert len([name for name in names if name.endswith(".dat.gz")]) == len(TABLES)
    verified = run_cli("verify-backup", record["id"], "--restore-test", cwd=project, env=env)
    assert verified.exit_code == 0, verified
    restored = run_cli(
        "restore", record["id"], "--target-url", empty_database, cwd=project, env=env
    )
    assert restored.exit_code == 0, restored
    assert contents(empty_database) == contents(pg_url)


# --------------------------------------------------------------------------- interrupted


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_backup_interrupted_while_a_table_is_being_compressed_is_never_listed(  # type: ignore[no-untyped-def]
    project: Path, run_cli, tmp_path: Path, how: str
) -> None:
    # pg_dump stand-in: writes part of one table's file into the archive folder and hangs, so
    # abmigrate is following (compressing) a file that pg_dump has not finished.
    real = shutil.which("pg_dump")
    marker = tmp_path / "writing"
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "pg_dump").write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then exec {real} --version; fi\n'
        'out=""; previous=""\n'
        'for arg in "$@"; do [ "$previous" = "--file" ] && out="$arg"; previous="$arg"; done\n'
        'mkdir -m 700 "$out"\n'
        "printf '1\\tpart of a table\\n' > \"$out/4242.dat\"\n"
        f"touch {marker}\n"
        "exec sleep 60\n"
    )
    (shims / "pg_dump").chmod(0o755)
    process = start_backup(project, shims, subprocess.PIPE)
    try:
        wait_until(
            lambda: (
                marker.exists()
                and list((project / "backups").glob("production/.partial-*/data.dir/4242.dat.zst"))
            ),
            "abmigrate to be compressing the table pg_dump is still writing",
        )
        if how == "SIGTERM":
            process.send_signal(signal.SIGTERM)  # abmigrate alone, as `kill PID` would
            _, stderr = process.communicate(timeout=60)
            assert process.returncode == 130, stderr
            assert "interrupted" in stderr and "Traceback" not in stderr
            assert list((project / "backups").glob("production/.partial-*")) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stderr is not None:
            process.stderr.close()
    listed = run_cli("backups", "--format", "json", cwd=project)
    assert json.loads(listed.stdout)["backups"] == []
    assert list((project / "backups").rglob("manifest.json")) == []
