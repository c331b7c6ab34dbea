"""`diagnose`, `drift` and the guarded `stamp` on the states real teams end up in.

Each scenario builds its database state with the real CLI plus hand-made SQL, then checks
that `diagnose` names the true state and the right command, and that `stamp` refuses the
wrong revision and accepts the right one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from runner_helpers import execute_all as execute
from runner_helpers import version_rows
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

R1, R2, R3, R4 = "5a1e00000001", "5a1e00000002", "5a1e00000003", "5a1e00000004"


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite_url", "pg_url"], ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


Cli = Callable[..., Any]


@pytest.fixture(scope="session")
def replay_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Replays are keyed by script contents, env.py, dialect and server version: sharing the
    # cache between these tests is what a team sharing a checkout gets, and saves time.
    return tmp_path_factory.mktemp("replay-cache")


def make_cli(
    copy_scenario: Any,
    run_cli: Any,
    url: str,
    cache: Path | None = None,
    project: Path | None = None,
) -> Cli:
    project = project or copy_scenario("state_shop")
    env = {"ABMIGRATE_CACHE_DIR": str(cache) if cache else None}

    def cli(*args: str) -> Any:
        return run_cli(
            "--alembic-ini", project / "alembic.ini", "--url", url, *args, cwd=project, env=env
        )

    cli.project = project  # type: ignore[attr-defined]
    return cli


@pytest.fixture
def shop(copy_scenario: Any, run_cli: Any, db_url: str, replay_cache: Path) -> Cli:
    return make_cli(copy_scenario, run_cli, db_url, replay_cache)


def diagnosis(cli: Cli) -> tuple[int, dict[str, Any]]:
    result = cli("diagnose", "--format", "json")
    assert result.exit_code in (0, 1), result
    return result.exit_code, json.loads(result.stdout)


def test_renamed_revision_is_matched_and_restamped(shop: Cli, db_url: str) -> None:
    assert shop("upgrade", R3).exit_code == 0
    # The script of R3 was renamed after this database applied it under its old id.
    execute(db_url, ["UPDATE alembic_version SET version_num = '0ld1d0000003'"])

    code, report = diagnosis(shop)
    assert code == 1
    assert report["state"] == "unknown_revision"
    assert report["unknown"] == ["0ld1d0000003"]
    assert report["exact_matches"] == [R3]
    assert report["recommendation"]["commands"] == [f"abmigrate stamp {R3}", "abmigrate upgrade"]

    wrong = shop("stamp", R2)
    assert wrong.exit_code == 1, wrong
    assert "refusing to stamp" in wrong.stderr
    assert "extra column customers.email" in wrong.stderr
    assert version_rows(db_url) == ["0ld1d0000003"]

    right = shop("stamp", R3)
    assert right.exit_code == 0, right
    assert "matches it exactly" in right.stdout
    assert version_rows(db_url) == [R3]
    code, report = diagnosis(shop)
    assert (code, report["state"]) == (0, "behind")


def test_objects_made_by_hand_are_listed(shop: Cli, db_url: str) -> None:
    assert shop("upgrade").exit_code == 0
    execute(
        db_url,
        [
            "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, note VARCHAR(200))",
            "ALTER TABLE customers ADD COLUMN phone VARCHAR(30)",
            "CREATE INDEX ix_orders_total ON orders (total)",
        ],
    )
    code, report = diagnosis(shop)
    assert code == 1
    assert report["state"] == "hand_changes"
    summary = report["recommendation"]["summary"]
    for name in ("table audit_log", "column customers.phone", "index orders.ix_orders_total"):
        assert name in summary
    assert report["nearest"][0]["revision"] == R4
    described = [d["description"] for d in report["model_drift"]]
    assert any(line.startswith("extra column customers.phone") for line in described)

    refused = shop("stamp", "head")
    assert refused.exit_code == 1
    assert "extra table audit_log" in refused.stderr
    assert "extra column customers.phone: VARCHAR(30) NULL" in refused.stderr

    for against in ("models", "head", R4):
        drift = shop("drift", "--against", against, "--format", "json")
        assert drift.exit_code == 1, drift
        names = {d["name"] for d in json.loads(drift.stdout)["differences"]}
        assert {"audit_log", "customers.phone", "orders.ix_orders_total"} <= names

    forced = shop("stamp", "head", "--force", "--reason", "hotfix index, ticket 42")
    assert forced.exit_code == 0, forced
    assert "forced: hotfix index, ticket 42" in forced.stdout
    # Recorded in the journal: its table in the database and the local log.
    log = shop.project / ".abmigrate" / "journal.jsonl"  # type: ignore[attr-defined]
    assert "hotfix index, ticket 42" in log.read_text()
    engine = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT kind, outcome, record FROM abmigrate_journal WHERE kind = 'stamp'")
            ).all()
    finally:
        engine.dispose()
    assert [(kind, outcome) for kind, outcome, _ in rows] == [("stamp", "forced_stamp")]
    recorded = json.loads(rows[0][2])
    assert recorded["reason"] == "hotfix index, ticket 42"
    assert any("customers.phone" in line for line in recorded["differences"])

    no_reason = shop("stamp", "head", "--force")
    assert no_reason.exit_code == 2
    assert "--reason" in no_reason.stderr


def test_database_at_one_revision_stamped_at_another(shop: Cli, db_url: str) -> None:
    assert shop("upgrade", R2).exit_code == 0
    execute(db_url, [f"UPDATE alembic_version SET version_num = '{R4}'"])

    code, report = diagnosis(shop)
    assert code == 1
    assert report["state"] == "wrong_stamp"
    assert report["exact_matches"] == [R2]
    assert report["recommendation"]["commands"] == [f"abmigrate stamp {R2}", "abmigrate upgrade"]

    refused = shop("stamp", R4)
    assert refused.exit_code == 1
    assert "missing column customers.email" in refused.stderr
    assert shop("stamp", R2).exit_code == 0
    assert version_rows(db_url) == [R2]
    assert shop("upgrade").exit_code == 0
    code, report = diagnosis(shop)
    assert (code, report["state"], report["model_drift"]) == (0, "up_to_date", [])


def test_schema_matching_no_revision(shop: Cli, db_url: str) -> None:
    assert shop("upgrade").exit_code == 0
    execute(
        db_url,
        [
            "DROP INDEX ix_customers_email" + (" ON customers" if "mysql" in db_url else ""),
            "CREATE TABLE legacy_notes (id INTEGER PRIMARY KEY)",
        ],
    )
    code, report = diagnosis(shop)
    assert code == 1
    assert report["state"] == "no_match"
    assert report["exact_matches"] == []
    nearest = report["nearest"][0]
    assert nearest["revision"] == R4
    described = [d["description"] for d in nearest["differences"]]
    assert any(line.startswith("missing index customers.ix_customers_email") for line in described)
    assert any(line.startswith("extra table legacy_notes") for line in described)
    assert "abmigrate restore BACKUP_ID" in report["recommendation"]["commands"]
    assert shop("stamp", R4).exit_code == 1
    assert shop("stamp", R3).exit_code == 1


def test_unstamped_and_uninitialized(shop: Cli, db_url: str, tmp_path: Path) -> None:
    code, report = diagnosis(shop)
    assert (code, report["state"]) == (0, "uninitialized")
    assert report["recommendation"]["commands"] == ["abmigrate upgrade"]
    if db_url.startswith("sqlite"):
        assert not (tmp_path / "test.db").exists()  # diagnose did not create the file

    assert shop("upgrade").exit_code == 0
    execute(db_url, ["DROP TABLE alembic_version"])
    code, report = diagnosis(shop)
    assert report["state"] == "unstamped"
    assert report["recommendation"]["commands"] == [f"abmigrate stamp {R4}"]
    assert shop("stamp", R3).exit_code == 1
    assert shop("stamp", R4).exit_code == 0


def test_second_diagnose_uses_the_cache(copy_scenario: Any, run_cli: Any, db_url: str) -> None:
    shop = make_cli(copy_scenario, run_cli, db_url)  # its own cache, in the project folder
    assert shop("upgrade").exit_code == 0
    _, first = diagnosis(shop)
    assert first["replayed"] == 4
    _, second = diagnosis(shop)
    assert (second["replayed"], second["cached"]) == (0, 4)
    assert second["state"] == "up_to_date"
    # Editing a script invalidates it (and its descendants) only.
    script = shop.project / "migrations" / "versions" / f"{R4}.py"  # type: ignore[attr-defined]
    script.write_text(script.read_text() + "\n# edited\n")
    _, third = diagnosis(shop)
    assert (third["replayed"], third["cached"]) == (1, 3)


def test_diagnose_and_drift_write_nothing_sqlite(
    copy_scenario: Any, run_cli: Any, sqlite_url: str, replay_cache: Path
) -> None:
    shop = make_cli(copy_scenario, run_cli, sqlite_url, replay_cache)
    assert shop("upgrade", R3).exit_code == 0
    execute(sqlite_url, ["ALTER TABLE customers ADD COLUMN phone VARCHAR(30)"])
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for args in (
        ("diagnose",),
        ("drift",),
        ("drift", "--against", "head"),
        ("drift", "--against", R3),
        ("stamp", R4),
    ):
        assert shop(*args).exit_code == 1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_diagnose_and_drift_write_nothing_postgresql(
    copy_scenario: Any, run_cli: Any, pg_url: str, replay_cache: Path
) -> None:
    cli = make_cli(copy_scenario, run_cli, pg_url, replay_cache)
    assert cli("upgrade", R3).exit_code == 0
    execute(
        pg_url,
        [
            "INSERT INTO customers (name) VALUES ('ada')",
            "ALTER TABLE customers ADD COLUMN phone VARCHAR(30)",
        ],
    )

    def snapshot() -> tuple[Any, ...]:
        engine = sa.create_engine(pg_url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                stats = connection.execute(
                    sa.text(
                        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
                        " FROM pg_stat_user_tables"
                    )
                ).scalar()
                rows = connection.execute(sa.text("SELECT * FROM customers")).all()
                return stats, rows, sorted(sa.inspect(connection).get_table_names())
        finally:
            engine.dispose()

    execute(pg_url, ["SELECT pg_stat_force_next_flush()"])
    before = snapshot()
    for args in (("diagnose",), ("drift",), ("drift", "--against", "head"), ("stamp", R4)):
        assert cli(*args).exit_code == 1
    assert version_rows(pg_url) == [R3]
    assert snapshot() == before


def test_partially_applied_mariadb_revision(
    copy_scenario: Any, run_cli: Any, mariadb_url: str, replay_cache: Path
) -> None:
    cli = make_cli(copy_scenario, run_cli, mariadb_url, replay_cache)
    assert cli("upgrade", R3).exit_code == 0
    execute(mariadb_url, ["INSERT INTO customers (name) VALUES ('ada'), ('ada')"])
    # Data preflight predicts the duplicates and refuses; overriding it reproduces the
    # half-applied revision that MariaDB (no transactional DDL) leaves behind.
    refused = cli("upgrade")
    assert refused.exit_code == 1 and "preflight predicts failure" in refused.stderr, refused
    failed = cli("upgrade", "--override", "reproduce a partial failure")
    assert failed.exit_code == 1, failed  # the unique constraint meets the duplicates
    assert version_rows(mariadb_url) == [R3]

    code, report = diagnosis(cli)
    assert code == 1
    assert report["state"] == "partially_applied"
    partial = report["partial"]
    assert (partial["revision"], partial["parent"]) == (R4, R3)
    assert "adds column orders.status: VARCHAR(20) NULL" in partial["applied"]
    assert any(line.startswith("adds index orders.ix_orders_status") for line in partial["applied"])
    assert [line.split(":")[0] for line in partial["not_applied"]] == [
        "adds index customers.uq_customers_name"  # MariaDB keeps a UNIQUE as a unique index
    ]
    # Against the models only the missing constraint shows (no '0' vs '0.00' default noise).
    assert [d["name"] for d in report["model_drift"]] == ["customers.uq_customers_name"]
    assert (
        f"abmigrate stamp {R3} && abmigrate upgrade   # after undoing"
        in (report["recommendation"]["commands"])
    )
    assert cli("stamp", R3).exit_code == 1
    assert cli("stamp", R4).exit_code == 1

    # Undo the part applied, as the recommendation says: R3 then matches again.
    execute(
        mariadb_url,
        ["DROP INDEX ix_orders_status ON orders", "ALTER TABLE orders DROP COLUMN status"],
    )
    code, report = diagnosis(cli)
    assert (code, report["state"]) == (0, "behind")


def test_capture_revision_for_hand_made_objects(shop: Cli, db_url: str, tmp_path: Path) -> None:
    assert shop("upgrade").exit_code == 0
    execute(
        db_url,
        [
            "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, note VARCHAR(200))",
            "ALTER TABLE customers ADD COLUMN phone VARCHAR(30)",
            "CREATE INDEX ix_orders_total ON orders (total)",
        ],
    )
    written = shop("diagnose", "--write-revision", "-m", "capture hotfixes", "--format", "json")
    assert written.exit_code == 0, written
    created = json.loads(written.stdout)
    assert created["down_revisions"] == [R4]
    source = Path(created["path"]).read_text()
    assert "audit_log" in source and "phone" in source and "ix_orders_total" in source
    assert f"abmigrate stamp {created['revision']}" in written.stderr

    # The guarded stamp replays the new revision and finds exactly the live schema.
    stamped = shop("stamp", created["revision"])
    assert stamped.exit_code == 0, stamped
    code, report = diagnosis(shop)
    assert report["state"] == "up_to_date"
    assert report["exact_matches"] == [created["revision"]]
    # The models do not have these objects yet: that is still reported (and exits 1).
    assert code == 1
    assert {d["name"] for d in report["model_drift"]} >= {"audit_log", "customers.phone"}
    assert shop("diagnose", "--no-models").exit_code == 0


def test_two_unmerged_heads_applied(copy_scenario: Any, run_cli: Any, sqlite_url: str) -> None:
    project = copy_scenario("two_heads")

    def cli(*args: str) -> Any:
        return run_cli("--alembic-ini", project / "alembic.ini", "--url", sqlite_url, *args)

    assert cli("upgrade", "heads").exit_code == 0
    assert version_rows(sqlite_url) == ["b200000left1", "b20000right1"]
    report = json.loads(cli("diagnose", "--format", "json").stdout)
    assert report["state"] == "up_to_date"  # both rows, and the schema is both branches
    assert report["exact_matches"] == []  # no single revision has both branches' objects
    assert {p["code"] for p in report["graph_problems"]} == {"multiple_heads"}
    assert cli("drift", "--against", "heads").exit_code == 0
    assert cli("stamp", "heads").exit_code == 0

    execute(sqlite_url, ["ALTER TABLE tags ADD COLUMN label VARCHAR(20)"])
    report = json.loads(cli("diagnose", "--format", "json").stdout)
    assert report["state"] == "hand_changes"
    assert "column tags.label" in report["recommendation"]["summary"]
    refused = cli("stamp", "heads")
    assert refused.exit_code == 1
    assert "extra column tags.label" in refused.stderr


def test_unfinished_journal_run_is_evidence(shop: Cli, db_url: str) -> None:
    assert shop("upgrade", R3).exit_code == 0
    # The journal row a run writes when it starts, left as it is when the process dies.
    execute(
        db_url,
        [
            "INSERT INTO abmigrate_journal (run_id, kind, environment, started_at, outcome,"
            f" in_flight, record) VALUES ('20261125T120000-dead', 'upgrade', 'production',"
            f" '2026-11-25T12:00:00', 'running', '{R4}', '{{}}')",
        ],
    )
    code, report = diagnosis(shop)
    assert code == 1
    assert report["state"] == "behind"  # the journal table itself is not schema drift
    assert report["unfinished_runs"][0]["in_flight"] == R4
    assert any(
        "20261125T120000-dead" in line and "never finished" in line and R4 in line
        for line in report["evidence"]
    )


def test_graph_problems_are_reported(copy_scenario: Any, run_cli: Any, sqlite_url: str) -> None:
    project = copy_scenario("state_shop")
    script = project / "migrations" / "versions" / f"{R4}.py"
    original = script.read_text()

    def cli(*args: str) -> Any:
        return run_cli("--alembic-ini", project / "alembic.ini", "--url", sqlite_url, *args)

    # A down_revision naming a revision no script defines: reported, not a crash.
    script.write_text(original.replace(f'down_revision = "{R3}"', 'down_revision = "5a1e0000000x"'))
    broken = cli("diagnose", "--format", "json")
    assert broken.exit_code == 1, broken
    report = json.loads(broken.stdout)
    assert report["state"] == "graph_broken"
    assert "5a1e0000000x" in report["recommendation"]["summary"]

    # An id longer than alembic_version.version_num holds.
    long_id = R4 + "_much_too_long_for_the_column"
    script.write_text(original.replace(R4, long_id))
    result = cli("diagnose", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["state"] == "uninitialized"
    assert [p["code"] for p in report["graph_problems"]] == ["id_too_long"]


def test_without_the_right_to_create_databases(
    copy_scenario: Any, run_cli: Any, pg_url: str
) -> None:
    role = "abm_nocreatedb_" + make_url(pg_url).database.rsplit("_", 1)[-1]  # type: ignore[union-attr]
    execute(pg_url, [f"CREATE ROLE {role} LOGIN NOCREATEDB"])
    try:
        cli = make_cli(copy_scenario, run_cli, pg_url)
        assert cli("upgrade").exit_code == 0
        execute(pg_url, [f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"])
        limited_url = make_url(pg_url).set(username=role).render_as_string(hide_password=False)
        limited = make_cli(copy_scenario, run_cli, limited_url, project=cli.project)  # type: ignore[attr-defined]
        result = limited("diagnose", "--format", "json")
        assert result.exit_code == 1, result
        report = json.loads(result.stdout)
        assert report["state"] == "not_compared"
        assert report["recorded"] == [R4]
        assert "CREATEDB" in " ".join(report["recommendation"]["commands"])
        assert report["model_drift"] == []  # still compared with the models
        refused = limited("stamp", R4)
        assert refused.exit_code == 1  # the guard cannot check, so it does not stamp
        assert "cannot check" in refused.stderr
    finally:
        execute(pg_url, [f"DROP OWNED BY {role}", f"DROP ROLE {role}"])


def test_replays_never_reach_a_database_url_env_py_prefers(
    copy_scenario: Any, run_cli: Any, pg_url: str
) -> None:
    # An env.py that reads $DATABASE_URL before sqlalchemy.url (a common pattern).
    project = copy_scenario("state_shop")
    env_py = project / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text()
        .replace("import sys\n", "import os\nimport sys\n", 1)
        .replace(
            "    connectable = engine_from_config(\n"
            "        config.get_section(config.config_ini_section, {}),\n"
            '        prefix="sqlalchemy.",\n',
            "    section = config.get_section(config.config_ini_section, {})\n"
            '    section["sqlalchemy.url"] = os.environ.get("DATABASE_URL") or section["sqlalchemy.url"]\n'
            "    connectable = engine_from_config(\n"
            "        section,\n"
            '        prefix="sqlalchemy.",\n',
        )
    )
    assert 'os.environ.get("DATABASE_URL")' in env_py.read_text()

    def cli(*args: str) -> Any:
        return run_cli(
            "--alembic-ini",
            project / "alembic.ini",
            "--url",
            pg_url,
            *args,
            cwd=project,
            env={"DATABASE_URL": pg_url},
        )

    assert cli("upgrade", R2).exit_code == 0
    execute(pg_url, ["INSERT INTO customers (name) VALUES ('ada')"])
    code, report = diagnosis(cli)
    assert (code, report["state"], report["exact_matches"]) == (0, "behind", [R2])
    rehearsal = cli("rehearse", "--clone", "--format", "json")
    assert rehearsal.exit_code == 0, rehearsal
    assert version_rows(pg_url) == [R2]
    # The real database is still at R2: no replay or rehearsal step ran against it.
    # abmigrate_journal holds the upgrade's own run record, nothing the rehearsal wrote
    assert table_names(pg_url) == {"alembic_version", "abmigrate_journal", "customers", "orders"}
    engine = sa.create_engine(pg_url, poolclass=NullPool)
    try:
        columns = {column["name"] for column in sa.inspect(engine).get_columns("customers")}
    finally:
        engine.dispose()
    assert "email" not in columns


def test_an_empty_database_is_uninitialized_when_the_first_revision_changes_nothing(
    copy_scenario: Any, run_cli: Any, db_url: str
) -> None:
    # The first revision only adapts a table when there is one (dagster's history starts so):
    # an empty database has the schema of the base and of that revision alike. It is still
    # an empty database to upgrade, not one to stamp: a stamp would skip what the revision
    # does besides the schema.
    cli = make_cli(copy_scenario, run_cli, db_url, project=copy_scenario("guarded_start"))
    code, report = diagnosis(cli)
    assert (code, report["state"]) == (0, "uninitialized"), report["recommendation"]
    assert report["recommendation"]["commands"] == ["abmigrate upgrade"]
    assert report["exact_matches"] == ["base", "6a0000000001"]

    assert cli("upgrade").exit_code == 0
    execute(db_url, ["DROP TABLE alembic_version"])
    code, report = diagnosis(cli)
    assert report["state"] == "unstamped"
    assert report["recommendation"]["commands"] == ["abmigrate stamp 6a0000000002"]
