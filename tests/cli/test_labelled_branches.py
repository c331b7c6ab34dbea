"""A history with two heads by design, each in its own labelled branch (expand/contract, as
OpenStack keeps them), end to end through the CLI on SQLite and PostgreSQL: heads and status
list each head with its branch and give no merge advice, `upgrade` without a target applies
both branches, an explicit `head` is refused with the way out, and an accidental second
head inside one labelled branch is still flagged everywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from runner_helpers import version_rows

BACKENDS = ["sqlite_url", "pg_url"]
HEADS = ["b300expand02", "b30contract1"]


@pytest.fixture(params=BACKENDS, ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def project(copy_scenario: Callable[..., Path]) -> Path:
    return copy_scenario("labelled_branches")


@pytest.fixture
def cli(project: Path, run_cli: Callable[..., Any], db_url: str) -> Callable[..., Any]:
    def run(*args: str) -> Any:
        return run_cli(
            "--alembic-ini",
            project / "alembic.ini",
            "--url",
            db_url,
            *args,
            cwd=project,
            env={"COLUMNS": "80"},
        )

    return run


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _second_expand_head(project: Path) -> None:
    versions = project / "migrations" / "versions"
    text = (versions / "b300expand02.py").read_text()
    (versions / "b300expand2b.py").write_text(
        text.replace("b300expand02", "b300expand2b").replace('"tags"', '"labels"')
    )


def _fits(text: str) -> None:
    """Every line within 80 columns (but the database's URL: a temporary path, unbroken)."""
    lines = [line for line in text.splitlines() if not line.startswith("database ")]
    assert all(len(line) <= 80 for line in lines), text


def test_heads_and_status_name_each_branch_without_merge_advice(cli: Any) -> None:
    heads = cli("heads")
    assert heads.exit_code == 0, heads
    assert "b300expand02 (head of expand)  expand: create tags" in heads.stdout
    assert "b30contract1 (head of contract)  contract: drop old notes" in heads.stdout
    assert "one per labelled branch" in heads.stdout
    assert "merge" not in heads.stdout + heads.stderr
    _fits(heads.stdout)
    record = json.loads(cli("heads", "--format", "json").stdout)
    assert record["multiple"] is True
    assert record["branches"] == {"b300expand02": ["expand"], "b30contract1": ["contract"]}

    status = cli("status")
    assert status.exit_code == 0, status
    assert "heads        expand b300expand02, contract b30contract1" in status.stdout
    assert "merge" not in status.stdout + status.stderr
    _fits(status.stdout)
    record = json.loads(cli("status", "--format", "json").stdout)
    assert record["graph_problems"] == []
    assert record["branches"] == {"b300expand02": ["expand"], "b30contract1": ["contract"]}


def test_upgrade_without_a_target_applies_every_branch(cli: Any, db_url: str) -> None:
    plan = json.loads(cli("plan", "--format", "json").stdout)
    assert sorted(plan["target_revisions"]) == HEADS
    assert len(plan["steps"]) == 4

    upgraded = cli("upgrade")
    assert upgraded.exit_code == 0, upgraded
    rows, tables = version_rows(db_url), _tables(db_url)
    assert rows == HEADS
    assert {"items", "tags"} <= tables and "old_notes" not in tables
    assert json.loads(cli("status", "--format", "json").stdout)["state"] == "up_to_date"


def test_an_explicit_head_is_refused_with_the_branches_named(cli: Any, db_url: str) -> None:
    refused = cli("upgrade", "head")
    assert refused.exit_code == 1, refused
    first, hint = refused.stderr.strip().splitlines()[-2:]
    assert first.startswith("error: several head revisions, one per labelled branch:")
    assert "expand b300expand02, contract b30contract1" in first
    assert hint.startswith("hint: upgrade to `heads`")
    assert "expand@head, contract@head" in hint
    assert "merge" not in refused.stderr
    assert "Traceback" not in refused.stderr

    # One branch by its label, then the rest by default.
    assert cli("upgrade", "expand@head").exit_code == 0
    assert version_rows(db_url) == ["b300expand02"]
    assert cli("upgrade").exit_code == 0
    assert version_rows(db_url) == HEADS


def test_a_second_head_inside_a_labelled_branch_is_still_flagged(
    cli: Any, project: Path, db_url: str
) -> None:
    _second_expand_head(project)
    heads = cli("heads")
    assert "3 heads: run `abmigrate merge" in heads.stdout
    status = json.loads(cli("status", "--format", "json").stdout)
    assert {p["code"] for p in status["graph_problems"]} == {"multiple_heads"}
    assert status["branches"] == {}

    refused = cli("upgrade")
    assert refused.exit_code == 1, refused
    assert "several head revisions: b300expand02, b300expand2b, b30contract1" in refused.stderr
    assert "abmigrate merge" in refused.stderr
    assert "items" not in _tables(db_url)  # refused before anything ran

    checked = cli("check", "--checks", "single_head", "--format", "json")
    assert checked.exit_code == 1, checked
    [single_head] = json.loads(checked.stdout)["checks"]
    assert sorted(f["revision"] for f in single_head["failures"]) == [
        "b300expand02",
        "b300expand2b",
        "b30contract1",
    ]
    linted = cli("lint", "--format", "json")
    assert "AM701" in linted.stdout


def test_check_and_lint_pass_the_branches(cli: Any) -> None:
    checked = cli("check", "--checks", "single_head,single_root,graph_integrity")
    assert checked.exit_code == 0, checked
    assert "2 heads, one per labelled branch: expand b300expand02," in checked.stdout
    linted = cli("lint", "--format", "json")
    assert linted.exit_code == 0, linted
    assert "AM701" not in linted.stdout


def test_merge_leaves_deliberate_branches_apart(cli: Any, project: Path) -> None:
    refused = cli("merge")
    assert refused.exit_code == 1, refused
    first, hint = refused.stderr.strip().splitlines()[-2:]
    assert first == (
        "error: nothing to merge: the heads are deliberate, one per labelled branch:"
        " expand b300expand02, contract b30contract1"
    )
    assert hint.startswith("hint: to join branches anyway, name the revisions")
    assert sorted(p.name for p in (project / "migrations" / "versions").glob("*.py")) == [
        "b3000000root.py",
        "b300expand01.py",
        "b300expand02.py",
        "b30contract1.py",
    ]
    # Named, they are merged: the user's decision.
    merged = cli("merge", "b300expand02", "b30contract1", "--format", "json")
    assert merged.exit_code == 0, merged
    assert sorted(json.loads(merged.stdout)["down_revisions"]) == HEADS


def test_merge_joins_only_the_heads_that_share_a_branch(cli: Any, project: Path) -> None:
    _second_expand_head(project)
    merged = cli("merge", "-m", "join expand", "--format", "json")
    assert merged.exit_code == 0, merged
    record = json.loads(merged.stdout)
    assert sorted(record["down_revisions"]) == ["b300expand02", "b300expand2b"]
    # contract stays its own branch: the history is deliberate again, and upgrades.
    heads = json.loads(cli("heads", "--format", "json").stdout)
    assert heads["branches"] == {record["revision"]: ["expand"], "b30contract1": ["contract"]}
    assert cli("check", "--checks", "single_head").exit_code == 0
    assert cli("upgrade").exit_code == 0


def test_merge_of_one_named_revision_is_a_usage_error(cli: Any) -> None:
    refused = cli("merge", "b300expand02")
    assert refused.exit_code == 1, refused
    assert "a merge joins two revisions or more; 1 named" in refused.stderr
    assert "Traceback" not in refused.stderr
