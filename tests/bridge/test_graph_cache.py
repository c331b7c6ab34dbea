"""The cached revision graph (abmigrate/bridge/graph.py) answers what Alembic's revision map
answers, follows the files as they change, and survives a broken cache file.

The comparison itself (corpus/graph_compare.py) asks every graph question abmigrate asks
(heads, bases, history with parents, labels, depends_on, children and messages, what is
applied below each revision, what upgrading from each revision applies and in which order,
the graph's problems) of the cache, cold and warm, and of Alembic, on every scenario project
and the ABParts example; tests/realworld/test_corpus.py runs it on the corpus projects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import note_imports

from abmigrate import analysis_cache
from abmigrate.bridge.graph import declared_in
from abmigrate.bridge.project import AlembicProject

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(path.parent for path in (ROOT / "tests" / "scenarios").glob("*/alembic.ini"))
PROJECTS = [*SCENARIOS, ROOT / "examples" / "abparts"]

sys.path.insert(0, str(ROOT))
from corpus.graph_compare import compare  # noqa: E402


@pytest.mark.parametrize("project", PROJECTS, ids=[path.name for path in PROJECTS])
def test_the_cached_graph_answers_what_alembic_answers(project: Path, tmp_path: Path) -> None:
    assert compare(project / "alembic.ini", tmp_path / "cache") == []


def test_the_shapes_scenario_has_what_the_comparison_must_cover(tmp_path: Path) -> None:
    # Two version locations, a branch point, a merge, labels and depends_on (by id and by
    # label): if the scenario lost one of them, the comparison above would prove less.
    project = AlembicProject(
        ROOT / "tests" / "scenarios" / "graph_shapes" / "alembic.ini", cache_dir=tmp_path
    )
    history = project.history()
    assert {Path(one.path).parent.name for one in history} == {"versions", "audit_versions"}
    assert any(one.is_merge_point for one in history)
    assert {label for one in history for label in one.branch_labels} == {"core", "audit"}
    assert {dependency for one in history for dependency in one.dependencies} >= {
        "c2000000core",
        "core",
    }
    assert project.heads() == ["c4000000core", "a3000000audit"]


def _revision(revision: str, down: str | None, message: str = "step") -> str:
    return textwrap.dedent(
        f'''\
        """{message}

        Revision ID: {revision}
        """
        from alembic import op

        revision = {revision!r}
        down_revision = {down!r}
        branch_labels = None
        depends_on = None


        def upgrade():
            op.execute("SELECT 1")


        def downgrade():
            pass
        '''
    )


def _fresh(ini: Path, cache: Path) -> AlembicProject:
    analysis_cache.forget()  # what a new process knows
    return AlembicProject(ini, cache_dir=cache)


def test_new_changed_and_removed_files_change_the_graph(copy_scenario: Any, tmp_path: Path) -> None:
    project = copy_scenario("linear")
    ini, cache = project / "alembic.ini", tmp_path / "cache"
    versions = project / "migrations" / "versions"
    first = _fresh(ini, cache).heads()
    assert len(first) == 1
    # warm: nothing read from a revision's syntax tree, nothing derived
    before = analysis_cache.stats.copy()
    assert _fresh(ini, cache).heads() == first
    assert analysis_cache.stats["graph.miss"] == before["graph.miss"]

    (versions / "ffff0001_new.py").write_text(_revision("ffff0001", first[0], "added"))
    assert _fresh(ini, cache).heads() == ["ffff0001"]
    assert _fresh(ini, cache).describe("ffff0001").doc == "added"

    (versions / "ffff0001_new.py").write_text(_revision("ffff0001", first[0], "reworded"))
    assert _fresh(ini, cache).describe("ffff0001").doc == "reworded"

    (versions / "ffff0001_new.py").unlink()
    assert _fresh(ini, cache).heads() == first


def test_changed_version_locations_change_the_graph(copy_scenario: Any, tmp_path: Path) -> None:
    project = copy_scenario("linear")
    ini, cache = project / "alembic.ini", tmp_path / "cache"
    heads = _fresh(ini, cache).heads()
    extra = project / "extra_versions"
    extra.mkdir()
    (extra / "eeee0001_extra.py").write_text(_revision("eeee0001", heads[0]))
    text = ini.read_text()
    assert "version_locations" not in text
    ini.write_text(
        text.replace(
            "[alembic]\n",
            "[alembic]\nversion_locations = %(here)s/migrations/versions %(here)s/extra_versions\n"
            "path_separator = space\n",
            1,
        )
    )
    assert _fresh(ini, cache).heads() == ["eeee0001"]


def test_a_computed_revision_id_is_imported_as_alembic_would(
    copy_scenario: Any, tmp_path: Path
) -> None:
    project = copy_scenario("linear")
    ini, cache = project / "alembic.ini", tmp_path / "cache"
    head = _fresh(ini, cache).heads()[0]
    source = _revision("placeholder", head, "computed").replace(
        "revision = 'placeholder'", 'revision = "dddd" + "0001"'
    )
    assert declared_in(source.encode()) is None  # not a literal: the file must be imported
    (project / "migrations" / "versions" / "dddd0001_computed.py").write_text(source)
    for _ in range(2):  # cold, then warm: the imported values are not kept
        found = _fresh(ini, cache)
        assert found.graph is not None
        assert found.heads() == ["dddd0001"]
        assert found.describe("dddd0001").doc == "computed"
    assert compare(ini, tmp_path / "other") == []


@pytest.mark.parametrize(
    "source",
    [
        "revision = 'a'\nrevision = 'b'\ndown_revision = None\n",  # bound twice
        "if True:\n    revision = 'a'\ndown_revision = None\n",  # bound in a block
        "from ids import *\nrevision = 'a'\ndown_revision = None\n",  # may rebind
        "revision = 'a'\ndown_revision = None\nglobals()['revision'] = 'b'\n",
        "down_revision = None\n",  # legacy: the id comes from the file name
        "revision = 'a'\ndown_revision = PARENT\n",  # a name, not a literal
        "revision = 'a'\ndown_revision = None\ndepends_on = [1]\n",  # not strings
        "revision = 'a'\ndown_revision = (\n",  # a syntax error: Alembic reports it
    ],
)
def test_what_is_not_a_plain_literal_falls_back_to_the_import(source: str) -> None:
    assert declared_in(source.encode()) is None


def test_literals_in_both_assignment_styles_are_read() -> None:
    source = (
        '"""add things\n\nRevision ID: x\n"""\n'
        "from collections.abc import Sequence\n"
        "revision: str = 'x1'\n"
        "down_revision: str | Sequence[str] | None = ('p1', 'p2')\n"
        "branch_labels = ('core',)\n"
        "def upgrade():\n    revision = 'not this one'\n"
    )
    assert declared_in(source.encode()) == {
        "revision": "x1",
        "down_revision": ["p1", "p2"],
        "branch_labels": ["core"],
        "depends_on": None,
        "doc": "add things\n\nRevision ID: x\n",
    }


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"key": {"revisions": "wrong shape"}}), json.dumps([1, 2])],
    ids=["garbage", "wrong-shape", "not-a-dict"],
)
def test_a_broken_cache_file_is_ignored_and_rebuilt(
    content: str, copy_scenario: Any, run_cli: Any, tmp_path: Path
) -> None:
    project = copy_scenario("linear")
    cache = tmp_path / "cache"
    env = {"ABMIGRATE_CACHE_DIR": str(cache)}
    args = ("--alembic-ini", project / "alembic.ini", "--url", "sqlite://", "heads")
    first = run_cli(*args, env=env)
    assert first.exit_code == 0, first
    graph_file = cache / "analysis" / "graph.json"
    records = json.loads(graph_file.read_text())
    # every record replaced by the broken content's shape, or the whole file by garbage
    if content.startswith("{not"):
        graph_file.write_text(content)
    else:
        broken = json.loads(content)
        if isinstance(broken, dict):
            broken = {key: next(iter(broken.values())) for key in records}
        graph_file.write_text(json.dumps(broken))
    analysis_cache.forget()
    again = run_cli(*args, env=env)
    assert again.exit_code == 0, again
    assert again.stdout == first.stdout
    assert "Traceback" not in again.stderr
    assert json.loads(graph_file.read_text()).keys() == records.keys()  # rebuilt


def test_a_status_imports_neither_alembic_nor_a_revision(
    copy_scenario: Any, tmp_path: Path
) -> None:
    project = copy_scenario("linear")
    log = tmp_path / "imported.log"
    note_imports(sorted((project / "migrations" / "versions").glob("*.py")), log)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    code = textwrap.dedent(
        f"""\
        import sys
        from abmigrate.cli.main import main
        try:
            main(["--alembic-ini", {str(project / "alembic.ini")!r}, "--url", {url!r},
                  "status"])
        except SystemExit:
            pass
        print("LOADED", " ".join(sorted(sys.modules)))
        """
    )
    env = {"ABMIGRATE_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}

    def loaded() -> set[str]:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        line = [text for text in done.stdout.splitlines() if text.startswith("LOADED")]
        assert line, done.stderr
        return set(line[0].split()[1:])

    cold = loaded()  # the graph read from the files: alembic.ini read without Alembic too
    assert not {name for name in cold if name.split(".")[0] == "alembic"}
    warm = loaded()
    assert not {name for name in warm if name.split(".")[0] == "alembic"}
    assert log.exists() is False  # no revision was imported, cold or warm


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////tmp/app.db",
        "sqlite:///relative/app.db",
        "sqlite://",
        "postgresql+psycopg://db.example:5432/app",
        "postgresql+psycopg://postgres@127.0.0.1:5432/app",
        "postgresql:///app",
        "mysql+pymysql://host/app_1",
    ],
)
def test_a_plain_url_is_masked_as_sqlalchemy_reads_it(url: str) -> None:
    # mask_url answers these without SQLAlchemy (a warm status on SQLite never imports it)
    from abmigrate.db.url import _mask_parsed, mask_url

    assert mask_url(url) == _mask_parsed(url) == url


@pytest.mark.parametrize("project", PROJECTS, ids=[path.name for path in PROJECTS])
def test_alembic_ini_is_read_as_alembic_reads_it(project: Path) -> None:
    from alembic.config import Config

    from abmigrate.bridge.graph import _locations, _locations_from_ini

    ini = project / "alembic.ini"
    assert _locations_from_ini(ini) == _locations(Config(str(ini)))


@pytest.mark.parametrize(
    "options",
    [
        "version_locations = %(here)s/a %(here)s/b",  # Alembic's legacy split on spaces
        "version_locations = %(here)s/a, %(here)s/b",  # ... and on commas
        "version_locations = %(here)s/a;%(here)s/b\npath_separator = ;",
        "version_locations = %(here)s/a %(here)s/b\npath_separator = space",
        "version_locations = %(here)s/a\n  %(here)s/b\npath_separator = newline",
        "version_locations = %(here)s/a:%(here)s/b\nversion_path_separator = os",
        "sourceless = true\nrecursive_version_locations = true",
        "sourceless = True",  # not "true": false for Alembic
    ],
)
def test_version_locations_are_split_as_alembic_splits_them(tmp_path: Path, options: str) -> None:
    import warnings

    from alembic.config import Config

    from abmigrate.bridge.graph import _locations, _locations_from_ini

    for folder in ("migrations/versions", "a", "b"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    ini = tmp_path / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = %(here)s/migrations\n{options}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Alembic's deprecation of the legacy separators
        expected = _locations(Config(str(ini)))
    assert _locations_from_ini(ini) == expected


@pytest.mark.parametrize(
    "text",
    [
        "[alembic]\nscript_location = mypackage:migrations\n",  # a package resource
        "[alembic]\nscript_location = %(here)s/nowhere\n",  # Alembic words the error
        "[alembic]\nversion_locations = %(here)s\n",  # no script_location
        "[other]\nscript_location = %(here)s\n",
        "[alembic]\nscript_location = %(undefined)s\n",  # an interpolation Alembic reports
        "[alembic]\nscript_location = %(here)s\nversion_locations = a\npath_separator = |\n",
    ],
)
def test_what_only_alembic_resolves_is_left_to_alembic(tmp_path: Path, text: str) -> None:
    from abmigrate.bridge.graph import _locations_from_ini

    ini = tmp_path / "alembic.ini"
    ini.write_text(text)
    assert _locations_from_ini(ini) is None


def _random_history(seed: int) -> list[tuple[dict[str, Any], str]]:
    """A random history of branches and merges, as the files declare it, in a random load
    order (Alembic loads files by name)."""
    import random

    chooser = random.Random(seed)
    ids: list[str] = []
    declared: list[tuple[dict[str, Any], str]] = []
    for index in range(chooser.randint(1, 40)):
        revision = f"{chooser.getrandbits(48):012x}"
        roll = chooser.random()
        if not ids or roll < 0.05:
            down: Any = None  # another root
        elif roll < 0.25 and len(ids) > 1:
            down = tuple(chooser.sample(ids, 2))  # a merge
        else:
            down = chooser.choice(ids[-5:])
            down = [down] if roll > 0.9 else down  # a one-element list, as some write it
        ids.append(revision)
        entry = {"revision": revision, "down_revision": down, "branch_labels": None}
        entry.update(depends_on=None, doc=f"step {index}\n\nmore text")
        declared.append((entry, f"/versions/{revision}.py"))
    chooser.shuffle(declared)
    return declared


@pytest.mark.parametrize("seed", range(60))
def test_the_plain_derivation_is_alembics(seed: int) -> None:
    from abmigrate.bridge.graph import _alembic_graph, _plain_graph

    declared = _random_history(seed)
    assert _plain_graph(declared) == _alembic_graph(declared)


@pytest.mark.parametrize(
    "change",
    ["missing parent", "cycle", "duplicate", "self", "label", "depends_on", "illegal id"],
)
def test_what_the_plain_derivation_does_not_take_goes_to_alembic(change: str) -> None:
    from abmigrate.bridge.graph import _plain_graph

    declared = _random_history(7)
    entry = declared[0][0]
    if change == "missing parent":
        entry["down_revision"] = "0badc0ffee00"
    elif change == "cycle":
        first, second = declared[0][0], declared[1][0]
        first["down_revision"], second["down_revision"] = second["revision"], first["revision"]
    elif change == "duplicate":
        declared.append(({**entry}, "/versions/copy.py"))
    elif change == "self":
        entry["down_revision"] = entry["revision"]
    elif change == "label":
        entry["branch_labels"] = ("core",)
    elif change == "depends_on":
        entry["depends_on"] = declared[1][0]["revision"]
    else:
        entry["revision"] = "abc-123"
    assert _plain_graph(declared) is None
