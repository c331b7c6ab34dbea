"""The per-table data checksums depend on the data alone, for every column type.

A restore gives enum labels (and every other catalog object) new OIDs; a checksum that hashed
an enum by its OID reported a good backup as corrupt. Each test builds real databases using
enums, domains, arrays (of enums too), composite types, ranges, multiranges, json and jsonb,
then goes through the real CLI: backup, ``verify-backup --restore-test``, restore into another
database, and checks that real damage is still reported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import unique_db_name
from test_backup import execute

PG_SCHEMA = (
    "CREATE TYPE mood AS ENUM ('draft', 'ready', 'final')",
    "CREATE DOMAIN positive AS integer CHECK (VALUE > 0)",
    "CREATE DOMAIN mood_d AS mood",
    "CREATE TYPE address AS (street text, zip integer, kind mood)",
    "CREATE TYPE mood_range AS RANGE (subtype = mood)",
    "CREATE TABLE t_plain (id integer PRIMARY KEY, name text, price numeric(10, 2),"
    " at timestamptz, ratio double precision, span interval, raw bytea)",
    "CREATE TABLE t_enum (id integer PRIMARY KEY, status mood NOT NULL, note text)",
    "CREATE TABLE t_domain (id integer PRIMARY KEY, qty positive, status mood_d)",
    "CREATE TABLE t_array (id integer PRIMARY KEY, tags text[], moods mood[], grid integer[][])",
    "CREATE TABLE t_composite (id integer PRIMARY KEY, home address, homes address[])",
    "CREATE TABLE t_range (id integer PRIMARY KEY, seats int4range, stay tstzrange,"
    " moods mood_range, spans int4multirange)",
    "CREATE TABLE t_json (id integer PRIMARY KEY, doc json, docb jsonb)",
    "CREATE TABLE t_big (id integer PRIMARY KEY, big bigint, at timestamp)",
)
PG_ROWS = (
    "INSERT INTO t_plain VALUES (1, 'bolt', 1.50, '2026-01-02 03:04:05+00', 0.1, '1 day', 'ab'),"
    " (2, NULL, NULL, NULL, NULL, NULL, NULL), (3, 'nut', 0.05, now(), -0.0, '90 min', '')",
    "INSERT INTO t_enum VALUES (1, 'draft', 'a'), (2, 'final', NULL), (7, 'ready', 'tamper-me')",
    "INSERT INTO t_domain VALUES (1, 5, 'ready'), (2, 1, 'draft'), (3, NULL, NULL)",
    "INSERT INTO t_array VALUES (1, '{a,b}', '{draft,final}', '{{1,2},{3,4}}'),"
    " (2, '{}', '{ready,NULL}', NULL), (3, NULL, NULL, '{{5,6}}')",
    "INSERT INTO t_composite VALUES (1, ROW('Main St 1', 1000, 'ready'),"
    " ARRAY[ROW('a', 1, 'draft'), ROW('b', NULL, 'final')]::address[]),"
    " (2, NULL, NULL), (3, ROW(NULL, 2, NULL), '{}')",
    "INSERT INTO t_range VALUES (1, '[1,10)', '[2026-01-01,2026-02-01)', '[draft,final)',"
    " '{[1,3),[5,8)}'), (2, 'empty', NULL, '[ready,ready]', '{}'), (3, NULL, NULL, NULL, NULL)",
    """INSERT INTO t_json VALUES (1, '{"b": 1,  "a": [1, 2]}', '{"b": 1, "a": [1, 2]}'),"""
    """ (2, '[]', 'null'), (3, NULL, NULL), (4, '"x"', '{"nested": {"k": "v"}}')""",
    "INSERT INTO t_big VALUES (1, 0, '2026-01-01 00:00'), (2, 5, NULL)",
)
# One change per table: the checksum of each must notice.
PG_CHANGES = (
    # Names swapped between two rows: every column holds the same values as before.
    "UPDATE t_plain SET name = CASE id WHEN 1 THEN 'nut' ELSE 'bolt' END WHERE id IN (1, 3)",
    # PostgreSQL's own int8 hash folds 64 bits into 32: 0 and 4294967297 hash alike.
    "UPDATE t_big SET big = 4294967297 WHERE id = 1",
    "UPDATE t_enum SET status = 'final' WHERE id = 1",
    "UPDATE t_domain SET status = 'final' WHERE id = 1",
    "UPDATE t_array SET moods = '{final,draft}' WHERE id = 1",
    "UPDATE t_composite SET home = ROW('Main St 1', 1000, 'final') WHERE id = 1",
    "UPDATE t_range SET moods = '[draft,ready)' WHERE id = 1",
    """UPDATE t_json SET doc = '{"b": 1, "a": [1, 2]}' WHERE id = 1""",
)
PG_TABLES = [
    "t_array",
    "t_big",
    "t_composite",
    "t_domain",
    "t_enum",
    "t_json",
    "t_plain",
    "t_range",
]


def config(project: Path, source: str, copy: str | None = None) -> None:
    """abmigrate.toml: ``production`` is the source database, ``copy`` another one."""
    text = (
        'alembic_ini = "alembic.ini"\nbackup_dir = "backups"\ndefault_env = "production"\n\n'
        f'[environments.production]\nurl = "{source}"\n'
    )
    if copy:
        text += f'\n[environments.copy]\nurl = "{copy}"\n'
    (project / "abmigrate.toml").write_text(text)


def fresh_database(server: str, request: pytest.FixtureRequest) -> str:
    """Another empty database on the same server, dropped after the test."""
    url = sa.engine.make_url(server)
    name = unique_db_name()
    postgres = url.get_backend_name() == "postgresql"

    def admin(statement: str) -> None:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(statement))
        finally:
            engine.dispose()

    admin(f"CREATE DATABASE {name}")
    request.addfinalizer(
        lambda: admin(f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if postgres else ""))
    )
    return url.set(database=name).render_as_string(hide_password=False)


def backup(run_cli: Any, project: Path, *env: str) -> dict[str, Any]:
    """Take a backup through the CLI; its manifest."""
    made = run_cli("backup", *env, "--format", "json", cwd=project)
    assert made.exit_code == 0, made
    record = json.loads(made.stdout)
    assert record["verified"] is True
    return dict(json.loads((Path(record["path"]) / "manifest.json").read_text()))


def figures(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-table rows and checksum, by table name without the schema."""
    return {name.rpartition(".")[2]: dict(fig) for name, fig in manifest["tables"].items()}


