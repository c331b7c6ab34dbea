"""The pytest plugin, run by pytest's own pytester on sample projects: opt-in named checks,
a fresh database per test, `migrate` to any revision, "before revision X" data fixtures."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest_plugins = ["pytester"]


@pytest.fixture(params=["sqlite", "postgresql"])
def url_args(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "sqlite":
        return []
    return ["--abmigrate-url", request.getfixturevalue("pg_server_url")]


def project(pytester: pytest.Pytester, copy_scenario: Callable[..., Path], name: str) -> Path:
    path = copy_scenario(name, dest=pytester.path)
    pytester.makeini(f"[pytest]\nabmigrate_alembic_ini = {name}/alembic.ini\n")
    return path


def test_named_checks_are_tests_a_suite_opts_into(
    pytester: pytest.Pytester, copy_scenario: Callable[..., Path], url_args: list[str]
) -> None:
    project(pytester, copy_scenario, "check_index_left")
    pytester.makepyfile(
        test_migrations="""
        from abmigrate.pytest_plugin import abmigrate_check

        test_single_head = abmigrate_check("single_head")
        test_round_trip = abmigrate_check("round_trip")
        test_models_match_head = abmigrate_check("models_match_head")
        """
    )
    result = pytester.runpytest_subprocess("-rs", *url_args)
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*test_round_trip*",
            "*round_trip: revision c1a0000000a2 (add sku with an index on name): the downgrade"
            " leaves the schema different from before the upgrade*",
            "*extra index items.ix_items_name*left behind by the downgrade*",
            "*SKIPPED*no models*",
        ]
    )


def test_unknown_check_name_fails_collection_listing_the_valid_ones(
    pytester: pytest.Pytester, copy_scenario: Callable[..., Path]
) -> None:
    project(pytester, copy_scenario, "check_branched_merge")
    pytester.makepyfile(
        test_migrations="""
        from abmigrate.pytest_plugin import abmigrate_check

        test_heads = abmigrate_check("single_heads")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown check 'single_heads'*single_head, single_root*"])


def test_migrate_moves_a_fresh_database_to_any_revision(
    pytester: pytest.Pytester, copy_scenario: Callable[..., Path], url_args: list[str]
) -> None:
    project(pytester, copy_scenario, "check_branched_merge")
    pytester.makepyfile(
        test_migrate="""
        import sqlalchemy as sa

        def tables(migrate):
            with migrate.connect() as connection:
                return sorted(sa.inspect(connection).get_table_names())

        def test_walk(migrate, abmigrate_db):
            assert migrate.current == []
            assert migrate("head") == ["c5e0000000e5"]
            assert "item_suppliers" in tables(migrate)
            assert migrate("-1") == ["c5e0000000e4"]
            # As alembic does: down to e2 undoes what descends from it, not branch e3.
            assert sorted(migrate("c5e0000000e2")) == ["c5e0000000e2", "c5e0000000e3"]
            assert migrate("c5e0000000e1") == ["c5e0000000e1"]
            assert tables(migrate) == ["alembic_version", "items"]
            assert migrate("c5e0000000e3") == ["c5e0000000e3"]
            assert tables(migrate) == ["alembic_version", "items", "suppliers"]
            assert migrate("base") == []
            assert tables(migrate) == ["alembic_version"]

        def test_each_test_gets_its_own_empty_database(migrate):
            assert migrate.current == []
            assert tables(migrate) == []
        """
    )
    result = pytester.runpytest_subprocess(*url_args)
    result.assert_outcomes(passed=2)


