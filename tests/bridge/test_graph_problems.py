"""Graph problems have one source, the bridge (AlembicProject.graph_problems and
declared_problems); lint's project facts and check's graph_integrity only word them."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from abmigrate.bridge.project import AlembicProject
from abmigrate.check.checks import CheckContext, graph_integrity

LONG_ID = "c5e0000000e7_" + "x" * 27


def _broken(copy_scenario: Callable[..., Path]) -> Path:
    """check_branched_merge plus a parent named by file, a duplicate id and a long id."""
    project = copy_scenario("check_branched_merge")
    versions = project / "migrations" / "versions"
    template = (versions / "c5e0000000e5.py").read_text()
    (versions / "c5e0000000e6.py").write_text(
        template.replace('"c5e0000000e5"', '"c5e0000000e6"').replace(
            "'c5e0000000e4'", '"c5e0000000e5_link_items.py"'
        )
    )
    (versions / "copy_of_e5.py").write_text(template)
    (versions / "long.py").write_text(
        template.replace('"c5e0000000e5"', f'"{LONG_ID}"').replace(
            "'c5e0000000e4'", '"c5e0000000e5"'
        )
    )
    return project


def test_declared_problems_come_from_the_files_alone(
    copy_scenario: Callable[..., Path],
) -> None:
    root = _broken(copy_scenario)
    versions = root / "migrations" / "versions"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Alembic warns about the duplicate id
        problems = AlembicProject(root / "alembic.ini").declared_problems()
    assert [(p.code, p.message, p.revisions) for p in problems] == [
        (
            "duplicate_id",
            f"revision c5e0000000e5 is defined more than once: {versions / 'c5e0000000e5.py'},"
            f" {versions / 'copy_of_e5.py'}",
            ("c5e0000000e5",),
        ),
        (
            "dangling_parent",
            "c5e0000000e6 names parent 'c5e0000000e5_link_items.py', which no script defines",
            ("c5e0000000e6",),
        ),
        (
            "id_too_long",
            f"revision id {LONG_ID!r} is 40 characters; alembic_version holds 32",
            (LONG_ID,),
        ),
    ]
    assert problems[1].parent == "c5e0000000e5_link_items.py"
    assert problems[1].path == str(versions / "c5e0000000e6.py")
    # What status and diagnose show is unchanged by the extra fields.
    assert problems[1].to_record() == {
        "code": "dangling_parent",
        "message": problems[1].message,
        "revisions": ["c5e0000000e6"],
    }


def test_graph_integrity_words_the_bridges_problems(copy_scenario: Callable[..., Path]) -> None:
    root = _broken(copy_scenario)
    versions = root / "migrations" / "versions"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = graph_integrity(CheckContext(root / "alembic.ini"))
    assert outcome.summary == "3 problem(s)"
    assert [(f.message, f.revision, f.path, f.hint) for f in outcome.failures] == [
        (
            f"revision c5e0000000e5 is defined more than once: {versions / 'c5e0000000e5.py'},"
            f" {versions / 'copy_of_e5.py'}",
            "c5e0000000e5",
            str(versions / "c5e0000000e5.py"),
            "give one of the files a new revision id",
        ),
        (
            "revision c5e0000000e6 names parent 'c5e0000000e5_link_items.py', which no script"
            " defines",
            "c5e0000000e6",
            str(versions / "c5e0000000e6.py"),
            "down_revision takes a revision id (not a file name) that exists",
        ),
        (
            f"revision id {LONG_ID!r} is 40 characters; alembic_version.version_num holds 32",
            LONG_ID,
            str(versions / "long.py"),
            "rename the revision id (it fails only when applied)",
        ),
    ]


def test_graph_integrity_passes_a_sound_history(copy_scenario: Callable[..., Path]) -> None:
    root = copy_scenario("check_branched_merge")
    outcome = graph_integrity(CheckContext(root / "alembic.ini"))
    assert outcome.failures == []
    assert outcome.summary == "5 revision(s), all parents known"