def pg_rows(url: str) -> dict[str, list[str]]:
    """Every row of every test table as text, in id order: what "the same data" means."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: list(
                    connection.execute(sa.text(f"SELECT t::text FROM {table} t ORDER BY id"))
                    .scalars()
                    .all()
                )
                for table in PG_TABLES
            }
    finally:
        engine.dispose()


def enum_label_oids(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT e.enumlabel, e.oid::bigint FROM pg_enum e"
                    " JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = 'mood'"
                )
            ).all()
    finally:
        engine.dispose()
    return {str(label): int(oid) for label, oid in rows}


def rewrite_archive(folder: Path, manifest: dict[str, Any], old: bytes, new: bytes) -> None:
    """Change bytes inside the compressed archive and make the manifest match the new file,
    as a tampered or silently damaged backup would look: only the data tells."""
    tool = shutil.which(manifest["compression"])
    assert tool, f"{manifest['compression']} must be installed"
    # A directory archive has a file per table (and an uncompressed table of contents): the
    # file that holds the bytes.
    found = []
    for entry in manifest["files"]:
        path = folder / entry["name"]
        if path.name == "toc.dat":
            continue
        plain = subprocess.run([tool, "-dc", str(path)], check=True, capture_output=True).stdout
        if old in plain:
            found.append((entry, path, plain))
    assert len(found) == 1, "the bytes to change must be in one file of the archive"
    entry, path, plain = found[0]
    assert plain.count(old) == 1, "the bytes to change must be in the archive exactly once"
    packed = subprocess.run(
        [tool, "-c"], input=plain.replace(old, new), check=True, capture_output=True
    ).stdout
    path.write_bytes(packed)
    entry["size"] = len(packed)
    entry["sha256"] = hashlib.sha256(packed).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def pg_project(copy_scenario, pg_url: str) -> Path:  # type: ignore[no-untyped-def]
    project: Path = copy_scenario("backup_shop")
    config(project, pg_url)
    execute(pg_url, *PG_SCHEMA, *PG_ROWS)
    return project


# --------------------------------------------------------------------------- PostgreSQL


def test_restore_test_passes_for_enums_domains_arrays_composites_ranges_json(  # type: ignore[no-untyped-def]
    pg_project: Path, run_cli
) -> None:
    manifest = backup(run_cli, pg_project)
    assert sorted(figures(manifest)) == PG_TABLES

    verified = run_cli("verify-backup", "latest", "--restore-test", cwd=pg_project)
    assert verified.exit_code == 0, verified
    assert f"backup {manifest['id']} verified" in verified.stdout
    assert "8 of 8 match" in verified.stdout
    report = json.loads(
        Path(pg_project / "backups/production" / manifest["id"] / "manifest.json").read_text()
    )
    assert report["restore_test"]["ok"] is True and report["restore_test"]["mismatches"] == []


def test_a_restored_copy_has_the_same_figures_and_a_changed_row_shows(  # type: ignore[no-untyped-def]
    pg_project: Path, run_cli, pg_url: str, pg_server_url: str, request
) -> None:
    target = fresh_database(pg_server_url, request)
    # Other enums first: the restored labels cannot get the source's OIDs.
    execute(
        target,
        *(f"CREATE TYPE other_{n} AS ENUM ('x', 'y', 'z')" for n in range(5)),
    )
    config(pg_project, pg_url, copy=target)
    source = backup(run_cli, pg_project)

    restored = run_cli("restore", "latest", "--target-url", target, "--yes", cwd=pg_project)
    assert restored.exit_code == 0, restored
    assert pg_rows(target) == pg_rows(pg_url)
    before, after = enum_label_oids(pg_url), enum_label_oids(target)
    assert before.keys() == after.keys() == {"draft", "ready", "final"}
    assert all(before[label] != after[label] for label in before), (before, after)

    # The copy's backup carries exactly the source's figures: the data is the same.
    copy = backup(run_cli, pg_project, "--env", "copy")
    assert figures(copy) == figures(source)

    # One row changed in every table of the copy: every checksum says so, no row count does.
    execute(target, *PG_CHANGES)
    changed = figures(backup(run_cli, pg_project, "--env", "copy"))
    for table in PG_TABLES:
        assert changed[table]["rows"] == figures(source)[table]["rows"], table
        assert changed[table]["checksum"] != figures(source)[table]["checksum"], table


def test_restore_test_reports_a_tampered_enum_value(pg_project: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    manifest = backup(run_cli, pg_project)
    folder = pg_project / "backups/production" / manifest["id"]
    # The table's file keeps COPY data as text: 'ready' becomes 'final', a valid label of the same size.
    rewrite_archive(folder, manifest, b"7\tready\ttamper-me\n", b"7\tfinal\ttamper-me\n")

    result = run_cli("verify-backup", manifest["id"], "--restore-test", cwd=pg_project)
    assert result.exit_code == 1, result
    assert result.stderr.startswith("error: "), result
    assert "public.t_enum: same row count, different data (checksum differs)" in result.stderr
    assert "and 1 more" not in result.stderr  # only the damaged table


def v2_figures(url: str) -> dict[str, dict[str, Any]]:
    """The figures abmigrate's v2 method recorded: the record hash ("r:"), or the row's text
    ("t:") where a column type has no hash function (json)."""
    engine = sa.create_engine(url)
    found: dict[str, dict[str, Any]] = {}
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SET TimeZone = 'UTC'"))
            for table in PG_TABLES:
                try:
                    with connection.begin_nested():
                        rows, total = connection.execute(
                            sa.text(
                                "SELECT count(*), coalesce(sum(hash_record_extended(r, 0)), 0)"
                                f" FROM {table} r"
                            )
                        ).one()
                    checksum = f"r:{total}"
                except sa.exc.DBAPIError:
                    rows, total = connection.execute(
                        sa.text(
                            "SELECT count(*), coalesce(sum(hashtextextended(r::text, 0)), 0)"
                            f" FROM {table} r"
                        )
                    ).one()
                    checksum = f"t:{total}"
                found[f"public.{table}"] = {"rows": int(rows), "checksum": checksum}
            connection.rollback()
    finally:
        engine.dispose()
    return found


def test_a_backup_taken_with_the_v2_checksums_can_still_be_restore_tested(  # type: ignore[no-untyped-def]
    pg_project: Path, run_cli, pg_url: str
) -> None:
    manifest = backup(run_cli, pg_project)
    folder = pg_project / "backups/production" / manifest["id"]
    legacy = v2_figures(pg_url)
    assert legacy["public.t_json"]["checksum"].startswith("t:")
    assert legacy["public.t_enum"]["checksum"].startswith("r:")
    manifest["tables"].update(legacy)
    manifest["checksum_method"] = (
        "postgresql:sum(hash_record_extended(row,0)) or sum(hashtextextended(row::text,0))/v2"
    )
    (folder / "manifest.json").write_text(json.dumps(manifest))

    # The good backup passes. Tables whose v2 figure hashed enum OIDs: row counts only, said.
    verified = run_cli("verify-backup", manifest["id"], "--restore-test", cwd=pg_project)
    assert verified.exit_code == 0, verified
    assert "8 of 8 match (5 by row count only)" in verified.stdout
    for table in ("t_array", "t_composite", "t_domain", "t_enum", "t_range"):
        assert f"public.{table}: row count only: " in verified.stdout, table

    # The v2 figures that do not depend on OIDs are still compared in full.
    rewrite_archive(folder, manifest, b"1\tbolt\t", b"1\tbelt\t")
    damaged = run_cli("verify-backup", manifest["id"], "--restore-test", cwd=pg_project)
    assert damaged.exit_code == 1, damaged
    assert "public.t_plain: same row count, different data (checksum differs)" in damaged.stderr


V3_METHOD = (
    "postgresql:sum(hashtextextended(hash_record_extended(ROW(columns by name: bool, int2,"
    ' int4, date, uuid, bytea as they are; text, varchar COLLATE "C"; int8, time, timestamp[tz]'
    ' as their binary send form; any other type as ::text COLLATE "C"),0)::text,0))'
    " (PostgreSQL 14+) or sum(hashtextextended(row::text,0))/v3"
)


def test_a_backup_taken_with_the_v3_checksums_can_still_be_restore_tested(  # type: ignore[no-untyped-def]
    pg_project: Path, run_cli, pg_url: str
) -> None:
    from abmigrate.backup.postgres import PostgresBackend

    manifest = backup(run_cli, pg_project)
    assert all(fig["checksum"].startswith("h:") for fig in figures(manifest).values())
    folder = pg_project / "backups/production" / manifest["id"]
    # The figures v3 recorded (their values are pinned in test_backup_checksums.py).
    v3 = PostgresBackend().table_stats(pg_url, {name: "c:" for name in manifest["tables"]})
    manifest["tables"] = {name: stats.to_record() for name, stats in v3.items()}
    assert all(fig["checksum"].startswith("c:") for fig in manifest["tables"].values())
    manifest["checksum_method"] = V3_METHOD
    (folder / "manifest.json").write_text(json.dumps(manifest))

    verified = run_cli("verify-backup", manifest["id"], "--restore-test", cwd=pg_project)
    assert verified.exit_code == 0, verified
    assert "8 of 8 match" in verified.stdout
    assert "row count only" not in verified.stdout

    rewrite_archive(folder, manifest, b"7\tready\ttamper-me\n", b"7\tfinal\ttamper-me\n")
    damaged = run_cli("verify-backup", manifest["id"], "--restore-test", cwd=pg_project)
    assert damaged.exit_code == 1, damaged
    assert "public.t_enum: same row count, different data (checksum differs)" in damaged.stderr


# --------------------------------------------------------------------------- MariaDB

MARIADB_SCHEMA = (
    "CREATE TABLE t_enum (id int PRIMARY KEY, status ENUM('draft','ready','final') NOT NULL,"
    " flags SET('a','b','c'), doc JSON, note varchar(20))",
    "INSERT INTO t_enum VALUES (1, 'draft', 'a,c', '{\"b\": 1,  \"a\": [1, 2]}', 'x'),"
    " (2, 'final', '', NULL, NULL), (7, 'ready', 'b', '[]', 'tamper-me')",
)


def test_mariadb_enum_set_json_round_trip_and_damage(  # type: ignore[no-untyped-def]
    copy_scenario, run_cli, mariadb_url: str, mariadb_server_url: str, request
) -> None:
    project: Path = copy_scenario("backup_shop")
    target = fresh_database(mariadb_server_url, request)
    config(project, mariadb_url, copy=target)
    # An enum with other labels first in the target: ENUM/SET values are text, not ids.
    execute(target, "CREATE TABLE other (e ENUM('x','y','z','draft'))")
    execute(mariadb_url, *MARIADB_SCHEMA)
    source = backup(run_cli, project)

    verified = run_cli("verify-backup", "latest", "--restore-test", cwd=project)
    assert verified.exit_code == 0, verified
    restored = run_cli("restore", "latest", "--target-url", target, "--yes", cwd=project)
    assert restored.exit_code == 0, restored
    assert figures(backup(run_cli, project, "--env", "copy")) == figures(source)

    execute(target, "UPDATE t_enum SET status = 'ready', flags = 'a' WHERE id = 1")
    changed = figures(backup(run_cli, project, "--env", "copy"))
    assert changed["t_enum"]["checksum"] != figures(source)["t_enum"]["checksum"]

    folder = project / "backups/production" / source["id"]
    rewrite_archive(folder, source, b"(7,'ready',", b"(7,'final',")
    result = run_cli("verify-backup", source["id"], "--restore-test", cwd=project)
    assert result.exit_code == 1, result
    assert "t_enum: same row count, different data (checksum differs)" in result.stderr