def test_before_revision_seeds_rows_the_revision_then_migrates(
    pytester: pytest.Pytester, copy_scenario: Callable[..., Path], url_args: list[str]
) -> None:
    project(pytester, copy_scenario, "check_branched_merge")
    pytester.makepyfile(
        test_data="""
        import pytest
        import sqlalchemy as sa

        @pytest.mark.before_revision("c5e0000000e5")
        def test_links_table_starts_empty(before_revision, migrate):
            assert migrate.current == ["c5e0000000e4"]
            before_revision.execute(sa.text("INSERT INTO items (id, name) VALUES (1, 'bolt')"))
            before_revision.execute(sa.text("INSERT INTO suppliers (id, name) VALUES (7, 'acme')"))
            migrate("c5e0000000e5")
            with migrate.connect() as connection:
                assert connection.execute(sa.text("SELECT count(*) FROM items")).scalar() == 1
                assert connection.execute(
                    sa.text("SELECT count(*) FROM item_suppliers")
                ).scalar() == 0

        def test_before_as_a_context_manager(migrate):
            migrate("head")
            with migrate.before("c5e0000000e2") as connection:
                connection.execute(sa.text("INSERT INTO items (id, name) VALUES (1, 'nut')"))
            assert migrate.current == ["c5e0000000e1"]
            migrate("c5e0000000e2")
            with migrate.connect() as connection:
                row = connection.execute(sa.text("SELECT name, colour FROM items")).one()
            assert tuple(row) == ("nut", None)

        def test_mark_is_required(before_revision):
            pass
        """
    )
    result = pytester.runpytest_subprocess(*url_args)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*needs @pytest.mark.before_revision*"])


def test_scratch_databases_are_dropped_after_each_test(
    pytester: pytest.Pytester, copy_scenario: Callable[..., Path], pg_server_url: str
) -> None:
    project(pytester, copy_scenario, "check_branched_merge")
    names = pytester.path / "names.txt"
    pytester.makepyfile(
        test_drop=textwrap.dedent(
            f"""
            from sqlalchemy.engine import make_url

            def test_passes(abmigrate_db, migrate):
                migrate("head")
                open({str(names)!r}, "a").write(make_url(abmigrate_db.url).database + "\\n")

            def test_fails(abmigrate_db, migrate):
                migrate("head")
                open({str(names)!r}, "a").write(make_url(abmigrate_db.url).database + "\\n")
                raise AssertionError("boom")
            """
        )
    )
    result = pytester.runpytest_subprocess("--abmigrate-url", pg_server_url)
    result.assert_outcomes(passed=1, failed=1)
    created = names.read_text().split()
    assert len(created) == 2
    engine = sa.create_engine(pg_server_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            left = connection.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"),
                {"names": created},
            ).all()
    finally:
        engine.dispose()
    assert left == []


def test_a_real_data_migration_tested_before_and_after_its_revision(
    pytester: pytest.Pytester, url_args: list[str]
) -> None:
    # ABParts' 0b4d8f2c6e35 adds parts.unit_of_measure and backfills it from part_type.
    abparts_ini = Path(__file__).resolve().parents[2] / "examples" / "abparts" / "alembic.ini"
    pytester.makeini(f"[pytest]\nabmigrate_alembic_ini = {abparts_ini}\n")
    pytester.makepyfile(
        test_backfill="""
        import uuid

        import pytest
        import sqlalchemy as sa

        @pytest.mark.before_revision("0b4d8f2c6e35")
        def test_backfill_measures_bulk_material_in_liters(before_revision, migrate):
            parts = sa.Table("parts", sa.MetaData(), autoload_with=before_revision)
            assert "unit_of_measure" not in parts.c
            # SQLite stores the UUID as CHAR(32); PostgreSQL as a uuid.
            new_id = (lambda: uuid.uuid4().hex) if before_revision.dialect.name == "sqlite" \
                else uuid.uuid4
            before_revision.execute(
                parts.insert(),
                [
                    {"id": new_id(), "part_number": "P-1", "name": "oil",
                     "part_type": "bulk_material"},
                    {"id": new_id(), "part_number": "P-2", "name": "bolt",
                     "part_type": "consumable"},
                ],
            )
            migrate("0b4d8f2c6e35")
            with migrate.connect() as connection:
                rows = connection.execute(
                    sa.text("SELECT name, unit_of_measure FROM parts")
                ).all()
            assert dict(rows) == {"oil": "liters", "bolt": "pieces"}
            # and back: the downgrade removes the column, keeping the parts
            migrate("-1")
            with migrate.connect() as connection:
                assert connection.execute(sa.text("SELECT count(*) FROM parts")).scalar() == 2
        """
    )
    result = pytester.runpytest_subprocess(*url_args)
    result.assert_outcomes(passed=1)
