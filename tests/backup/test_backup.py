"""Backups end to end through the real CLI, on SQLite, PostgreSQL and MariaDB servers:
backup → verify-backup --restore-test → restore, the pipeline's automatic backup, retention."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

BACKENDS = ["sqlite_url", "pg_url", "mariadb_url"]


@pytest.fixture(params=BACKENDS, ids=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: what "identical data" means here."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            return {
                name: [
                    tuple(row)
                    for row in connection.execute(
                        sa.select(table).order_by(*(table.primary_key.columns or table.columns))
                    )
                ]
                for name, table in sorted(metadata.tables.items())
            }
    finally:
        engine.dispose()


def write_config(project: Path, url: str, *, keep: int = 10, extra: str = "") -> None:
    (project / "abmigrate.toml").write_text(
        f"""
alembic_ini = "alembic.ini"
backup_dir = "backups"
keep_backups = {keep}
default_env = "production"

[environments.production]
url = "{url}"
{extra}

[environments.development]
url = "{url}"
"""
    )


@pytest.fixture
def shop(copy_scenario, run_cli, db_url) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    project = copy_scenario("backup_shop")
    write_config(project, db_url)

    def cli(*args: str, **kwargs: Any) -> Any:
        return run_cli(*args, cwd=project, **kwargs)

    cli.project = project  # type: ignore[attr-defined]
    cli.url = db_url  # type: ignore[attr-defined]
    return cli


def backups_of(cli: Any) -> list[dict[str, Any]]:
    listed = cli("backups", "--format", "json")
    assert listed.exit_code == 0, listed
    return list(json.loads(listed.stdout)["backups"])


def test_round_trip_backup_verify_restore(shop, db_url: str) -> None:  # type: ignore[no-untyped-def]
    assert shop("upgrade", "0001_shop", "--no-backup", "--env", "development").exit_code == 0
    before = contents(db_url)
    assert len(before["orders"]) == 120 and len(before["customers"]) == 40

    made = shop("backup", "--format", "json")
    assert made.exit_code == 0, made
    record = json.loads(made.stdout)
    assert record["revisions"] == ["0001_shop"] and record["verified"] is True
    # customers, orders, alembic_version and abmigrate_journal (the upgrade journaled its run)
    assert record["tables"] == 4

    # The manifest: what, from where (masked), which revision, checksums; private modes.
    folder = Path(record["path"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["environment"] == "production"
    assert manifest["revisions"] == ["0001_shop"]
    assert (
        manifest["tables"]["orders" if "orders" in manifest["tables"] else "public.orders"]["rows"]
        == 120
    )
    # One file: its sha256; a directory archive: the sha256 of the `sha256sum` listing.
    listing = "".join(
        f"{entry['sha256']}  {entry['name']}\n"
        for entry in sorted(manifest["files"], key=lambda entry: entry["name"])
    )
    expected = (
        manifest["files"][0]["sha256"]
        if len(manifest["files"]) == 1
        else hashlib.sha256(listing.encode()).hexdigest()
    )
    assert record["sha256"] == expected
    assert manifest["server_version"] and manifest["tools"] and manifest["created_at"]
    for path in (folder, folder.parent, folder.parent.parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in folder.rglob("*"):  # a directory archive: its folder 0700, its files 0600
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path

    verified = shop("verify-backup", record["id"], "--restore-test", "--format", "json")
    assert verified.exit_code == 0, verified
    report = json.loads(verified.stdout)
    assert report["restore_test"]["ok"] is True
    assert report["restore_test"]["mismatches"] == []
    # orders, customers, alembic_version and the journal's row for the upgrade
    assert report["restore_test"]["rows"] == 120 + 40 + 1 + 1

    # Damage the data, then restore: identical to the moment of the backup.
    execute(
        db_url,
        "DELETE FROM orders WHERE id > 100",
        "UPDATE customers SET name = 'changed' WHERE id = 3",
    )
    refused = shop("restore", record["id"])
    assert refused.exit_code == 1, refused
    assert "not empty" in refused.stderr and "--yes" in refused.stderr
    assert len(contents(db_url)["orders"]) == 100  # nothing was touched

    restored = shop("restore", record["id"], "--yes", "--format", "json")
    assert restored.exit_code == 0, restored
    outcome = json.loads(restored.stdout)
    assert outcome["revisions"] == ["0001_shop"]
    assert outcome["replaced_existing"] is True
    # production's policy requires backups: the state before the restore was saved first.
    assert outcome["pre_restore_backup"]["reason"] == "pre-restore"
    assert contents(db_url) == before

    listed = backups_of(shop)
    assert [b["reason"] for b in listed] == ["pre-restore", "manual"]
    assert listed[1]["restore_tested"] is True


def test_restore_into_another_database(shop, db_url: str, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    if db_url.startswith("sqlite"):
        target = f"sqlite:///{tmp_path / 'copy.db'}"
    else:
        # A second fresh database on the same server, from the same fixture family.
        fixture = "pg_server_url" if db_url.startswith("postgresql") else "mariadb_server_url"
        server = request.getfixturevalue(fixture)
        from conftest import unique_db_name

        name = unique_db_name()
        admin = sa.engine.make_url(server)
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
        engine.dispose()
        target = admin.set(database=name).render_as_string(hide_password=False)
        request.addfinalizer(lambda: _drop(server, name))
    assert shop("upgrade", "0001_shop", "--no-backup", "--env", "development").exit_code == 0
    assert shop("backup").exit_code == 0
    restored = shop("restore", "latest", "--target-url", target, "--format", "json")
    assert restored.exit_code == 0, restored  # an empty target needs no confirmation
    assert json.loads(restored.stdout)["revisions"] == ["0001_shop"]
    assert contents(target) == contents(db_url)


def _drop(server: str, name: str) -> None:
    url = sa.engine.make_url(server)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        force = " WITH (FORCE)" if url.get_backend_name() == "postgresql" else ""
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))
    engine.dispose()


def test_production_upgrade_backs_up_first_and_refuses_no_backup(shop, db_url: str) -> None:  # type: ignore[no-untyped-def]
    assert shop("upgrade", "0001_shop", "--no-backup", "--env", "development").exit_code == 0

    refused = shop("upgrade", "--yes", "--no-backup")
    assert refused.exit_code == 1, refused
    assert "--no-backup refused" in refused.stderr and "requires a backup" in refused.stderr
    assert len(contents(db_url)["orders"][0]) == 4  # the refused upgrade added no column

    upgraded = shop("upgrade", "--yes", "--format", "json")
    assert upgraded.exit_code == 0, upgraded
    run = json.loads(upgraded.stdout)
    assert run["backup"]["verified"] is True and run["backup"]["reason"] == "pre-upgrade"
    assert run["backup"]["revisions"] == ["0001_shop"]  # taken before the change
    # production forbids destructive changes: dropping the filled column needs a reason
    human = shop("downgrade", "0001_shop", "--yes", "--override", "release rolled back")
    assert human.exit_code == 0, human
    assert "backup: " in human.stdout  # the run names its backup
    reasons = [b["reason"] for b in backups_of(shop)]
    assert reasons == ["pre-downgrade", "pre-upgrade"]

    status = json.loads(shop("status", "--format", "json").stdout)
    assert status["last_backup"]["id"] == backups_of(shop)[0]["id"]
    # The journal names each run's backup too.
    journal = shop("journal", "--format", "json")
    assert journal.exit_code == 0, journal
    for backup_id in (b["id"] for b in backups_of(shop)):
        assert backup_id in journal.stdout


def test_upgrade_stops_before_any_change_when_the_backup_fails(shop, db_url: str) -> None:  # type: ignore[no-untyped-def]
    assert shop("upgrade", "0001_shop", "--no-backup", "--env", "development").exit_code == 0
    # backup_dir is a file: nothing can be written there.
    (shop.project / "backups").write_text("not a folder")
    result = shop("upgrade", "--yes")
    assert result.exit_code == 1, result
    assert "error: backup folder" in result.stderr and "Traceback" not in result.stderr
    current = shop("current", "--format", "json")
    assert json.loads(current.stdout)["current"] == ["0001_shop"]


def test_retention_keeps_the_newest_and_logs_deletions(copy_scenario, run_cli, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    project = copy_scenario("backup_shop")
    write_config(project, sqlite_url, keep=2)
    assert run_cli("upgrade", "--env", "development", cwd=project).exit_code == 0
    ids = []
    for _ in range(3):
        made = run_cli("backup", "--format", "json", cwd=project)
        assert made.exit_code == 0, made
        ids.append(json.loads(made.stdout)["id"])
    last = json.loads(made.stdout)
    assert last["deleted"] == [ids[0]]
    listed = json.loads(run_cli("backups", "--format", "json", cwd=project).stdout)["backups"]
    assert [b["id"] for b in listed] == [ids[2], ids[1]]
    log = (project / "backups" / "production" / "retention.log").read_text().splitlines()
    assert json.loads(log[0])["id"] == ids[0]
    assert not (project / "backups" / "production" / ids[0]).exists()


def test_backups_listing_needs_no_database_url(copy_scenario, run_cli, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    project = copy_scenario("backup_shop")
    write_config(project, sqlite_url)
    assert run_cli("upgrade", "--env", "development", cwd=project).exit_code == 0
    assert run_cli("backup", cwd=project).exit_code == 0
    toml = (project / "abmigrate.toml").read_text()
    (project / "abmigrate.toml").write_text(
        toml.replace(f'url = "{sqlite_url}"\n', 'url_env = "UNSET_DB_URL"\n', 1)
    )
    listed = run_cli("backups", cwd=project, env={"UNSET_DB_URL": None})
    assert listed.exit_code == 0, listed
    assert "0002_status" in listed.stdout and "yes" in listed.stdout
    verified = run_cli("verify-backup", "latest", cwd=project, env={"UNSET_DB_URL": None})
    assert verified.exit_code == 0, verified


def test_password_never_reaches_arguments_output_or_manifest(  # type: ignore[no-untyped-def]
    copy_scenario, run_cli, pg_url, tmp_path: Path
) -> None:
    # The test server trusts 127.0.0.1, so any password connects: what matters is where it goes.
    password = "S3cret-Pw-4711"
    url = pg_url.replace("postgres@", f"postgres:{password}@", 1)
    project = copy_scenario("backup_shop")
    write_config(project, url)
    shims = tmp_path / "shims"
    shims.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("pg_dump", "pg_restore", "psql"):
        real = _which(tool)
        shim = shims / tool
        shim.write_text(
            f'#!/bin/sh\necho "{tool} $* PGPASSWORD=${{PGPASSWORD:+set}}" >> {log}\n'
            f'exec {real} "$@"\n'
        )
        shim.chmod(0o755)
    env = {"PATH": f"{shims}:{os.environ['PATH']}"}
    assert run_cli("upgrade", "--env", "development", cwd=project).exit_code == 0
    outputs = [
        run_cli("backup", cwd=project, env=env),
        run_cli("verify-backup", "latest", "--restore-test", cwd=project, env=env),
        run_cli("restore", "latest", "--yes", cwd=project, env=env),
        run_cli("backups", "--format", "json", cwd=project, env=env),
    ]
    for result in outputs:
        assert result.exit_code == 0, result
        assert password not in result.stdout + result.stderr
    calls = log.read_text()
    assert "pg_dump --format=directory" in calls and "pg_restore" in calls and "psql" in calls
    assert password not in calls
    assert "PGPASSWORD=set" in calls  # it travelled through the environment
    for path in (project / "backups").rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    manifests = list((project / "backups").rglob("manifest.json"))
    assert manifests and all(password not in m.read_text() for m in manifests)


def _which(tool: str) -> str:
    import shutil

    found = shutil.which(tool)
    assert found, f"{tool} must be installed for the PostgreSQL backup tests"
    return found


def test_production_upgrade_of_a_sqlite_file_that_does_not_exist_yet(  # type: ignore[no-untyped-def]
    copy_scenario, run_cli, sqlite_url
) -> None:
    project = copy_scenario("backup_shop")
    write_config(project, sqlite_url)
    result = run_cli("upgrade", "0001_shop", "--yes", "--format", "json", cwd=project)
    assert result.exit_code == 0, result  # nothing existed, so nothing needed backing up
    assert json.loads(result.stdout)["backup"] is None
    # From now on there is something to lose: the next change is backed up first.
    result = run_cli("upgrade", "--yes", "--format", "json", cwd=project)
    assert result.exit_code == 0, result
    assert json.loads(result.stdout)["backup"]["revisions"] == ["0001_shop"]


def test_postgres_figures_match_the_dump_while_the_application_writes(  # type: ignore[no-untyped-def]
    copy_scenario, run_cli, pg_url
) -> None:
    import threading

    project = copy_scenario("backup_shop")
    write_config(project, pg_url)
    assert run_cli("upgrade", "0001_shop", "--env", "development", cwd=project).exit_code == 0
    execute(pg_url, "INSERT INTO orders SELECT g, 1, 'bulk', 1 FROM generate_series(1000, 60000) g")
    stop = threading.Event()
    written = [0]

    def write() -> None:
        engine = sa.create_engine(pg_url)
        try:
            with engine.connect() as connection:
                number = 100_000
                while not stop.is_set():
                    number += 1
                    connection.execute(
                        sa.text("INSERT INTO orders VALUES (:n, 2, 'live', 1)"), {"n": number}
                    )
                    connection.execute(sa.text("UPDATE customers SET score = score + 1"))
                    connection.commit()
                    written[0] += 1
        finally:
            engine.dispose()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        made = run_cli("backup", "--format", "json", cwd=project)
    finally:
        stop.set()
        writer.join()
    assert made.exit_code == 0, made
    assert written[0] > 0
    # Rows and checksums were read in pg_dump's own snapshot: the restored data matches them.
    verified = run_cli("verify-backup", "latest", "--restore-test", "--format", "json", cwd=project)
    assert verified.exit_code == 0, verified
    assert json.loads(verified.stdout)["restore_test"]["mismatches"] == []


def test_sqlite_backup_is_consistent_while_the_application_writes(  # type: ignore[no-untyped-def]
    copy_scenario, run_cli, sqlite_url
) -> None:
    import sqlite3
    import threading

    project = copy_scenario("backup_shop")
    write_config(project, sqlite_url)
    assert run_cli("upgrade", "0001_shop", "--env", "development", cwd=project).exit_code == 0
    path = sa.engine.make_url(sqlite_url).database
    assert path
    stop = threading.Event()
    written = [0]

    def write() -> None:
        connection = sqlite3.connect(path, timeout=30)
        try:
            number = 10_000
            while not stop.is_set():
                number += 1
                with connection:  # one transaction: a row and a matching update
                    connection.execute("INSERT INTO orders VALUES (?, 1, 'live', 1)", (number,))
                    connection.execute("UPDATE customers SET score = score + 1 WHERE id = 1")
                written[0] += 1
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        made = run_cli("backup", "--format", "json", cwd=project)
    finally:
        stop.set()
        writer.join()
    assert made.exit_code == 0, made
    assert written[0] > 0
    verified = run_cli("verify-backup", "latest", "--restore-test", "--format", "json", cwd=project)
    assert verified.exit_code == 0, verified
    # The copy is one state: as many live orders as score increments, whichever moment it was.
    target = f"sqlite:///{Path(path).parent / 'restored.db'}"
    assert run_cli("restore", "latest", "--target-url", target, cwd=project).exit_code == 0
    data = contents(target)
    live = sum(1 for row in data["orders"] if row[2] == "live")
    assert data["customers"][0][7] == 1 / 8 + live
