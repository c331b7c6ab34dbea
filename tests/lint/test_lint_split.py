"""A cold `lint` split over two processes finds exactly what one process finds.

The split (:mod:`abmigrate.lint.fork`) only runs on long histories and a free second core;
here it is forced on small projects (``PARALLEL_FROM`` lowered, ``can_fork`` true) and its
result, and what it leaves in the analysis cache, compared with the same lint in one
process. Whether the forked half was used is told by the fork's counters.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from abmigrate import analysis_cache, api
from abmigrate.config.workspace import Workspace
from abmigrate.lint import engine, fork

ENV_PY = """
from alembic import context

if context.is_offline_mode():
    context.configure(url="postgresql://", literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
"""

# upgrade() bodies, one revision each: several rules fire, one is suppressed, one render
# fails, and later revisions depend on the tables earlier ones created.
BODIES = [
    'op.create_table("t0", sa.Column("id", sa.Integer(), primary_key=True),'
    ' sa.Column("name", sa.String(20)))',
    'op.add_column("t0", sa.Column("qty", sa.Integer(), nullable=False))',
    'op.create_index("ix_t0_name", "t0", ["name"])',
    'op.alter_column("t0", "name", existing_type=sa.String(20), nullable=False)',
    'op.execute("UPDATE t0 SET qty = 0")  # abmigrate: ignore[AM501] reason: tiny table',
    'op.create_table("t1", sa.Column("id", sa.Integer(), primary_key=True),'
    ' sa.Column("t0_id", sa.Integer()))\n'
    '    op.create_foreign_key("fk_t1_t0", "t1", "t0", ["t0_id"], ["id"])',
    'op.alter_column("t0", "qty", type_=sa.BigInteger(), existing_type=sa.Integer())',
    'raise RuntimeError("this revision does not render")',
    'op.rename_table("t1", "t2")',
    'op.drop_column("t0", "name")',
    'op.create_index("ix_t2_t0", "t2", ["t0_id"], postgresql_concurrently=True)',
    'print("rendering the last one")\n    op.drop_table("t2")',
]


@pytest.fixture(autouse=True)
def _split(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ABMIGRATE_CACHE_DIR", raising=False)
    # Forced: the test process may run other threads (pytest-xdist), and a CI runner may
    # have one core; the projects are short.
    monkeypatch.setattr(fork, "can_fork", lambda: True)
    _new_process()
    yield
    _new_process()


def _new_process() -> None:
    analysis_cache.forget()
    analysis_cache.stats.clear()
    fork.stats.clear()


def _project(root: Path, bodies: list[str]) -> Path:
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    previous = None
    for number, body in enumerate(bodies):
        revision = f"a{number:07d}"
        (versions / f"{revision}.py").write_text(
            f'"""step {number}"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
            f"revision = {revision!r}\ndown_revision = {previous!r}\n\n\n"
            f"def upgrade():\n    {body}\n\n\ndef downgrade():\n    pass\n"
        )
        previous = revision
    return root


