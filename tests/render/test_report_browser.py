"""The HTML report in a real browser: Debian's headless Chromium (installed by
scripts/ensure-tools), driven by Playwright pointed at that executable.

The page is opened from disk, as someone opens an attachment: it must load nothing else
(no request but the file itself), log no console error, draw one graph node per revision,
and show something at a desktop width (1280 px) and a phone width (390 px) without making
the page itself scroll sideways.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

REPO_ROOT = Path(__file__).resolve().parents[2]
ABPARTS_INI = REPO_ROOT / "examples" / "abparts" / "alembic.ini"
CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ("environment", "graph", "plan", "lint", "preflight", "rollback", "rehearsal")
SECTIONS += ("journal", "backups")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/ensure-tools installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture
def abparts_report(run_cli: Any, tmp_path: Path) -> tuple[Path, list[str]]:
    """The ABParts report: its database at the merge (three revisions pending), one backup,
    one run in the journal. Returns the page and the project's revisions."""
    common = ("--alembic-ini", ABPARTS_INI, "--url", f"sqlite:///{tmp_path / 'abparts.db'}")
    assert run_cli(*common, "upgrade", "5d9b1e3f6a82").exit_code == 0
    assert run_cli(*common, "backup").exit_code == 0
    out = tmp_path / "report.html"
    result = run_cli(*common, "report", "-o", out)
    assert result.exit_code == 0, result
    graph = json.loads(run_cli(*common, "graph", "--format", "json").stdout)
    return out, [node["revision"] for node in graph["nodes"]]


def pixel_spread(png: bytes) -> tuple[float, int]:
    """(standard deviation of the grey levels, number of distinct colours) of a screenshot:
    a blank or single-colour page has (0, 1)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    grey = ImageStat.Stat(image.convert("L"))
    colours = image.getcolors(maxcolors=1 << 20) or []
    return grey.stddev[0], len(colours)


@pytest.mark.parametrize("width", [1280, 390])
def test_report_opens_from_disk_with_no_request_no_error_and_draws_the_graph(
    browser: Any, abparts_report: tuple[Path, list[str]], width: int, tmp_path: Path
) -> None:
    page_path, revisions = abparts_report
    url = page_path.resolve().as_uri()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda message: (
            problems.append(f"{message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        page.goto(url, wait_until="load")
        assert requests == [url]  # nothing else: no CDN, font, script or image
        assert problems == []
        for section in SECTIONS:
            assert page.locator(f"section#{section}").is_visible(), section
        nodes = page.locator("#graph-svg svg g.node.revision")
        assert nodes.count() == len(revisions)
        drawn = nodes.evaluate_all("nodes => nodes.map(n => n.id.slice('rev_'.length))")
        assert sorted(drawn) == sorted(revisions)
        # The page itself never scrolls sideways: wide tables, SQL and the graph scroll
        # inside their own boxes.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        png = page.screenshot()
        (tmp_path / f"report-{width}.png").write_bytes(png)
        spread, colours = pixel_spread(png)
        assert spread > 10 and colours > 50, (spread, colours)
        # The pending revisions' SQL is there, folded; opening one shows highlighted SQL.
        step = page.locator("details.step:has(.sql)").first
        step.locator("summary").click()
        assert step.locator(".sql").is_visible()
    finally:
        context.close()


def test_incident_report_opens_with_no_request_and_no_error(
    browser: Any, run_cli: Any, tmp_path: Path
) -> None:
    incident = tmp_path / "incident.md"
    incident.write_text(
        "# Migration incident: upgrade of production failed\n\n## The error\n\n"
        "```\nduplicate key value violates unique constraint\n```\n"
    )
    assert run_cli("report", "--incident", incident).exit_code == 0
    url = incident.with_suffix(".html").resolve().as_uri()
    page = browser.new_page(viewport={"width": 390, "height": 700})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(url, wait_until="load")
        assert requests == [url] and errors == []
        assert page.locator("h2", has_text="The error").is_visible()
        spread, _ = pixel_spread(page.screenshot())
        assert spread > 10
    finally:
        page.close()
