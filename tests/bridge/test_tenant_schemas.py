"""Schema per tenant: one PostgreSQL database, one schema per tenant, each with its own
version table, selected by `-x tenant=NAME` (Alembic's cookbook recipe, followed unchanged).

status, upgrade (with its verification), stamp, diagnose and the journal all work on the
tenant's schema and its version table, and leave the other tenant alone.
"""

from __future__ import annotations

import json

from runner_helpers import query


def _revision(url: str, schema: str) -> list[tuple[str]]:
    return [
        (str(row[0]),) for row in query(url, f"SELECT version_num FROM {schema}.alembic_version")
    ]


def _tables(url: str, schema: str) -> list[str]:
    rows = query(url, f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'")
    return sorted(str(row[0]) for row in rows)


def test_two_tenants_in_two_schemas_each_with_its_own_version_table(copy_scenario, run_cli, pg_url):
    root = copy_scenario("tenant_schemas")
    env = {"DATABASE_URL": pg_url}

    def cli(tenant: str, *args: str):
        return run_cli("-x", f"tenant={tenant}", *args, cwd=root, env=env)

    acme = cli("acme", "upgrade")
    assert acme.exit_code == 0, acme
    assert "verified" in acme.stderr + acme.stdout
    globex = cli("globex", "upgrade", "t1")
    assert globex.exit_code == 0, globex
    assert _revision(pg_url, "acme") == [("t2",)]
    assert _revision(pg_url, "globex") == [("t1",)]
    assert _tables(pg_url, "acme") == [
        "abmigrate_journal",
        "alembic_version",
        "customers",
        "invoices",
    ]
    assert _tables(pg_url, "globex") == ["abmigrate_journal", "alembic_version", "customers"]
    assert _tables(pg_url, "public") == []

    acme_status = json.loads(cli("acme", "status", "--format", "json").stdout)
    globex_status = json.loads(cli("globex", "status", "--format", "json").stdout)
    assert (acme_status["current"], acme_status["state"]) == (["t2"], "up_to_date")
    assert (globex_status["current"], globex_status["state"]) == (["t1"], "behind")
    assert globex_status["last_run"]["revisions"] == 1

    # Each tenant's journal holds its own runs.
    acme_runs = json.loads(cli("acme", "journal", "--format", "json").stdout)["runs"]
    globex_runs = json.loads(cli("globex", "journal", "--format", "json").stdout)["runs"]
    assert [run["to_revisions"] for run in acme_runs] == [["t2"]]
    assert [run["to_revisions"] for run in globex_runs] == [["t1"]]

    # The stamp guard compares the tenant's own schema: globex is not at t2.
    stamp = cli("globex", "stamp", "t2")
    assert stamp.exit_code == 1, stamp
    assert "missing table invoices" in stamp.stderr
    assert _revision(pg_url, "globex") == [("t1",)]

    diagnosis = json.loads(cli("globex", "diagnose", "--format", "json").stdout)
    assert diagnosis["state"] == "behind"
    assert json.loads(cli("acme", "diagnose", "--format", "json").stdout)["state"] == "up_to_date"

    down = cli("acme", "downgrade", "-1", "--yes")
    assert down.exit_code == 0, down
    assert _revision(pg_url, "acme") == [("t1",)]
    assert _revision(pg_url, "globex") == [("t1",)]
    assert "invoices" not in _tables(pg_url, "acme")
