"""The table-driven rule test: every case file in ``cases/`` (one per rule) is rendered through
Alembic as a tiny project and linted; the rule under test must fire exactly as the case says.

A case file names its rule (``code``) and lists ``[[case]]`` tables:

- ``upgrade``: the body of the revision's ``upgrade()`` (Python, indented or not);
- ``setup`` (optional): the body of an earlier revision, e.g. creating the tables;
- ``downgrade``, ``message``, ``revision`` (optional): the rest of the revision file;
- ``revisions`` (optional, instead): a full list of ``{id, down, upgrade}`` for graph cases
  (``labels``: the revision's ``branch_labels``);
- ``count``: how many findings of ``code`` are expected (0 for a passing snippet).
"""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

from abmigrate.bridge.project import AlembicProject
from abmigrate.lint import lint_project
from abmigrate.lint.registry import all_rules, rule_by_code

CASES_DIR = Path(__file__).parent / "cases"

_TEMPLATE = '''"""{message}

Revision ID: {revision}
Revises: {down}
"""
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down!r}
branch_labels = {labels!r}
depends_on = None


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


def _body(text: str | None, default: str) -> str:
    return textwrap.indent(textwrap.dedent(text or default).strip("\n"), "    ")


def write_revision(versions: Path, spec: dict[str, Any]) -> None:
    source = _TEMPLATE.format(
        message=spec.get("message", f"revision {spec['id']}"),
        revision=spec["id"],
        down=spec.get("down"),
        labels=tuple(spec["labels"]) if spec.get("labels") else None,
        upgrade=_body(spec.get("upgrade"), "pass"),
        downgrade=_body(spec.get("downgrade"), 'raise NotImplementedError("test")'),
    )
    (versions / f"{spec['id']}.py").write_text(source)


def make_project(root: Path, revisions: list[dict[str, Any]]) -> AlembicProject:
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "script.py.mako").write_text("")
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    for spec in revisions:
        write_revision(versions, spec)
    return AlembicProject(root / "alembic.ini")


def _revisions(case: dict[str, Any]) -> list[dict[str, Any]]:
    if "revisions" in case:
        return list(case["revisions"])
    target = case.get("revision", "b2")
    revisions = []
    down = None
    if "setup" in case:
        revisions.append({"id": "a1", "upgrade": case["setup"], "message": "create tables"})
        down = "a1"
    revisions.append(
        {
            "id": target,
            "down": down,
            "upgrade": case.get("upgrade"),
            "downgrade": case.get("downgrade"),
            "message": case.get("message", "change things for the test case"),
        }
    )
    return revisions


def _load_cases() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        for number, case in enumerate(data["case"], 1):
            params.append(
                pytest.param(data["code"], case, id=f"{data['code']}-{number}-{case['name']}")
            )
    return params


@pytest.mark.parametrize(("code", "case"), _load_cases())
def test_rule_case(code: str, case: dict[str, Any], tmp_path: Path) -> None:
    project = make_project(tmp_path, _revisions(case))
    result = lint_project(project, assume_lock_timeout=case.get("assume_lock_timeout", False))
    hits = [finding for finding in result.findings if finding.code == code]
    described = "\n".join(f"  {f.code} line {f.line}: {f.message}" for f in result.findings)
    assert len(hits) == case["count"], f"{case['name']}: found\n{described}"
    judged = rule_by_code()[code].judged_by is not None
    for finding in hits:
        assert finding.message and finding.hint
        # a rule judged against live data names the tables its finding is about
        assert finding.tables or not judged, f"{case['name']}: {code} names no table"


def test_every_rule_has_a_case_file_with_passing_and_failing_cases() -> None:
    for rule in all_rules():
        path = CASES_DIR / f"{rule.code}.toml"
        assert path.is_file(), f"{rule.code} has no case file {path.name}"
        counts = [case["count"] for case in tomllib.loads(path.read_text())["case"]]
        assert 0 in counts and any(counts), f"{rule.code} needs passing and failing cases"
