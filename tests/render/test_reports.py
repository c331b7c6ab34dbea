"""What people look at: the revision graph (`graph`), the HTML report (`report`) and the
Markdown of `plan`, `lint` and `check` for pull requests. Structure tests on the real
commands' output: every section is there, every finding is listed, no password leaks, and a
missing Graphviz is said, not hidden. (The page in a real browser: test_report_browser.py.)
"""

from __future__ import annotations

import json
import re
import stat
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from markupsafe import escape
from runner_helpers import execute_all
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

REPO_ROOT = Path(__file__).resolve().parents[2]
ABPARTS_INI = REPO_ROOT / "examples" / "abparts" / "alembic.ini"
ABPARTS_REVISIONS = 10
SECTIONS = (
    "environment",
    "graph",
    "plan",
    "lint",
    "preflight",
    "rollback",
    "rehearsal",
    "journal",
    "backups",
)
PASSWORD = "Sup3r-s3cret-pw"
SEED = [
    "INSERT INTO customers (id, name) VALUES (1, 'acme'), (2, 'globex')",
    "INSERT INTO parts (id, name, code, qty, legacy) VALUES"
    " (1, 'bolt', 'AAA', 5, 'x'), (2, NULL, 'AAA', -1, 'x'), (3, NULL, 'AAA', 3, NULL)",
    "INSERT INTO orders (id, customer_id) VALUES (1, 1), (2, 99)",
]


def with_password(url: str) -> str:
    """The test server trusts every login: a password in the URL is accepted and ignored."""
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table and its rows, to prove a command changed nothing."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return {
                table: sorted(
                    (tuple(row) for row in connection.execute(sa.text(f'SELECT * FROM "{table}"'))),
                    key=repr,
                )
                for table in sorted(sa.inspect(connection).get_table_names())
            }
    finally:
        engine.dispose()


def sections_of(page: str) -> set[str]:
    return set(re.findall(r'<section id="([a-z]+)"', page))


def graph_node_ids(svg: str) -> list[str]:
    """The revision of each node of the graph's SVG (Graphviz writes the ids escaped)."""
    return [unescape(rev) for rev in re.findall(r'<g id="rev_([^"]+)" class="node revision', svg)]


@pytest.fixture
def preflight_project(run_cli: Any, copy_scenario: Any, pg_url: str) -> tuple[Path, str]:
    """lint_preflight at its first revision on PostgreSQL, seeded with conflicting rows;
    the URL carries a password."""
    project = copy_scenario("lint_preflight")
    url = with_password(pg_url)
    up = run_cli("--alembic-ini", project / "alembic.ini", "--url", url, "upgrade", "+1")
    assert up.exit_code == 0, up
    execute_all(pg_url, SEED)
    return project, url


def test_report_on_postgresql_lists_every_section_finding_and_check_without_the_password(
    run_cli: Any, preflight_project: tuple[Path, str], tmp_path: Path
) -> None:
    project, url = preflight_project
    common = ("--alembic-ini", project / "alembic.ini", "--url", url)
    plan = run_cli(*common, "plan", "--sql", "--format", "json")
    assert plan.exit_code == 0, plan
    findings = [f for step in json.loads(plan.stdout)["steps"] for f in step["findings"]]
    preflight = [c for step in json.loads(plan.stdout)["steps"] for c in step["preflight"]]
    assert findings and preflight  # the scenario has both: the test must see them

    out = tmp_path / "report.html"
    before = snapshot(url)
    result = run_cli(*common, "report", "-o", out)
    assert result.exit_code == 0, result
    assert snapshot(url) == before  # read-only: no table, no row changed
    page = out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # data samples: the owner's only
    assert sections_of(page) == set(SECTIONS)
    for finding in findings:
        row = str(escape(finding["message"]))
        assert row in page, finding
        assert str(escape(finding["hint"])) in page, finding
    assert page.count('class="finding"') == len(findings)
    assert page.count('class="preflight-check"') == len(preflight)
    for check in preflight:
        assert str(escape(check["message"])) in page
    # the plan's SQL, highlighted: the keywords are wrapped, the statement's words all there
    assert re.search(r"ALTER</span>\s*<span[^>]*>\s*</span><span[^>]*>TABLE", page), page[:2000]
    assert "uq_parts_code" in page
    # rolling back the one applied revision drops the three seeded tables
    assert page.count('class="data-loss"') == 3
    assert "c0ffee000001" in page
    # the journal has the run that applied it
    assert page.count('class="journal-run') == 1
    assert PASSWORD not in page and PASSWORD not in result.stdout + result.stderr
    assert "***" in page  # the masked URL is shown


