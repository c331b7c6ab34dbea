"""Several heads (or roots) each in its own labelled branch are by design, not a graph
problem; a second head inside one labelled branch, or unlabelled heads, still are. The same
answer from the cached graph and from Alembic's own revision map."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from abmigrate.bridge.graph import labelled_branches, shape_problems
from abmigrate.bridge.project import AlembicProject

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _project(tmp_path: Path, name: str, *, through_alembic: bool) -> AlembicProject:
    root = tmp_path / name
    if not root.exists():
        shutil.copytree(SCENARIOS / name, root, ignore=shutil.ignore_patterns("__pycache__"))
    project = AlembicProject(root / "alembic.ini", cache_dir=tmp_path / "cache")
    if through_alembic:
        # Alembic's map built first: the project answers from it, not from the cached graph.
        assert project.script.revision_map.heads
        assert project.graph is None
    return project


def _second_expand_head(project_root: Path) -> None:
    """An accidental head: a second child of b300expand01 inside the `expand` branch."""
    versions = project_root / "migrations" / "versions"
    text = (versions / "b300expand02.py").read_text()
    (versions / "b300expand2b.py").write_text(
        text.replace("b300expand02", "b300expand2b").replace('"tags"', '"labels"')
    )


def _codes(project: AlembicProject) -> set[str]:
    return {problem.code for problem in project.graph_problems()}


@pytest.mark.parametrize("through_alembic", [False, True], ids=["cached", "alembic"])
def test_one_head_per_labelled_branch_is_no_problem(tmp_path: Path, through_alembic: bool) -> None:
    project = _project(tmp_path, "labelled_branches", through_alembic=through_alembic)
    assert sorted(project.heads()) == ["b300expand02", "b30contract1"]
    assert project.labelled_heads() == {
        "b300expand02": ("expand",),
        "b30contract1": ("contract",),
    }
    assert _codes(project) == set()
    assert project.default_target() == "heads"


@pytest.mark.parametrize("through_alembic", [False, True], ids=["cached", "alembic"])
def test_a_second_head_inside_a_labelled_branch_is_flagged(
    tmp_path: Path, through_alembic: bool
) -> None:
    shutil.copytree(SCENARIOS / "labelled_branches", tmp_path / "labelled_branches")
    _second_expand_head(tmp_path / "labelled_branches")
    project = _project(tmp_path, "labelled_branches", through_alembic=through_alembic)
    assert len(project.heads()) == 3
    assert project.labelled_heads() is None
    assert "multiple_heads" in _codes(project)
    assert project.default_target() == "head"


@pytest.mark.parametrize("through_alembic", [False, True], ids=["cached", "alembic"])
def test_unlabelled_heads_are_flagged(tmp_path: Path, through_alembic: bool) -> None:
    project = _project(tmp_path, "two_heads", through_alembic=through_alembic)
    assert project.labelled_heads() is None
    assert _codes(project) == {"multiple_heads"}
    assert project.default_target() == "head"


@pytest.mark.parametrize("through_alembic", [False, True], ids=["cached", "alembic"])
def test_one_root_per_labelled_branch_is_no_problem(tmp_path: Path, through_alembic: bool) -> None:
    # graph_shapes: `core` and `audit` each start from their own root (multiple bases).
    project = _project(tmp_path, "graph_shapes", through_alembic=through_alembic)
    assert sorted(project.bases()) == ["a1000000audit", "c1000000core"]
    assert project.labelled_roots() == {
        "c1000000core": ("core",),
        "a1000000audit": ("audit",),
    }
    assert _codes(project) & {"multiple_heads", "multiple_roots"} == set()


def test_the_rule_on_labels_alone() -> None:
    labels = {"e2": ("expand",), "e3": ("expand",), "c1": ("contract",), "x": ()}
    assert labelled_branches(["e2", "c1"], labels) == {"e2": ("expand",), "c1": ("contract",)}
    assert labelled_branches(["e2", "e3", "c1"], labels) is None  # a label on two heads
    assert labelled_branches(["e2", "x"], labels) is None  # an unlabelled head
    assert labelled_branches(["e2"], labels) is None  # one head: nothing to decide
    assert [p.code for p in shape_problems(["e2", "x"], ["r1", "r2"], labels)] == [
        "multiple_heads",
        "multiple_roots",
    ]
    assert shape_problems(["e2", "c1"], ["r1"], labels) == []
