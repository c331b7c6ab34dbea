"""The per-revision analysis cache: a second run analyses nothing again, an edit re-analyses.

Whether the cache was used is told by what was not called (the capture, the offline render,
the lock parser are made to fail) and by the cache's own counters and files, never by time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from abmigrate import analysis_cache, api
from abmigrate.config.workspace import Workspace

ENUM_REVISIONS = {
    "e0000001": '''"""create kinds with an enum"""
from alembic import op
import sqlalchemy as sa

revision = "e0000001"
down_revision = None


def upgrade():
    op.create_table(
        "widgets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.Enum("a", "b", name="kind")),
    )


def downgrade():
    op.drop_table("widgets")
''',
    "e0000002": '''"""gadgets share the kind enum"""
from alembic import op
import sqlalchemy as sa

revision = "e0000002"
down_revision = "e0000001"


def upgrade():
    op.create_table(
        "gadgets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.Enum("a", "b", name="kind")),
    )


def downgrade():
    op.drop_table("gadgets")
''',
}


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ABMIGRATE_CACHE_DIR", raising=False)
    _new_process()
    yield
    _new_process()


def _new_process() -> None:
    """What a new abmigrate process starts with: the cache files, nothing read yet."""
    analysis_cache.forget()
    analysis_cache.stats.clear()


def _records(folder: Path, kind: str) -> dict[str, Any]:
    return dict(json.loads((folder / f"{kind}.json").read_text()))


def _workspace(project: Path, tmp_path: Path) -> Workspace:
    return Workspace.open(
        alembic_ini=project / "alembic.ini",
        url=f"sqlite:///{tmp_path / 'absent.db'}",  # never created: plans read no rows
        cwd=project,
    )


def _findings(result: Any) -> list[tuple[str | None, str, int | None, str]]:
    return sorted((f.revision, f.code, f.line, f.message) for f in result.findings)


def _fail(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("analysed again although nothing changed")


def _entries(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*.json")
    }


def test_a_second_lint_renders_and_parses_nothing(
    copy_scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_scenario("lint_preflight")
    first = api.lint(_workspace(project, tmp_path))
    assert analysis_cache.stats["capture.write"] == 3
    assert analysis_cache.stats["findings.write"] == 3
    folder = project / ".abmigrate" / "analysis"
    assert len(_records(folder, "capture")) == 3

    _new_process()
    monkeypatch.setattr("abmigrate.lint.engine.capture_revision", _fail)
    monkeypatch.setattr("abmigrate.lint.sql.parse_statements", _fail)
    second = api.lint(_workspace(project, tmp_path))
    assert _findings(second) == _findings(first)
    assert second.suppressed == first.suppressed
    assert second.revisions == first.revisions
    assert analysis_cache.stats["capture.hit"] == 3
    assert analysis_cache.stats["findings.hit"] == 3
    assert not any(key.endswith((".miss", ".write")) for key in analysis_cache.stats)


def test_an_edited_revision_is_analysed_again_and_its_findings_change(
    copy_scenario: Any, tmp_path: Path
) -> None:
    project = copy_scenario("lint_preflight")
    before = api.lint(_workspace(project, tmp_path))
    assert "AM101" not in {f.code for f in before.for_revision("c0ffee000003")}

    script = next((project / "migrations" / "versions").glob("c0ffee000003*.py"))
    source = script.read_text()
    script.write_text(
        source.replace(
            "def upgrade():\n",
            'def upgrade():\n    op.create_index("ix_parts_name", "parts", ["name"])\n',
            1,
        )
    )
    _new_process()
    after = api.lint(_workspace(project, tmp_path))
    added = [f for f in after.for_revision("c0ffee000003") if f.code == "AM101"]
    assert added and "ix_parts_name" in added[0].message
    # only the edited revision was captured again; the others came from the cache
    assert analysis_cache.stats["capture.miss"] == 1
    assert analysis_cache.stats["capture.hit"] == 2
    assert analysis_cache.stats["findings.hit"] == 2
    unchanged = [f for f in _findings(after) if f[0] != "c0ffee000003"]
    assert unchanged == [f for f in _findings(before) if f[0] != "c0ffee000003"]


def test_the_cache_gives_what_a_fresh_analysis_gives_after_edits(
    copy_scenario: Any, tmp_path: Path
) -> None:
    """Alembic remembers, within one offline run, the enum types it created: the second
    revision renders no CREATE TYPE while the first creates it. Editing the first must
    re-analyse the second too (its capture is keyed by that memory)."""
    project = copy_scenario("linear")
    versions = project / "migrations" / "versions"
    for path in versions.glob("*.py"):
        path.unlink()
    for revision, source in ENUM_REVISIONS.items():
        (versions / f"{revision}.py").write_text(source)

    def fresh() -> Any:
        from abmigrate.lint.workspace import lint_config

        workspace = _workspace(project, tmp_path)
        from abmigrate.lint import lint_project

        return lint_project(workspace.project, config=lint_config(workspace), graph=False)

    def cached() -> Any:
        from abmigrate.lint import lint_workspace

        return lint_workspace(_workspace(project, tmp_path), graph=False)

    cached()
    assert [e[0] for e in cached().facts["e0000002"].effects] == ["create_table"]
    first = versions / "e0000001.py"
    first.write_text(first.read_text().replace('sa.Enum("a", "b", name="kind")', "sa.Text"))
    _new_process()
    edited = cached()
    # the second revision now creates the type itself: analysed again, not taken from cache
    assert analysis_cache.stats["capture.miss"] == 2
    assert [e[0] for e in edited.facts["e0000002"].effects] == ["create_enum", "create_table"]
    assert _findings(edited) == _findings(fresh())
    assert edited.facts["e0000002"].effects == fresh().facts["e0000002"].effects


def test_changing_the_lint_configuration_recomputes_findings_only(
    copy_scenario: Any, tmp_path: Path
) -> None:
    project = copy_scenario("lint_preflight")
    api.lint(_workspace(project, tmp_path))
    (project / "abmigrate.toml").write_text('[lint]\nignore = ["AM1"]\n')
    _new_process()
    result = api.lint(_workspace(project, tmp_path))
    assert not [f for f in result.findings if f.code.startswith("AM1")]
    assert analysis_cache.stats["capture.hit"] == 3
    assert analysis_cache.stats["findings.miss"] == 3


def test_plan_sql_is_rendered_once_and_again_after_an_edit(
    copy_scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from abmigrate.bridge.project import AlembicProject

    project = copy_scenario("linear")
    first = api.plan(_workspace(project, tmp_path), sql=True)
    assert analysis_cache.stats["sql.write"] == 3

    _new_process()
    with monkeypatch.context() as patched:
        patched.setattr(AlembicProject, "render_sql", _fail)
        patched.setattr("abmigrate.lint.engine.capture_revision", _fail)
        second = api.plan(_workspace(project, tmp_path), sql=True)
    assert [s.sql for s in second.steps] == [s.sql for s in first.steps]
    assert [s.findings for s in second.steps] == [s.findings for s in first.steps]

    script = project / "migrations" / "versions" / "a1f0c0de0002.py"
    script.write_text(script.read_text().replace('"email"', '"contact_email"', 1))
    third = api.plan(_workspace(project, tmp_path), sql=True)
    assert "contact_email" in (third.steps[1].sql or "")
    assert "contact_email" not in (first.steps[1].sql or "")
    assert third.steps[0].sql == first.steps[0].sql


def test_an_edited_env_py_renders_the_sql_again(copy_scenario: Any, tmp_path: Path) -> None:
    project = copy_scenario("linear")
    first = api.plan(_workspace(project, tmp_path), sql=True)
    env_py = project / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "literal_binds=True,", 'literal_binds=True,\n        version_table="history",'
        )
    )
    _new_process()
    plan = api.plan(_workspace(project, tmp_path), sql=True)
    # The first step already missed (asked by plan_from_cache, then by Alembic's plan):
    # every step rendered again.
    assert analysis_cache.stats["sql.miss"] == 2
    assert analysis_cache.stats["sql.write"] == 3
    assert analysis_cache.stats["capture.miss"] == 3  # env.py is part of every key
    # the revisions are recorded in another table now
    assert all("history" in (step.sql or "") for step in plan.steps)
    assert not any("history" in (step.sql or "") for step in first.steps)


def test_a_step_that_does_not_render_is_not_cached(copy_scenario: Any, tmp_path: Path) -> None:
    # SQLite cannot render ALTER ... ADD CONSTRAINT offline: that step has an error
    project = copy_scenario("lint_preflight")
    first = api.plan(_workspace(project, tmp_path), sql=True)
    assert first.steps[1].sql_error
    assert analysis_cache.stats["sql.write"] == 0
    _new_process()
    second = api.plan(_workspace(project, tmp_path), sql=True)
    assert [s.sql_error for s in second.steps] == [s.sql_error for s in first.steps]


def test_lock_needs_are_parsed_once_per_sql_text(
    copy_scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from abmigrate.db import pg_locks

    workspace = _workspace(copy_scenario("lint_preflight"), tmp_path)
    sql = "ALTER TABLE parts ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES customers (id)"
    needs = pg_locks.lock_needs(sql, workspace=workspace)
    assert needs == {"parts": "AccessExclusiveLock", "customers": "ShareRowExclusiveLock"}
    _new_process()  # written when the process ends
    monkeypatch.setattr(pg_locks, "_lock_needs", _fail)
    assert pg_locks.lock_needs(sql, workspace=workspace) == needs
    assert analysis_cache.stats["locks.hit"] == 1


def test_downgrade_preflight_checks_are_cached(
    copy_scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from abmigrate.lint.engine import preflight_checks

    workspace = _workspace(copy_scenario("lint_preflight"), tmp_path)
    cache = analysis_cache.AnalysisCache.for_workspace(workspace)
    revisions = ["c0ffee000003", "c0ffee000002"]
    first = preflight_checks(workspace.project, revisions, "downgrade", cache)
    assert any(c["check"] == "drop_column_values" for c in first["c0ffee000002"])
    _new_process()
    monkeypatch.setattr("abmigrate.lint.engine.capture_revision", _fail)
    assert preflight_checks(workspace.project, revisions, "downgrade", cache) == first


def test_a_broken_entry_is_a_miss_and_the_override_folder_is_used(
    copy_scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_scenario("lint_preflight")
    override = tmp_path / "elsewhere"
    monkeypatch.setenv("ABMIGRATE_CACHE_DIR", str(override))
    first = api.lint(_workspace(project, tmp_path))
    assert not (project / ".abmigrate").exists()
    assert len(_records(override / "analysis", "capture")) == 3
    (override / "analysis" / "capture.json").write_text("{not json")
    findings = override / "analysis" / "findings.json"
    findings.write_text(
        json.dumps(
            {key: {"unexpected": True} for key in _records(override / "analysis", "findings")}
        )
    )
    _new_process()
    second = api.lint(_workspace(project, tmp_path))
    assert _findings(second) == _findings(first)
    assert analysis_cache.stats["capture.miss"] == 3


def test_a_second_upgrade_through_the_cli_writes_no_cache_entry(
    run_cli: Any, copy_scenario: Any, tmp_path: Path
) -> None:
    project = copy_scenario("linear")

    def upgrade(name: str) -> None:
        url = f"sqlite:///{tmp_path / name}"
        done = run_cli(
            "--alembic-ini",
            project / "alembic.ini",
            "--url",
            url,
            "upgrade",
            env={"ABMIGRATE_CACHE_DIR": None},
            cwd=project,
        )
        assert done.exit_code == 0, done
        assert "✓ upgrade a1f0c0de0003" in done.stderr

    upgrade("one.db")
    folder = project / ".abmigrate" / "analysis"
    written = _entries(folder)
    assert set(written) == {
        "capture.json",
        "findings.json",
        "graph.json",
        "graph-files.json",
        "models-memo.json",
        "sql.json",
    }
    upgrade("two.db")
    assert _entries(folder) == written  # nothing new, nothing rewritten


def test_processes_add_to_the_same_file_and_old_records_go(tmp_path: Path) -> None:
    folder = tmp_path / "analysis"
    first = analysis_cache.AnalysisCache(folder, None)  # type: ignore[arg-type]
    first.put("sql", "a", {"sql": "one"})
    assert not (folder / "sql.json").exists()  # kept until flushed
    first.flush()
    # another process wrote meanwhile: its records and ours both stay
    analysis_cache.forget()
    other = analysis_cache.AnalysisCache(folder, None)  # type: ignore[arg-type]
    other.put("sql", "b", {"sql": "two"})
    other.flush()
    assert _records(folder, "sql") == {"a": {"sql": "one"}, "b": {"sql": "two"}}
    # a process that uses one record keeps at most 1000 unused others, the newest
    analysis_cache.forget()
    many = analysis_cache.AnalysisCache(folder, None)  # type: ignore[arg-type]
    for index in range(1100):
        many.put("sql", f"k{index}", {"sql": str(index)})
    many.flush()
    analysis_cache.forget()
    last = analysis_cache.AnalysisCache(folder, None)  # type: ignore[arg-type]
    assert last.get("sql", "a") == {"sql": "one"}
    last.put("sql", "c", {"sql": "three"})
    last.flush()
    kept = _records(folder, "sql")
    assert len(kept) == 1002 and {"a", "c", "k1099"} <= set(kept) and "b" not in kept
    assert list(kept)[-2:] == ["a", "c"]  # the records used go last
    assert not list(folder.glob("*.tmp"))
