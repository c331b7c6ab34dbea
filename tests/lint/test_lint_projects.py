"""Lint runs per revision on every scenario project and on the ABParts example."""

from __future__ import annotations

from pathlib import Path

import pytest

from abmigrate.bridge.project import AlembicProject
from abmigrate.lint import lint_project

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = sorted(
    [path.parent for path in (ROOT / "tests" / "scenarios").glob("*/alembic.ini")]
    + [ROOT / "examples" / "abparts"]
)


@pytest.mark.parametrize("project", PROJECTS, ids=lambda path: path.name)
def test_every_revision_is_linted_on_its_own(project: Path) -> None:
    alembic = AlembicProject(project / "alembic.ini")
    result = lint_project(alembic)
    assert set(result.revisions) == {script.revision for script in alembic.script._load_revisions()}
    assert set(result.units) == set(result.revisions)


def test_abparts_initial_schema_is_clean() -> None:
    result = lint_project(AlembicProject(ROOT / "examples" / "abparts" / "alembic.ini"))
    assert result.for_revision("4f2a9c1e7b30") == []
    assert not result.errors
