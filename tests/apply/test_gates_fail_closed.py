"""An analysis that cannot run must not let a guarded run through unguarded.

lint/preflight and the data-loss estimate are the gates of a guarded environment: when one
raises (a bug, a statement it cannot handle), production refuses the run (exit 1 semantics:
GuardRefused naming what failed and the revisions) unless overridden with a reason, while
development keeps going with a warning. The fault is injected into the analysis itself; the
database is real and is checked to be untouched.
"""

from __future__ import annotations

import pytest
from runner_helpers import PRODUCTION, make_project, versions

import abmigrate.lint
from abmigrate import api
from abmigrate.config.workspace import Workspace
from abmigrate.errors import GuardRefused


def _broken_analysis(*args: object, **kwargs: object) -> None:
    raise RuntimeError("the analysis met a statement it cannot handle")


def _open(root, url, env):
    return Workspace.open(config=root / "abmigrate.toml", url=url, env=env, cwd=root)


def test_production_refuses_when_lint_cannot_run(copy_scenario, sqlite_url, monkeypatch):
    root = make_project(copy_scenario, {"production": PRODUCTION})
    monkeypatch.setattr(abmigrate.lint, "analyse_plan", _broken_analysis)
    with pytest.raises(GuardRefused) as refused:
        api.upgrade(_open(root, sqlite_url, "production"), confirm=lambda plan: True)
    reasons = " ".join(refused.value.reasons)
    assert "lint/preflight could not run on r1, r2, r3 (+2 more)" in reasons
    assert "cannot handle" in reasons
    assert versions(sqlite_url) == []

    overridden = api.upgrade(
        _open(root, sqlite_url, "production"),
        confirm=lambda plan: True,
        override="analysis bug reported as #12; reviewed the SQL by hand",
    )
    assert [step.revision for step in overridden.applied] == ["r1", "r2", "r3", "r4", "r5"]
    assert overridden.overrides[0]["gate"] == "analysis"
    assert versions(sqlite_url) == ["r5"]


def test_development_warns_when_lint_cannot_run(copy_scenario, sqlite_url, monkeypatch):
    root = make_project(copy_scenario)
    monkeypatch.setattr(abmigrate.lint, "analyse_plan", _broken_analysis)
    result = api.upgrade(_open(root, sqlite_url, "development"))
    assert versions(sqlite_url) == ["r5"]
    assert any("lint/preflight could not run" in warning for warning in result.warnings)


def test_production_refuses_a_downgrade_whose_data_loss_cannot_be_estimated(
    copy_scenario, sqlite_url, monkeypatch
):
    import abmigrate.apply.data_loss

    root = make_project(copy_scenario, {"production": {**PRODUCTION, "allow_destructive": True}})
    api.upgrade(_open(root, sqlite_url, "development"))
    monkeypatch.setattr(abmigrate.apply.data_loss, "estimate_data_loss", _broken_analysis)
    with pytest.raises(GuardRefused) as refused:
        api.downgrade(_open(root, sqlite_url, "production"), "-1", confirm=lambda plan: True)
    assert "the data-loss estimate could not run on r5" in " ".join(refused.value.reasons)
    assert versions(sqlite_url) == ["r5"]
