"""Commands `graph` (the revision graph as SVG, DOT or Mermaid) and `report` (one
self-contained HTML page for the people who approve a migration, or an incident report)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from abmigrate.cli.main import CliState, open_workspace, pass_state, remember_env

__all__ = ["graph", "report", "write_private"]


env_option = click.option(
    "--env", "-e", callback=remember_env, expose_value=False, help="Environment name."
)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only: reports hold data samples."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _output(text: str, output: str | None, what: str) -> None:
    from abmigrate.errors import AbmigrateError

    if output in (None, "-"):
        click.echo(text, nl=not text.endswith("\n"))
        return
    path = Path(str(output))
    try:
        write_private(path, text)
    except OSError as exc:
        raise AbmigrateError(
            f"cannot write {what} to {path}: {exc.strerror}", hint="choose another -o path"
        ) from None
    click.echo(f"wrote {what} to {path} ({len(text.encode()) // 1024 + 1} KB)")


@click.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["svg", "dot", "mermaid", "json"]),
    default=None,
    help="svg (needs Graphviz's dot), dot, mermaid or json. Default: svg.",
)
@click.option("-o", "--output", metavar="PATH", help="Write to PATH instead of standard output.")
@env_option
@pass_state
def graph(state: CliState, output_format: str | None, output: str | None) -> None:
    """The revision graph, newest at the top: heads, roots, merges, branch labels, problems.

    With --env (or --url) each revision is marked applied, pending or unknown to the scripts.
    """
    from abmigrate import api
    from abmigrate.render import graph as drawing

    fmt = output_format or ("json" if state.output_format == "json" else "svg")
    with_database = state.env is not None or state.url is not None
    workspace = open_workspace(state, require_url=with_database)
    record = api.graph(workspace, with_database=with_database).to_record()
    if fmt == "json":
        text = json.dumps(record, indent=2)
    elif fmt == "dot":
        text = drawing.to_dot(record)
    elif fmt == "mermaid":
        text = drawing.to_mermaid(record)
    else:
        text = drawing.to_svg(record)
    _output(text, output, "the graph")


@click.command()
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    default=None,
    help="Where to write the HTML (default: abmigrate-report-ENV.html; - for standard output).",
)
@click.option(
    "--rehearsal",
    "rehearsal_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Include a rehearsal: the JSON `abmigrate rehearse --format json` printed.",
)
@click.option(
    "--rollback",
    default="-1",
    show_default=True,
    metavar="TARGET",
    help="The rollback whose data loss is estimated (a downgrade target).",
)
@click.option(
    "--incident",
    "incident_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Render this incident report (incidents/*.md, written by a failed run) instead.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["html", "json"]),
    default=None,
    help="html (default) or json: the record the page is rendered from.",
)
@env_option
@pass_state
def report(
    state: CliState,
    output: str | None,
    rehearsal_path: Path | None,
    rollback: str,
    incident_path: Path | None,
    output_format: str | None,
) -> None:
    """One self-contained HTML page of a migration: environment and state, the revision graph,
    the plan with each revision's SQL, lint findings, data preflight, the data lost by a
    rollback, a rehearsal, the journal and the backups. Reads only; loads nothing from the
    network when opened."""
    from abmigrate import api
    from abmigrate.render import html

    if incident_path is not None:
        _incident(incident_path, output)
        return
    rehearsal = _read_rehearsal(rehearsal_path) if rehearsal_path is not None else None
    workspace = open_workspace(state)
    record = api.report(workspace, rollback=rollback, rehearsal=rehearsal).to_record()
    fmt = output_format or ("json" if state.output_format == "json" else "html")
    if fmt == "json":
        _output(json.dumps(record, indent=2, default=str), output or "-", "the report")
        return
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in workspace.environment.name)
    _output(html.render_report(record), output or f"abmigrate-report-{name}.html", "the report")


def _read_rehearsal(path: Path) -> dict[str, Any]:
    from abmigrate.errors import ConfigError

    hint = "save one with `abmigrate rehearse --format json > rehearsal.json`"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the rehearsal {path}: {exc.strerror}", hint=hint) from None
    except ValueError as exc:
        raise ConfigError(f"the rehearsal {path} is not JSON: {exc}", hint=hint) from None
    if not isinstance(record, dict) or not isinstance(record.get("steps"), list):
        raise ConfigError(f"{path} is not a rehearsal record (no steps)", hint=hint)
    return record


def _incident(path: Path, output: str | None) -> None:
    from importlib.metadata import version

    from abmigrate.errors import ConfigError
    from abmigrate.render import html

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the incident report {path}: {exc.strerror}",
            hint="incident reports are in the incidents/ folder next to the configuration",
        ) from None
    page = html.render_incident(text, source=path.name, version=version("abmigrate"))
    _output(page, output or str(path.with_suffix(".html")), "the incident report")
