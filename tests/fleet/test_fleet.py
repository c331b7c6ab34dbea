"""Fleets: one history rolled out over PostgreSQL databases, tenant schemas of one database,
SQLite files and a MariaDB database — canary first, halt on failure, resume, shards.

The scenario `fleet_tenants` has three revisions: f1 (customers), f2 (invoices; slow on
demand through $FLEET_SLOW_REVISION_S) and f3 (a unique index on customers.email, which
fails on a tenant holding the same email twice: bad data).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import unique_db_name
from runner_helpers import execute, query, wait_until
from sqlalchemy.engine import make_url

PASSWORD = "Fl33tSekret"  # trust authentication ignores it; it must never be shown


@pytest.fixture
def pg_databases(pg_server_url: str) -> Iterator[Callable[[int], list[str]]]:
    """``make(n)``: n new PostgreSQL databases, their URLs carrying a password; dropped in
    parallel afterwards (a DROP DATABASE waits for a checkpoint: one at a time is slow)."""
    import psycopg

    server = make_url(pg_server_url)
    created: list[str] = []

    def admin(statement: str) -> None:
        with psycopg.connect(
            host=server.host,
            port=server.port,
            user=server.username,
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(statement)

    def make(count: int) -> list[str]:
        names = [unique_db_name() for _ in range(count)]
        for name in names:
            admin(f'CREATE DATABASE "{name}"')
            created.append(name)
        return [
            server.set(database=name, password=PASSWORD).render_as_string(hide_password=False)
            for name in names
        ]

    yield make
    threads = [
        threading.Thread(target=admin, args=(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',))
        for name in created
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _write_targets(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(["# the fleet", *lines, ""]), encoding="utf-8")
    return path


def _recorded(url: str, schema: str | None = None) -> str | None:
    table = f"{schema}.alembic_version" if schema else "alembic_version"
    try:
        rows = query(url, f"SELECT version_num FROM {table}")
    except Exception:
        return None
    return str(rows[0][0]) if rows else None


def _report(result: Any) -> dict[str, Any]:
    assert result.stdout.strip().startswith("{"), result
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {target["name"]: target["outcome"] for target in report["targets"]}


def test_a_fleet_of_databases_schemas_and_files_canary_halt_resume_and_drift(
    copy_scenario: Any, run_cli: Any, pg_url: str, pg_databases: Any, tmp_path: Path
) -> None:
    root = copy_scenario("fleet_tenants")
    databases = {f"d{number:02d}": url for number, url in enumerate(pg_databases(40), 1)}
    schemas = [f"s{number:02d}" for number in range(1, 21)]
    files = {f"q{number:02d}": f"sqlite:///{tmp_path}/q{number:02d}.db" for number in range(1, 11)}
    targets = _write_targets(
        tmp_path / "targets.txt",
        [f"{name}={url}" for name, url in databases.items()]
        + [f"schema:{schema}" for schema in schemas]
        + [f"{name}={url}" for name, url in files.items()],
    )
    env = {"DATABASE_URL": pg_url}

    def fleet(*args: str) -> Any:
        return run_cli(
            "fleet", *args, "--targets", str(targets), "--format", "json", cwd=root, env=env
        )

    def where_all() -> dict[str, str | None]:
        found = {name: _recorded(url) for name, url in {**databases, **files}.items()}
        found.update({schema: _recorded(pg_url, schema) for schema in schemas})
        return found

    outputs: list[str] = []

    # Every target to f2, four at a time.
    first = fleet("upgrade", "f2", "--concurrency", "8")
    outputs.append(first.stdout + first.stderr)
    assert first.exit_code == 0, first
    report = _report(first)
    assert set(_outcomes(report).values()) == {"succeeded"}
    assert len(report["targets"]) == 70
    assert set(where_all().values()) == {"f2"}
    summary = next(t for t in report["targets"] if t["name"] == "s03")
    assert (summary["from_revisions"], summary["to_revisions"]) == ([], ["f2"])
    assert summary["schema"] == "s03" and summary["applied"] == 2

    # Bad data in one tenant: f3 fails there. It is a canary: the rollout halts after the
    # canary cohort, and no other target is touched.
    execute(pg_url, "INSERT INTO s07.customers (email) VALUES ('A@x'), ('a@x')")
    halted = fleet("upgrade", "--canary", "s07,d01", "--concurrency", "8")
    outputs.append(halted.stdout + halted.stderr)
    assert halted.exit_code == 1, halted
    report = _report(halted)
    assert report["halted"] == "canary s07 failed"
    outcomes = _outcomes(report)
    assert outcomes["s07"] == "failed" and outcomes["d01"] == "succeeded"
    assert {name for name, outcome in outcomes.items() if outcome == "not_run"} == (
        set(outcomes) - {"s07", "d01"}
    )
    failed = next(t for t in report["targets"] if t["name"] == "s07")
    assert failed["to_revisions"] == ["f2"]
    assert failed["incident"] and (root / failed["incident"]).is_file()
    outputs.append((root / failed["incident"]).read_text(encoding="utf-8"))
    standing = where_all()
    assert standing.pop("d01") == "f3"
    assert set(standing.values()) == {"f2"}
    assert "canary s07 failed" in halted.stderr or "s07" in halted.stderr

    # The data fixed, the same command picks up where the fleet stands.
    execute(pg_url, "DELETE FROM s07.customers")
    resumed = fleet("upgrade", "--concurrency", "8")
    outputs.append(resumed.stdout + resumed.stderr)
    assert resumed.exit_code == 0, resumed
    outcomes = _outcomes(_report(resumed))
    assert outcomes.pop("d01") == "up_to_date"
    assert set(outcomes.values()) == {"succeeded"}
    assert set(where_all().values()) == {"f3"}

    # Fleet status: every target at head, their schemas identical per dialect; a table
    # made by hand in one tenant is flagged with its difference.
    status = fleet("status", "--concurrency", "8")
    assert status.exit_code == 0, status
    groups = {group["dialect"]: group for group in _report(status)["groups"]}
    assert (groups["postgresql"]["identical"], groups["postgresql"]["differ"]) == (60, [])
    assert (groups["sqlite"]["identical"], groups["sqlite"]["differ"]) == (10, [])
    # Compared with the schema f3 produces (replayed), not only with each other.
    assert {group["compared_with"] for group in groups.values()} == {"revision"}
    execute(databases["d05"], "CREATE TABLE stray (id integer)")
    # The same hand change in every SQLite file: alike among themselves, all unlike f3.
    for url in files.values():
        execute(url, "CREATE TABLE extra (id integer)")
    drifted = fleet("status", "--concurrency", "8")
    outputs.append(drifted.stdout + drifted.stderr)
    assert drifted.exit_code == 1, drifted
    group = {group["dialect"]: group for group in _report(drifted)["groups"]}["postgresql"]
    assert group["identical"] == 59
    assert [item["name"] for item in group["differ"]] == ["d05"]
    assert "stray" in group["differ"][0]["difference"]
    on_files = {group["dialect"]: group for group in _report(drifted)["groups"]}["sqlite"]
    assert on_files["identical"] == 0
    assert sorted(item["name"] for item in on_files["differ"]) == sorted(files)
    assert all("extra" in item["difference"] for item in on_files["differ"])
    human = run_cli(
        "fleet", "status", "--targets", str(targets), cwd=root, env={**env, "COLUMNS": "80"}
    )
    outputs.append(human.stdout + human.stderr)
    said = " ".join(human.stdout.split())
    assert "against the schema f3 produces: 59 identical, 1 differ: d05" in said
    assert max(len(line) for line in human.stdout.splitlines()) <= 80

    # Passwords: never in a report, a summary line, an error or an incident report.
    log = root / ".abmigrate" / "journal.jsonl"
    if log.exists():
        outputs.append(log.read_text(encoding="utf-8"))
    assert all(PASSWORD not in text for text in outputs)
    assert any("***" in text for text in outputs)


def _sqlite_fleet(tmp_path: Path, names: list[str]) -> tuple[Path, dict[str, str]]:
    files = {name: f"sqlite:///{tmp_path}/{name}.db" for name in names}
    targets = _write_targets(tmp_path / "targets.txt", [f"{n}={u}" for n, u in files.items()])
    return targets, files


def test_the_failure_budget_halts_and_continue_on_error_goes_on(
    copy_scenario: Any, run_cli: Any, tmp_path: Path
) -> None:
    root = copy_scenario("fleet_tenants")
    targets, files = _sqlite_fleet(tmp_path, ["a", "b", "c", "d", "e", "f"])

    def fleet(*args: str) -> Any:
        return run_cli("fleet", *args, "--targets", str(targets), "--format", "json", cwd=root)

    assert fleet("upgrade", "f2").exit_code == 0
    for bad in ("b", "d"):
        execute(files[bad], "INSERT INTO customers (email) VALUES ('A@x'), ('a@x')")

    # One failure is within the budget; the second is one too many: nothing after it starts.
    budget = fleet("upgrade", "--failure-budget", "1", "--concurrency", "1")
    assert budget.exit_code == 1, budget
    report = _report(budget)
    assert report["halted"] == "2 targets failed (failure budget 1)"
    assert _outcomes(report) == {
        "a": "succeeded",
        "b": "failed",
        "c": "succeeded",
        "d": "failed",
        "e": "not_run",
        "f": "not_run",
    }
    assert (_recorded(files["e"]), _recorded(files["f"])) == ("f2", "f2")

    # Asked to, the rollout goes on whatever fails, and still says it failed.
    onward = fleet("upgrade", "--continue-on-error", "--concurrency", "2")
    assert onward.exit_code == 1, onward
    report = _report(onward)
    assert report["halted"] is None
    assert _outcomes(report) == {
        "a": "up_to_date",
        "b": "failed",
        "c": "up_to_date",
        "d": "failed",
        "e": "succeeded",
        "f": "succeeded",
    }


def test_a_guarded_fleet_is_confirmed_once_for_all_targets_or_not_at_all(
    copy_scenario: Any, run_cli: Any, tmp_path: Path
) -> None:
    root = copy_scenario("fleet_tenants")
    targets, files = _sqlite_fleet(tmp_path, ["a", "b", "c"])
    args = ("fleet", "upgrade", "--env", "production", "--targets", str(targets))
    refused = run_cli(*args, cwd=root)
    assert refused.exit_code == 1, refused
    assert "production requires confirmation to upgrade 3 targets" in refused.stderr
    assert "--yes" in refused.stderr
    assert not any(Path(url.removeprefix("sqlite:///")).exists() for url in files.values())
    confirmed = run_cli(*args, "--yes", "--format", "json", cwd=root)
    assert confirmed.exit_code == 0, confirmed
    report = _report(confirmed)
    assert report["environment"] == "production"
    assert set(_outcomes(report).values()) == {"succeeded"}


def test_each_target_is_backed_up_apart_where_the_policy_requires_it(
    copy_scenario: Any, run_cli: Any, tmp_path: Path
) -> None:
    root = copy_scenario("fleet_tenants")
    targets, _ = _sqlite_fleet(tmp_path, ["a", "b"])
    args = ("fleet", "upgrade", "f1", "--env", "staging", "--yes", "--targets", str(targets))
    assert run_cli(*args, cwd=root).exit_code == 0
    second = run_cli(
        *args[:2],
        "--env",
        "staging",
        "--yes",
        "--targets",
        str(targets),
        "--format",
        "json",
        cwd=root,
    )
    assert second.exit_code == 0, second
    for target in _report(second)["targets"]:
        assert target["outcome"] == "succeeded"
        backup = Path(target["backup"])
        assert backup.parent == root / "backups" / target["name"] / "staging", backup
        assert backup.exists()
    # The first run found no database file (nothing to back up); the second backed each up
    # into a folder of its own, so one target's retention never deletes another's backups.
    assert {name: len(list((root / "backups" / name / "staging").iterdir())) for name in "ab"} == {
        "a": 1,
        "b": 1,
    }


def test_mariadb_and_sqlite_in_one_fleet_up_and_down(
    copy_scenario: Any, run_cli: Any, mariadb_url: str, tmp_path: Path
) -> None:
    root = copy_scenario("fleet_tenants")
    sqlite = f"sqlite:///{tmp_path}/local.db"
    targets = _write_targets(tmp_path / "targets.txt", [f"maria={mariadb_url}", sqlite])

    def fleet(*args: str) -> Any:
        return run_cli("fleet", *args, "--targets", str(targets), "--format", "json", cwd=root)

    up = fleet("upgrade", "--concurrency", "2")
    assert up.exit_code == 0, up
    assert _outcomes(_report(up)) == {"maria": "succeeded", "local": "succeeded"}
    assert (_recorded(mariadb_url), _recorded(sqlite)) == ("f3", "f3")
    relative = fleet("downgrade", "-1")
    assert relative.exit_code == 2, relative
    assert "absolute target" in relative.stderr
    down = fleet("downgrade", "f1")
    assert down.exit_code == 0, down
    assert (_recorded(mariadb_url), _recorded(sqlite)) == ("f1", "f1")


# -- several processes -------------------------------------------------------------------


def _start(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ABMIGRATE_ENV", "ENVIRONMENT", "DATABASE_URL")
    }
    environment.update({"NO_COLOR": "1", "COLUMNS": "80", **(env or {})})
    return subprocess.Popen(
        [sys.executable, "-m", "abmigrate", "fleet", *args, "--format", "json"],
        cwd=root,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    stdout, stderr = process.communicate(timeout=300)
    assert stdout.strip().startswith("{"), stderr
    return process.returncode, json.loads(stdout), stderr


def test_resume_after_the_fleet_process_is_killed_mid_rollout(
    copy_scenario: Any, run_cli: Any, pg_databases: Any, tmp_path: Path
) -> None:
    root = copy_scenario("fleet_tenants")
    urls = dict(zip([f"t{n}" for n in range(1, 9)], pg_databases(8), strict=True))
    targets = _write_targets(tmp_path / "targets.txt", [f"{n}={u}" for n, u in urls.items()])
    process = _start(
        root,
        "upgrade",
        "--targets",
        str(targets),
        "--concurrency",
        "2",
        env={"FLEET_SLOW_REVISION_S": "1"},
    )
    try:
        wait_until(
            lambda: sum(_recorded(url) == "f3" for url in urls.values()) >= 2,
            "two targets at head",
        )
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)

    # Each target stands at one revision, its tables exactly that revision's.
    tables_at = {
        None: set(),
        "f1": {"customers"},
        "f2": {"customers", "invoices"},
        "f3": {"customers", "invoices"},
    }
    before = {}
    for name, url in urls.items():
        revision = _recorded(url)
        before[name] = revision
        tables = {
            str(row[0])
            for row in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        } - {"alembic_version", "abmigrate_journal"}
        assert tables == tables_at[revision], (name, revision, tables)
        index = query(url, "SELECT 1 FROM pg_indexes WHERE indexname = 'ux_customers_email'")
        assert bool(index) == (revision == "f3"), name
    assert list(before.values()).count("f3") < len(urls), "the fleet finished before the kill"

    rerun = run_cli("fleet", "upgrade", "--targets", str(targets), "--format", "json", cwd=root)
    assert rerun.exit_code == 0, rerun
    outcomes = _outcomes(_report(rerun))
    assert outcomes == {
        name: "up_to_date" if before[name] == "f3" else "succeeded" for name in urls
    }
    assert {_recorded(url) for url in urls.values()} == {"f3"}


def test_two_fleet_runs_at_once_never_migrate_a_target_twice(
    copy_scenario: Any, tmp_path: Path
) -> None:
    root = copy_scenario("fleet_tenants")
    targets, files = _sqlite_fleet(tmp_path, [f"t{n}" for n in range(1, 7)])
    args = ("upgrade", "--targets", str(targets), "--concurrency", "3")
    slow = {"FLEET_SLOW_REVISION_S": "0.2"}
    first, second = _start(root, *args, env=slow), _start(root, *args, env=slow)
    (code_a, report_a, err_a), (code_b, report_b, err_b) = _finish(first), _finish(second)
    assert (code_a, code_b) == (0, 0), err_a + err_b
    a, b = _outcomes(report_a), _outcomes(report_b)
    for name, url in files.items():
        assert sorted([a[name], b[name]]) == ["succeeded", "up_to_date"], name
        runs = query(url, "SELECT record FROM abmigrate_journal")
        applied = [json.loads(row[0]) for row in runs]
        assert [len(run.get("applied") or []) for run in applied if run.get("applied")] == [3]
        assert _recorded(url) == "f3"


def test_shards_cover_every_target_exactly_once(
    copy_scenario: Any, run_cli: Any, tmp_path: Path
) -> None:
    root = copy_scenario("fleet_tenants")
    names = [f"tenant-{n}" for n in range(1, 13)]
    targets, files = _sqlite_fleet(tmp_path, names)
    processes = [
        _start(root, "upgrade", "--targets", str(targets), "--shard", f"{k}/3") for k in (1, 2, 3)
    ]
    shards = []
    for process in processes:
        code, report, stderr = _finish(process)
        assert code == 0, stderr
        assert set(_outcomes(report).values()) == {"succeeded"}
        shards.append(set(_outcomes(report)))
    assert sorted(name for shard in shards for name in shard) == sorted(names)
    assert all(shard for shard in shards)
    # The per-target journals are the truth: status from anywhere sees the whole fleet.
    status = run_cli("fleet", "status", "--targets", str(targets), "--format", "json", cwd=root)
    assert status.exit_code == 0, status
    report = _report(status)
    assert {t["name"]: (t["state"], t["last_run"]) for t in report["targets"]} == {
        name: ("up_to_date", "succeeded") for name in names
    }
    assert {_recorded(url) for url in files.values()} == {"f3"}
