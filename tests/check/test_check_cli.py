"""`abmigrate check` end to end on the scenario projects: each failure named precisely
(revision, SQL, difference), exit codes, output formats, and the URL's own database left
alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

BACKENDS = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(params=BACKENDS)
def server_args(request: pytest.FixtureRequest) -> list[str]:
    """The --url option pointing check at a server (none: temporary SQLite files)."""
    if request.param == "sqlite":
        return []
    fixture = "pg_url" if request.param == "postgresql" else "mariadb_url"
    return ["--url", request.getfixturevalue(fixture)]


def run_check(
    run_cli: Callable[..., Any], project: Path, *args: str, output: str = "json"
) -> tuple[Any, Any]:
    result = run_cli("--alembic-ini", project / "alembic.ini", "check", "--format", output, *args)
    data = json.loads(result.stdout) if output == "json" and result.stdout.strip() else None
    return result, data


def outcome(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(check for check in data["checks"] if check["name"] == name)


def test_downgrade_that_forgets_an_index_is_named_with_sql_and_difference(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], server_args: list[str]
) -> None:
    project = copy_scenario("check_index_left")
    result, data = run_check(run_cli, project, "--checks", "round_trip", *server_args)
    assert result.exit_code == 1, result
    round_trip = outcome(data, "round_trip")
    assert round_trip["status"] == "failed"
    [failure] = round_trip["failures"]
    assert failure["revision"] == "c1a0000000a2"
    assert failure["path"].endswith("c1a0000000a2.py")
    assert any("index items.ix_items_name" in line for line in failure["differences"])
    assert "DROP COLUMN sku" in failure["sql"]
    # The walk went on after the failure: the next revision was checked too.
    assert round_trip["summary"] == "1 of 3 revision(s) fail"


def test_downgrade_raising_not_implemented_is_named_and_the_walk_goes_on(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], server_args: list[str]
) -> None:
    project = copy_scenario("check_not_implemented")
    result, data = run_check(run_cli, project, "--checks", "round_trip", *server_args)
    assert result.exit_code == 1, result
    [failure] = outcome(data, "round_trip")["failures"]
    assert failure["revision"] == "c2b0000000b2"
    assert "the downgrade fails" in failure["message"]
    assert failure["detail"] == "NotImplementedError: prices cannot be undone"
    # c2b0000000b3 (after the broken one) was round-tripped and passed.
    assert outcome(data, "round_trip")["summary"] == "1 of 3 revision(s) fail"


def test_revision_without_a_downgrade_function_is_named_and_the_walk_goes_on(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    # OpenStack's histories (keystone's) define no downgrade() at all: Alembic fails when it
    # builds the step. That is the revision's round-trip failure, not the check's crash.
    project = copy_scenario("check_not_implemented")
    script = project / "migrations" / "versions" / "c2b0000000b2.py"
    text = script.read_text()
    script.write_text(text[: text.index("def downgrade()")])
    result, data = run_check(run_cli, project, "--checks", "round_trip")
    assert result.exit_code == 1, result
    [failure] = outcome(data, "round_trip")["failures"]
    assert failure["revision"] == "c2b0000000b2"
    assert "the downgrade fails" in failure["message"]
    assert "has no attribute 'downgrade'" in failure["detail"]
    assert failure["sql"].startswith("-- cannot render offline: AttributeError")
    assert outcome(data, "round_trip")["summary"] == "1 of 3 revision(s) fail"


def test_branched_history_with_a_merge_round_trips_each_revision_once(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], server_args: list[str]
) -> None:
    project = copy_scenario("check_branched_merge")
    # Every default check but lint (the scenario's plain CREATE INDEX is a lint error).
    result, data = run_check(run_cli, project, "--skip", "lint", *server_args)
    assert result.exit_code == 0, result
    assert outcome(data, "round_trip")["summary"] == "5 revision(s) round-tripped"
    assert outcome(data, "models_match_head")["status"] == "passed"
    assert [c["name"] for c in data["checks"]] == [
        "single_head",
        "single_root",
        "graph_integrity",
        "models_match_head",
        "round_trip",
    ]
    assert data["passed"] is True


@pytest.mark.parametrize("backend", ["sqlite", "pg_url", "mariadb_url"])
def test_models_that_drifted_from_head_are_named_difference_by_difference(
    run_cli: Callable[..., Any],
    copy_scenario: Callable[..., Path],
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    # On MariaDB the unchanged boolean server default reads back as 1 (the model says true):
    # the same default, which must not be reported.
    server_args = ["--url", request.getfixturevalue(backend)] if backend != "sqlite" else []
    project = copy_scenario("check_models_drift")
    result, data = run_check(run_cli, project, "--checks", "models_match_head", *server_args)
    assert result.exit_code == 1, result
    [failure] = outcome(data, "models_match_head")["failures"]
    assert failure["revision"] == "c4d0000000d1"
    differences = "\n".join(failure["differences"])
    assert "changed column users.email: type VARCHAR(200) → VARCHAR(100)" in differences
    assert "missing column users.nickname" in differences
    assert "in the models, no migration creates it" in differences
    assert len(failure["differences"]) == 2  # the unchanged server default is not reported


def test_models_check_is_skipped_without_models(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_two_heads")
    result, data = run_check(run_cli, project, "--checks", "models_match_head")
    assert result.exit_code == 0, result
    assert outcome(data, "models_match_head")["status"] == "skipped"
    assert "no models" in outcome(data, "models_match_head")["summary"]


def test_lint_check_fails_on_error_findings_new_since_the_base(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_index_left")
    result, data = run_check(run_cli, project, "--checks", "lint")
    assert result.exit_code == 1, result
    [failure] = outcome(data, "lint")["failures"]
    assert failure["revision"] == "c1a0000000a2"
    assert failure["message"].startswith("AM101 ")
    assert failure["path"].endswith("c1a0000000a2.py") and failure["line"]
    assert failure["sql"] == "CREATE INDEX ix_items_name ON items (name)"
    # Since c1a0000000a2 only c1a0000000a3 is new: no error there.
    result, data = run_check(run_cli, project, "--checks", "lint", "--since", "c1a0000000a2")
    assert result.exit_code == 0, result
    assert outcome(data, "lint")["summary"].startswith("1 revision(s) linted")


def test_two_heads_fail_single_head_naming_both(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_two_heads")
    result, data = run_check(run_cli, project, "--checks", "single_head,single_root")
    assert result.exit_code == 1, result
    heads = outcome(data, "single_head")
    assert heads["status"] == "failed"
    assert sorted(f["revision"] for f in heads["failures"]) == ["c3c0000000c2", "c3c0000000c3"]
    assert "abmigrate merge" in heads["failures"][0]["hint"]
    assert outcome(data, "single_root")["status"] == "passed"


def test_one_head_and_one_root_per_labelled_branch_pass(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    # graph_shapes: `core` and `audit` each have their own root and head (Alembic's
    # "multiple bases"); check_two_heads above keeps unlabelled heads failing.
    project = copy_scenario("graph_shapes")
    result, data = run_check(run_cli, project, "--checks", "single_head,single_root")
    assert result.exit_code == 0, result
    assert outcome(data, "single_head")["summary"] == (
        "2 heads, one per labelled branch: core c4000000core, audit a3000000audit"
    )
    assert outcome(data, "single_root")["summary"] == (
        "2 roots, one per labelled branch: core c1000000core, audit a1000000audit"
    )


def test_human_output_shows_revision_difference_and_sql(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_index_left")
    result, _ = run_check(run_cli, project, "--checks", "round_trip", output="human")
    assert result.exit_code == 1, result
    assert "✗ round_trip" in result.stdout
    assert "revision c1a0000000a2 (add sku with an index on name)" in result.stdout
    assert "extra index items.ix_items_name: (name) — left behind by the downgrade" in result.stdout
    assert "ALTER TABLE items DROP COLUMN sku" in result.stdout
    assert "FAILED: 1 of 1 check (round_trip)" in result.stdout


def test_github_format_annotates_the_revision_file(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], tmp_path: Path
) -> None:
    project = copy_scenario("check_not_implemented")
    result, _ = run_check(run_cli, project, "--checks", "round_trip", output="github")
    assert result.exit_code == 1, result
    [annotation] = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert annotation.startswith(
        "::error file=check_not_implemented/migrations/versions/c2b0000000b2.py,"
        "title=abmigrate check round_trip::"
    )
    assert "%0Aerror: NotImplementedError: prices cannot be undone" in annotation
    assert "\n" not in annotation


def test_unknown_check_is_a_usage_error_listing_the_valid_ones(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_branched_merge")
    result, _ = run_check(run_cli, project, "--checks", "round_trip,single_heads", output="human")
    assert result.exit_code == 2, result
    assert "unknown check 'single_heads'" in result.stderr
    assert "single_head, single_root, graph_integrity" in result.stderr
    assert result.stdout == ""


def test_check_never_changes_the_database_the_url_names(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], pg_url: str
) -> None:
    project = copy_scenario("check_branched_merge")
    result, _ = run_check(run_cli, project, "--checks", "round_trip", "--url", pg_url)
    assert result.exit_code == 0, result
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            assert sa.inspect(connection).get_table_names() == []
    finally:
        engine.dispose()
    assert "abm_scratch" not in result.stdout


def test_list_shows_every_check_with_its_rationale(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_branched_merge")
    result = run_cli("--alembic-ini", project / "alembic.ini", "check", "--list")
    assert result.exit_code == 0, result
    assert "round_trip: Every downgrade exactly undoes its upgrade." in result.stdout
    assert "single_head: The history has one head, or one per labelled branch." in result.stdout


def test_abparts_history_round_trips_on_postgresql(
    run_cli: Callable[..., Any], pg_url: str
) -> None:
    # Real-world revisions: enum types dropped in downgrades and created again by the next
    # upgrade, a merge, an autocommit block. Each revision is round-tripped once.
    project = Path(__file__).resolve().parents[2] / "examples" / "abparts"
    result, data = run_check(run_cli, project, "--checks", "round_trip", "--url", pg_url)
    assert result.exit_code == 0, result
    assert outcome(data, "round_trip")["summary"] == "10 revision(s) round-tripped"


def test_graph_integrity_names_dangling_parents_duplicates_and_long_ids(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_branched_merge")
    versions = project / "migrations" / "versions"
    template = (versions / "c5e0000000e5.py").read_text()
    # A down_revision naming a file instead of a revision id.
    (versions / "c5e0000000e6.py").write_text(
        template.replace('"c5e0000000e5"', '"c5e0000000e6"').replace(
            "'c5e0000000e4'", '"c5e0000000e5_link_items.py"'
        )
    )
    # The same id in a second file.
    (versions / "copy_of_e5.py").write_text(template)
    # An id that does not fit alembic_version.version_num (32 characters).
    long_id = "c5e0000000e7_" + "x" * 27
    (versions / "long.py").write_text(
        template.replace('"c5e0000000e5"', f'"{long_id}"').replace(
            "'c5e0000000e4'", '"c5e0000000e5"'
        )
    )
    result, data = run_check(run_cli, project, "--checks", "graph_integrity")
    assert result.exit_code == 1, result
    messages = [f["message"] for f in outcome(data, "graph_integrity")["failures"]]
    assert any(
        m.startswith("revision c5e0000000e5 is defined more than once") and "copy_of_e5.py" in m
        for m in messages
    ), messages
    assert any("c5e0000000e5_link_items.py" in m for m in messages), messages
    assert any(long_id in m and "40 characters" in m for m in messages), messages


def test_password_in_the_url_never_appears_in_any_output(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], pg_server_url: str
) -> None:
    # The test server trusts local connections, so any password is accepted: the point is
    # only whether it leaks into what check prints.
    url = sa.engine.make_url(pg_server_url).set(password="s3cret-pw-xyz")
    project = copy_scenario("check_not_implemented")
    for output in ("human", "json", "github"):
        result, _ = run_check(
            run_cli,
            project,
            "--checks",
            "round_trip",
            "--url",
            url.render_as_string(hide_password=False),
            output=output,
        )
        assert result.exit_code == 1, result
        assert "s3cret-pw-xyz" not in result.stdout + result.stderr
        assert "***" in result.stdout or output == "github"


def test_interrupted_check_drops_its_scratch_database(
    copy_scenario: Callable[..., Path], pg_server_url: str, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    project = copy_scenario("check_branched_merge")
    # A revision that sleeps, so the check is surely mid-walk when the signal comes; it
    # leaves a mark when it starts, for the signal to wait for.
    versions = project / "migrations" / "versions"
    started = tmp_path / "sleeping"
    (versions / "c5e0000000f9.py").write_text(
        '"""sleep"""\nimport time\nrevision = "c5e0000000f9"\ndown_revision = "c5e0000000e5"\n'
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n"
        f"    open({str(started)!r}, 'w').close()\n    time.sleep(60)\n\n\n"
        "def downgrade():\n    pass\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "abmigrate",
            "--alembic-ini",
            str(project / "alembic.ini"),
            "check",
            "--checks",
            "round_trip",
            "--url",
            pg_server_url,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    pattern = f"abm_scratch_round_trip_{process.pid}_%"
    engine = sa.create_engine(pg_server_url, poolclass=sa.pool.NullPool)

    def scratch_count() -> int:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text("SELECT count(*) FROM pg_database WHERE datname LIKE :p"),
                    {"p": pattern},
                ).scalar_one()
            )

    try:
        # Generous bounds, not waits: each loop ends as soon as its state is reached. On a
        # loaded CI machine, DROP DATABASE alone waits for a checkpoint of the whole server.
        deadline = time.monotonic() + 300
        while not started.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # well into the walk (the sleeping revision comes last)
        assert started.exists(), "the sleeping revision never started"
        assert scratch_count() == 1
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 130, stderr
        assert "interrupted" in stderr
        assert scratch_count() == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_data_round_trip_names_the_downgrade_that_loses_rows(
    run_cli: Callable[..., Any],
    copy_scenario: Callable[..., Path],
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    server_args = ["--url", request.getfixturevalue("pg_url")] if backend == "postgresql" else []
    project = copy_scenario("check_data_loss")
    # Opt-in: not among the default checks; round_trip sees no schema difference here.
    result, data = run_check(run_cli, project, *server_args)
    assert "data_round_trip" not in [c["name"] for c in data["checks"]]
    result, data = run_check(
        run_cli, project, "--checks", "round_trip,data_round_trip", *server_args
    )
    assert result.exit_code == 1, result
    assert outcome(data, "round_trip")["status"] == "passed"
    [failure] = outcome(data, "data_round_trip")["failures"]
    assert failure["revision"] == "c6f0000000f2"
    assert "the downgrade loses data" in failure["message"]
    [lost] = failure["differences"]
    assert lost.startswith("column items.price: 3 value(s) not given back by the downgrade")
    assert "DROP TABLE prices" in failure["sql"]
    assert outcome(data, "data_round_trip")["summary"] == "1 of 3 revision(s) fail"
    assert "psycopg" not in result.stderr


def test_a_migration_raising_inside_the_models_check_fails_that_check_only(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], pg_url: str
) -> None:
    # The project's bug (a revision raising) surfaces in models_match_head, which upgrades a
    # scratch database to head: that check fails with the error, every other check still
    # runs and reports, and the exit code is 1 (findings), not 2 (usage).
    project = copy_scenario("raises")
    (project / "models.py").write_text(
        "import sqlalchemy as sa\n"
        "metadata = sa.MetaData()\n"
        'sa.Table("orders", metadata, sa.Column("id", sa.Integer, primary_key=True))\n'
    )
    (project / "abmigrate.toml").write_text(
        'alembic_ini = "alembic.ini"\nmodels = "models:metadata"\n'
    )
    result = run_cli("check", "--format", "json", "--url", pg_url, cwd=project)
    assert result.exit_code == 1, result
    data = json.loads(result.stdout)
    statuses = {check["name"]: check["status"] for check in data["checks"]}
    assert statuses == {
        "single_head": "passed",
        "single_root": "passed",
        "graph_integrity": "passed",
        "lint": "passed",
        "models_match_head": "failed",
        "round_trip": "failed",
    }
    [failure] = outcome(data, "models_match_head")["failures"]
    assert failure["message"] == "RuntimeError: data conflict: 3 orders have no customer"
    assert "unexpected" not in result.stderr