def test_report_json_is_the_record_the_page_is_built_from(
    run_cli: Any, preflight_project: tuple[Path, str]
) -> None:
    project, url = preflight_project
    common = ("--alembic-ini", project / "alembic.ini", "--url", url)
    result = run_cli(*common, "report", "--format", "json")
    assert result.exit_code == 0, result
    record = json.loads(result.stdout)
    plan = json.loads(run_cli(*common, "plan", "--sql", "--format", "json").stdout)
    status = json.loads(run_cli(*common, "status", "--format", "json").stdout)
    assert record["plan"]["steps"] == plan["steps"]
    assert record["status"]["current"] == status["current"] == ["c0ffee000001"]
    assert [node["revision"] for node in record["graph"]["nodes"]] == [
        "c0ffee000003",
        "c0ffee000002",
        "c0ffee000001",
    ]
    assert record["errors"] == {}
    assert PASSWORD not in result.stdout


def test_plan_markdown_is_short_lists_every_finding_and_goes_to_the_job_summary(
    run_cli: Any, preflight_project: tuple[Path, str], tmp_path: Path
) -> None:
    project, url = preflight_project
    common = ("--alembic-ini", project / "alembic.ini", "--url", url)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = run_cli(
        *common, "plan", "--sql", "--format", "markdown", env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.exit_code == 0, result
    text = result.stdout
    plan = json.loads(run_cli(*common, "plan", "--sql", "--format", "json").stdout)
    for step in plan["steps"]:
        assert f"`{step['revision']}`" in text
        for finding in step["findings"]:
            assert f"`{finding['code']}`" in text
    assert text.startswith("### abmigrate plan: upgrade")
    assert "<details><summary>Lint findings" in text and "```sql" in text
    assert len(text) < 65_536  # a GitHub comment's limit
    assert PASSWORD not in text
    assert summary.read_text() == "earlier step\n" + text  # appended, not replaced


def test_lint_and_check_markdown(run_cli: Any, copy_scenario: Any, tmp_path: Path) -> None:
    project = copy_scenario("lint_preflight")
    lint = run_cli("--alembic-ini", project / "alembic.ini", "lint", "--format", "markdown")
    expected = json.loads(
        run_cli(
            "--alembic-ini", project / "alembic.ini", "lint", "--format", "json", "--fail-on=never"
        ).stdout
    )
    assert lint.exit_code == 1, lint  # error findings still fail the job
    assert lint.stdout.startswith("### ❌ abmigrate lint:")
    assert len(re.findall("^\\| (❌|⚠️|\N{INFORMATION SOURCE}\ufe0f) ", lint.stdout, re.M)) == len(
        expected
    )

    two_heads = copy_scenario("two_heads")
    check = run_cli(
        "--alembic-ini", two_heads / "alembic.ini", "check", "--format", "markdown",
        env={"GITHUB_STEP_SUMMARY": None},
    )  # fmt: skip
    assert check.exit_code == 1, check
    assert check.stdout.startswith("### ❌ abmigrate check:")
    assert "| single_head | ❌ failed |" in check.stdout
    assert "<details><summary>single_head: 2 failures</summary>" in check.stdout


def test_graph_marks_heads_problems_and_the_database_state(
    run_cli: Any, copy_scenario: Any, sqlite_url: str
) -> None:
    project = copy_scenario("two_heads")
    common = ("--alembic-ini", project / "alembic.ini", "--url", sqlite_url)
    up = run_cli(*common, "upgrade", "b200000left1")
    assert up.exit_code == 0, up
    record = json.loads(run_cli(*common, "graph", "--format", "json").stdout)
    nodes = {node["revision"]: node for node in record["nodes"]}
    assert nodes["b200000left1"]["status"] == "applied" and nodes["b200000left1"]["current"]
    assert nodes["b20000right1"]["status"] == "pending"
    assert nodes["b2000000root"]["root"] and nodes["b2000000root"]["status"] == "applied"
    assert {code for node in nodes.values() for code in node["problems"]} == {"multiple_heads"}
    assert [node["revision"] for node in record["nodes"]][-1] == "b2000000root"  # newest on top

    svg = run_cli(*common, "graph").stdout
    assert sorted(graph_node_ids(svg)) == sorted(nodes)
    assert 'class="node revision applied root' in svg

    dot = run_cli(*common, "graph", "--format", "dot").stdout
    assert dot.count('"b2000000root" [') == 1 and '"b200000left1" -> "b2000000root"' in dot
    mermaid = run_cli(*common, "graph", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart TB") and "r_b200000left1 --> r_b2000000root" in mermaid

    # without --env/--url nothing is read from a database: no state
    plain = json.loads(
        run_cli("--alembic-ini", project / "alembic.ini", "graph", "--format", "json").stdout
    )
    assert {node["status"] for node in plain["nodes"]} == {None}


def test_graph_shows_a_revision_the_database_records_but_no_script_defines(
    run_cli: Any, copy_scenario: Any, sqlite_url: str
) -> None:
    project = copy_scenario("linear")
    common = ("--alembic-ini", project / "alembic.ini", "--url", sqlite_url)
    assert run_cli(*common, "upgrade").exit_code == 0
    execute_all(sqlite_url, ["UPDATE alembic_version SET version_num = 'deadbeef0001'"])
    record = json.loads(run_cli(*common, "graph", "--format", "json").stdout)
    unknown = [node for node in record["nodes"] if node["status"] == "unknown"]
    assert [node["revision"] for node in unknown] == ["deadbeef0001"]
    svg = run_cli(*common, "graph").stdout
    assert 'id="rev_deadbeef0001" class="node revision unknown' in svg


def test_without_graphviz_svg_is_refused_with_a_hint_and_the_report_says_so(
    run_cli: Any, tmp_path: Path
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    no_dot = {"PATH": str(empty_bin)}
    common = ("--alembic-ini", ABPARTS_INI, "--url", f"sqlite:///{tmp_path / 'a.db'}")
    svg = run_cli(*common, "graph", env=no_dot)
    assert svg.exit_code == 2, svg
    assert "Graphviz" in svg.stderr and "hint:" in svg.stderr and "Traceback" not in svg.stderr
    assert run_cli(*common, "graph", "--format", "dot", env=no_dot).exit_code == 0
    assert run_cli(*common, "graph", "--format", "mermaid", env=no_dot).exit_code == 0

    out = tmp_path / "r.html"
    report = run_cli(*common, "report", "-o", out, env=no_dot)
    assert report.exit_code == 0, report
    page = out.read_text()
    assert 'id="graph-not-drawn"' in page and "The graph could not be drawn" in page
    assert "apt-get install graphviz" in page
    assert page.count("<li><code>") >= ABPARTS_REVISIONS  # the graph as a list instead


def test_report_with_rehearsal_backups_and_journal_on_sqlite(run_cli: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'abparts.db'}"
    common = ("--alembic-ini", ABPARTS_INI, "--url", url)
    assert run_cli(*common, "upgrade", "5d9b1e3f6a82").exit_code == 0
    backup = run_cli(*common, "backup", "--format", "json")
    assert backup.exit_code == 0, backup
    rehearsal = run_cli(*common, "rehearse", "--clone", "--format", "json")
    assert rehearsal.exit_code == 0, rehearsal
    saved = tmp_path / "rehearsal.json"
    saved.write_text(rehearsal.stdout)

    out = tmp_path / "report.html"
    result = run_cli(*common, "report", "--rehearsal", saved, "-o", out)
    assert result.exit_code == 0, result
    page = out.read_text()
    steps = json.loads(rehearsal.stdout)["steps"]
    assert steps and page.count('class="rehearsal-step"') == len(steps)
    assert page.count('class="backup"') == 1 and json.loads(backup.stdout)["id"] in page
    assert page.count('class="journal-run') == 1
    assert page.count('<details class="step"') == 3  # three revisions pending
    assert len(graph_node_ids(page)) == ABPARTS_REVISIONS

    # Without --rehearsal, the report shows the environment's last rehearsal, kept (0600)
    # when it ran; once the database moves on, it says the figures are of another plan.
    kept = next((tmp_path / ".abmigrate" / "rehearsals").glob("*.json"))
    assert kept.stat().st_mode & 0o777 == 0o600
    assert run_cli(*common, "report", "-o", out).exit_code == 0
    page = out.read_text()
    assert page.count('class="rehearsal-step"') == len(steps)
    assert 'id="rehearsal-stale"' not in page
    assert run_cli(*common, "upgrade").exit_code == 0
    assert run_cli(*common, "report", "-o", out).exit_code == 0
    page = out.read_text()
    assert page.count('class="rehearsal-step"') == len(steps)
    assert 'id="rehearsal-stale"' in page and "rehearse again" in page

    bad = tmp_path / "not-a-rehearsal.json"
    bad.write_text("[1, 2]")
    refused = run_cli(*common, "report", "--rehearsal", bad, "-o", tmp_path / "x.html")
    assert refused.exit_code == 2 and "rehearse --format json" in refused.stderr, refused


def test_incident_report_renders_as_html_with_its_text_escaped(
    run_cli: Any, tmp_path: Path
) -> None:
    incident = tmp_path / "20260101T000000Z-production.md"
    incident.write_text(
        "# Migration incident: upgrade of production failed\n\n"
        "| | |\n|---|---|\n| run id | `r1` |\n\n## The error\n\n"
        "```\n<script>alert(1)</script> duplicate key\n```\n"
    )
    result = run_cli("report", "--incident", incident)
    assert result.exit_code == 0, result
    page = incident.with_suffix(".html").read_text()
    assert "<title>Migration incident: upgrade of production failed</title>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; duplicate key" in page
    assert "<script>" not in page and "<table>" in page
    missing = run_cli("report", "--incident", tmp_path / "nope.md")
    assert missing.exit_code == 2 and "cannot read the incident report" in missing.stderr


def test_report_refuses_an_unwritable_output_in_one_line(run_cli: Any, tmp_path: Path) -> None:
    common = ("--alembic-ini", ABPARTS_INI, "--url", f"sqlite:///{tmp_path / 'a.db'}")
    result = run_cli(*common, "report", "-o", tmp_path / "no" / "such" / "dir" / "r.html")
    assert result.exit_code == 2, result
    assert "cannot write the report" in result.stderr and "Traceback" not in result.stderr