def _lint(root: Path, *, split: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    _new_process()
    for name in ("capture.json", "findings.json"):
        (root / ".abmigrate" / "analysis" / name).unlink(missing_ok=True)
    monkeypatch.setattr(engine, "PARALLEL_FROM", 2 if split else 10**9)
    workspace = Workspace.open(
        alembic_ini=root / "alembic.ini", url=f"sqlite:///{root / 'absent.db'}", cwd=root
    )
    result = api.lint(workspace)
    analysis_cache.flush()
    folder = root / ".abmigrate" / "analysis"
    return {
        "record": result.to_record(),
        "facts": {revision: facts.to_json() for revision, facts in result.facts.items()},
        "cache": {
            kind: json.loads((folder / f"{kind}.json").read_text())
            for kind in ("capture", "findings")
        },
    }


def test_a_split_cold_lint_finds_and_caches_what_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path / "project", BODIES)
    serial = _lint(root, split=False, monkeypatch=monkeypatch)
    printed_serial = capsys.readouterr()
    assert fork.stats == {}
    split = _lint(root, split=True, monkeypatch=monkeypatch)
    assert fork.stats["merged"] > 0 and "walked again" not in fork.stats
    assert split == serial
    assert serial["record"]["errors"] > 0 and serial["record"]["suppressed"]
    # what a revision of the forked half prints comes out as in one process: on standard
    # error (standard output is abmigrate's result)
    printed_split = capsys.readouterr()
    assert printed_split.err == printed_serial.err == "rendering the last one\n"
    assert printed_split.out == printed_serial.out == ""

    # and a second lint after a split one renders nothing again but the revision whose
    # render failed (never cached, as in one process)
    _new_process()
    rendered: list[str] = []
    capture = engine.capture_revision

    def recorded(script: Any, *args: Any) -> Any:
        rendered.append(script.revision)
        return capture(script, *args)

    monkeypatch.setattr(engine, "capture_revision", recorded)
    workspace = Workspace.open(
        alembic_ini=root / "alembic.ini", url=f"sqlite:///{root / 'absent.db'}", cwd=root
    )
    again = api.lint(workspace)
    assert again.to_record() == serial["record"]
    assert rendered == ["a0000007"]
    assert fork.stats == {}  # a warm lint is not split


def test_halves_that_do_not_join_are_walked_by_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An enum created in the first half: the second half's render depends on it (Alembic's
    # memo), so what the forked process rendered from an empty memo is not used.
    enum_table = (
        'op.create_table("w", sa.Column("id", sa.Integer(), primary_key=True),'
        ' sa.Column("kind", sa.Enum("a", "b", name="kind")))'
    )
    reuse = (
        'op.create_table("g", sa.Column("id", sa.Integer(), primary_key=True),'
        ' sa.Column("kind", sa.Enum("a", "b", name="kind")))'
    )
    root = _project(tmp_path / "project", [enum_table, BODIES[1].replace("t0", "w"), reuse])
    serial = _lint(root, split=False, monkeypatch=monkeypatch)
    split = _lint(root, split=True, monkeypatch=monkeypatch)
    assert fork.stats == {"walked again": 2}
    assert split == serial


def test_a_forked_half_that_fails_is_walked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "project", BODIES[:6])
    serial = _lint(root, split=False, monkeypatch=monkeypatch)
    monkeypatch.setattr(engine._Walker, "analyse_alone", _fail)
    split = _lint(root, split=True, monkeypatch=monkeypatch)
    assert fork.stats == {"walked again": 4}
    assert split == serial


def _fail(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("called although it should not be")


def test_every_revision_file_is_imported_before_any_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As Alembic imports every file of its map before running any: a revision may reach a
    # module only a later revision file imports (prefect's do). Importing each file just
    # before rendering it left 35 of prefect's revisions unrendered.
    root = _project(tmp_path / "project", ['op.execute("SELECT 1")', 'op.execute("SELECT 2")'])
    package = f"helpers_{tmp_path.name.replace('-', '_')}"
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    (root / package / "sql.py").write_text('STATEMENT = "UPDATE t SET x = 1"\n')
    first = root / "migrations" / "versions" / "a0000000.py"
    first.write_text(
        first.read_text()
        .replace("import sqlalchemy as sa\n", f"import sqlalchemy as sa\nimport {package}\n")
        .replace('op.execute("SELECT 1")', f"op.execute({package}.sql.STATEMENT)")
    )
    second = root / "migrations" / "versions" / "a0000001.py"
    second.write_text(
        second.read_text().replace(
            "import sqlalchemy as sa\n", f"import sqlalchemy as sa\nimport {package}.sql\n"
        )
    )
    (root / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\npath_separator = os\n"
        "prepend_sys_path = %(here)s\n"
    )
    monkeypatch.syspath_prepend(str(root))
    try:
        for split in (False, True):
            record = _lint(root, split=split, monkeypatch=monkeypatch)["record"]
            codes = {finding["code"] for finding in record["findings"]}
            assert "AM605" not in codes, record["findings"]
            assert any("UPDATE t SET x = 1" in (f.get("sql") or "") for f in record["findings"])
    finally:
        for name in [name for name in sys.modules if name.startswith(package)]:
            del sys.modules[name]
