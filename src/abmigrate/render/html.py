"""The migration report and incident reports as one self-contained HTML page each.

Rendered by Jinja2 (autoescaped) from the report record
(:class:`abmigrate.results.MigrationReport` ``.to_record()``): styles are inline, SQL is
highlighted by Pygments into inline markup, the revision graph is inline SVG drawn by
Graphviz. The page loads nothing: no script, font, image or stylesheet from anywhere, so it
works opened from disk or attached to a ticket.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from abmigrate.render.graph import GraphvizMissing, inline_svg, to_svg

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["render_incident", "render_report"]

_MAX_SAMPLE = 5


@cache
def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("abmigrate.render", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["sql"] = _highlight_sql
    environment.filters["seconds"] = _seconds
    environment.filters["when"] = _when
    environment.filters["relative"] = _relative
    return environment


@cache
def _sql_highlighter() -> tuple[Any, Any]:
    """Pygments' SQL lexer and HTML formatter, made once for every step of a report."""
    from pygments.formatters import HtmlFormatter
    from pygments.lexers.sql import SqlLexer

    return SqlLexer(), HtmlFormatter(cssclass="sql", wrapcode=True)


def _highlight_sql(sql: str | None) -> Any:
    """SQL as highlighted, escaped HTML (Pygments escapes the text it wraps)."""
    from markupsafe import Markup
    from pygments import highlight

    lexer, formatter = _sql_highlighter()
    html = highlight(sql or "", lexer, formatter)
    return Markup(html)


def _seconds(value: Any) -> str:
    if value is None:
        return "\N{EN DASH}"
    value = float(value)
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _relative(path: Any) -> str:
    """A file path relative to the working directory when it is below it (shorter to read)."""
    import os

    text = str(path or "")
    try:
        relative = os.path.relpath(text)
    except ValueError:  # another drive on Windows
        return text
    return text if relative.startswith("..") else relative


def _when(value: Any) -> str:
    """An ISO timestamp as ``2026-01-31 12:00:05 UTC`` (the text as it is if not one)."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo else "")


def _sql_styles() -> str:
    from pygments.formatters import HtmlFormatter

    styles = HtmlFormatter(style="friendly").get_style_defs(".sql")  # type: ignore[no-untyped-call]
    return str(styles)


def _graph_svg(graph: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(inline SVG, None) or (None, why the graph could not be drawn)."""
    from markupsafe import Markup

    if graph is None:
        return None, None
    try:
        return Markup(inline_svg(to_svg(graph))), None
    except GraphvizMissing as exc:
        return None, f"{exc.message}; hint: {exc.hint}"
    except Exception as exc:  # a drawing failure must not cost the rest of the report
        return None, f"Graphviz could not draw the graph: {exc}"


def _findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    plan = report.get("plan") or {}
    return [finding for step in plan.get("steps") or [] for finding in step.get("findings") or []]


def _preflight(report: dict[str, Any]) -> list[dict[str, Any]]:
    plan = report.get("plan") or {}
    return [
        {**check, "sample": list(check.get("sample") or [])[:_MAX_SAMPLE]}
        for step in plan.get("steps") or []
        for check in step.get("preflight") or []
    ]


def render_report(report: dict[str, Any]) -> str:
    """The HTML page of a report record."""
    svg, graph_problem = _graph_svg(report.get("graph"))
    findings = _findings(report)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            status=report.get("status") or {},
            graph=report.get("graph"),
            graph_svg=svg,
            graph_problem=graph_problem,
            plan=report.get("plan"),
            findings=findings,
            errors_count=sum(1 for finding in findings if finding.get("severity") == "error"),
            preflight=_preflight(report),
            rollback=report.get("rollback"),
            rehearsal=report.get("rehearsal"),
            journal=report.get("journal"),
            backups=report.get("backups"),
            problems=report.get("errors") or {},
            sql_styles=_sql_styles(),
        )
    )


def render_incident(markdown: str, *, source: str, version: str) -> str:
    """An incident report (the Markdown file a failed run wrote) as an HTML page in the
    report's style. Raw HTML in the file is shown as text, not interpreted."""
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = Markup(parser.render(markdown))
    title = next(
        (line.lstrip("# ").strip() for line in markdown.splitlines() if line.startswith("# ")),
        "Migration incident",
    )
    return (
        _environment()
        .get_template("incident.html.j2")
        .render(title=title, body=body, source=source, version=version)
    )
