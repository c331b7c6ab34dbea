"""A warm `plan` is built from the cached graph and the analysis cache alone
(bridge.plan.plan_from_cache): the same steps, in the same order, with the same SQL as
the plan Alembic builds, and no Alembic import; anything the caches cannot answer goes to
Alembic as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import note_imports

from abmigrate import analysis_cache
from abmigrate.bridge.plan import build_plan, plan_from_cache
from abmigrate.config.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = {
    "linear": ROOT / "tests" / "scenarios" / "linear",
    "two_heads": ROOT / "tests" / "scenarios" / "two_heads",
    "check_branched_merge": ROOT / "tests" / "scenarios" / "check_branched_merge",
    "graph_shapes": ROOT / "tests" / "scenarios" / "graph_shapes",
    "abparts": ROOT / "examples" / "abparts",
}


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ABMIGRATE_CACHE_DIR", str(folder))
    analysis_cache.forget()
    return folder


def _workspace(project: Path, tmp_path: Path) -> Workspace:
    # ABParts' batch operations render no offline SQL for SQLite: its plan is PostgreSQL's
    # (offline SQL and a given start connect to nothing).
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    if project.name == "abparts":
        url = "postgresql+psycopg://nobody@127.0.0.1:9/nothing"
    return Workspace.open(alembic_ini=project / "alembic.ini", url=url)


def _starts(workspace: Workspace) -> list[list[str]]:
    """An empty database, one at each single revision below a head, one at the head(s)."""
    history = workspace.project.history()
    below = [[one.revision] for one in history if not one.is_head][:6]
    return [[], *below, [one.revision for one in history if one.is_head]]


def _steps(record: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (step["revision"], step["message"], step["from_revisions"], step["to_revisions"])
        for step in record["steps"]
    ]


@pytest.mark.parametrize("name", list(PROJECTS))
def test_the_cached_plan_is_the_plan_alembic_builds(
    name: str, tmp_path: Path, cache_dir: Path
) -> None:
    compared = 0
    # A workspace per command, as the CLI opens one (once Alembic has loaded the scripts,
    # the project asks Alembic, not the cache).
    for current in _starts(_workspace(PROJECTS[name], tmp_path)):
        built, _ = build_plan(
            _workspace(PROJECTS[name], tmp_path), "upgrade", "heads", current=current, with_sql=True
        )
        cached = plan_from_cache(
            _workspace(PROJECTS[name], tmp_path), "heads", current, with_sql=True
        )
        assert cached is not None, current
        assert _steps(cached.to_record()) == _steps(built.to_record())
        assert [step.sql for step in cached.steps] == [step.sql for step in built.steps]
        assert all(step.sql for step in cached.steps)
        assert cached.target_revisions == built.target_revisions
        compared += bool(built.steps)
    assert compared  # and the last start, at the head(s), had nothing to do


def test_what_the_caches_cannot_answer_is_left_to_alembic(
    copy_scenario: Any, tmp_path: Path, cache_dir: Path
) -> None:
    project = copy_scenario("linear")
    workspace = _workspace(project, tmp_path)
    # Never rendered: no SQL to take from the cache.
    assert plan_from_cache(workspace, "heads", [], with_sql=True) is None
    assert plan_from_cache(workspace, "heads", [], with_sql=False) is not None
    build_plan(_workspace(project, tmp_path), "upgrade", "heads", current=[], with_sql=True)
    workspace = _workspace(project, tmp_path)
    assert plan_from_cache(workspace, "heads", [], with_sql=True) is not None
    # Another target, or a database at a revision no script defines: Alembic decides.
    assert plan_from_cache(workspace, "+1", [], with_sql=True) is None
    assert plan_from_cache(workspace, "heads", ["0badc0ffee00"], with_sql=True) is None
    # A revision file edited since it was rendered: its SQL (and every later step's) is stale.
    script = sorted((project / "migrations" / "versions").glob("*.py"))[-1]
    script.write_text(script.read_text() + "\n# edited\n")
    edited = _workspace(project, tmp_path)
    assert plan_from_cache(edited, "heads", [], with_sql=True) is None


def test_two_heads_are_not_one_head(tmp_path: Path, cache_dir: Path) -> None:
    workspace = _workspace(PROJECTS["two_heads"], tmp_path)
    assert plan_from_cache(workspace, "head", [], with_sql=False) is None  # ambiguous
    assert plan_from_cache(workspace, "heads", [], with_sql=False) is not None


def test_a_warm_plan_with_sql_imports_no_revision(copy_scenario: Any, tmp_path: Path) -> None:
    # (The models prediction still runs env.py offline, which imports Alembic.)
    project = copy_scenario("linear")
    log = tmp_path / "imported.log"
    note_imports(sorted((project / "migrations" / "versions").glob("*.py")), log)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    env = {"ABMIGRATE_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, "-m", "abmigrate", "--alembic-ini", str(project / "alembic.ini")]

    def run() -> tuple[int, str]:
        log.write_text("")
        done = subprocess.run(
            [*argv, "--url", url, "plan", "--sql"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return len(log.read_text().splitlines()), done.stdout

    cold_imports, cold_output = run()
    assert cold_imports == 3  # the first plan renders the SQL through Alembic
    warm_imports, warm_output = run()
    assert warm_imports == 0
    assert warm_output == cold_output
    assert "CREATE TABLE" in warm_output
