"""``abmigrate check``: the CI gate (graph, models, lint, round trip) in one command."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from abmigrate.cli.main import CliState, pass_state, remember_env, remember_format
from abmigrate.db.dialects import dialect_for

if TYPE_CHECKING:
    from abmigrate.check.checks import CheckContext

__all__ = ["check"]


def _csv(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


@click.command()
@click.option(
    "--url",
    help="Server to create scratch databases on (PostgreSQL/MySQL URL; its own database is"
    " never changed). Default: the --env environment's server, else temporary SQLite files.",
)
@click.option("--checks", "only", help="Comma-separated checks to run (default: all default ones).")
@click.option("--skip", help="Comma-separated checks not to run.")
@click.option("--since", help="lint only revisions new since this revision id or git ref.")
@click.option("--list", "list_only", is_flag=True, help="List the checks and what they are for.")
@click.option("--env", "-e", callback=remember_env, expose_value=False, help="Environment name.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["human", "json", "github", "markdown"]),
    callback=remember_format,
    expose_value=False,
    help="Output format (github: workflow annotations; markdown: for a pull request, also"
    " appended to $GITHUB_STEP_SUMMARY when set).",
)
@pass_state
def check(
    state: CliState,
    url: str | None,
    only: str | None,
    skip: str | None,
    since: str | None,
    list_only: bool,
) -> None:
    """Run the CI gate: single head/root, graph integrity, models, lint, round trip.

    Exit 1 when a check fails, naming the revision, the SQL and the difference.
    """
    from abmigrate import api
    from abmigrate.check.checks import CHECKS, select_checks
    from abmigrate.render.records import console, render_check_report, render_json

    if list_only:
        out = console()
        for spec in CHECKS.values():
            tag = "" if spec.default else " (opt-in)"
            out.print(f"[bold]{spec.name}[/]{tag}: {spec.rationale}")
        return
    select_checks(_csv(only), _csv(skip))  # unknown names fail before any work
    context, note = _context(state, url, since)
    report = api.check(context, _csv(only) or None, _csv(skip))
    if state.output_format == "json":
        click.echo(render_json(report))
    elif state.output_format == "markdown":
        from abmigrate.cli.main import emit_markdown
        from abmigrate.render.markdown import check_markdown

        emit_markdown(check_markdown(report.to_record()))
    else:
        render_check_report(report, console(), github=state.output_format == "github", note=note)
    if not report.passed:
        click.get_current_context().exit(1)


def _context(state: CliState, url: str | None, since: str | None) -> tuple[CheckContext, str]:
    """The checks' context (alembic.ini, scratch server, settings) and a note on the choice.

    Scratch databases go to the server of --url, else of the --env environment, else into
    temporary SQLite files (with a note when the default environment is not SQLite).
    """
    from abmigrate.check.checks import CheckContext
    from abmigrate.config.settings import load_settings
    from abmigrate.errors import ConfigError

    server = url or state.url
    settings = load_settings(state.config, alembic_ini=state.alembic_ini, url=server)
    environment = None
    note = ""
    if state.env is not None:
        environment = settings.environment(state.env)
        server = server or environment.url
    else:
        try:
            environment = settings.environment(None)
        except ConfigError:
            environment = None
        if (
            server is None
            and environment is not None
            and not dialect_for(environment.dialect).file_based
        ):
            note = (
                f"the {environment.name} environment uses {environment.dialect}: pass --url"
                f" (a server for scratch databases) or --env {environment.name} to check on"
                f" {environment.dialect}"
            )
    if server is None and environment is not None and _names_async_driver(environment.url):
        # An async env.py builds its engine from the scratch URL: plain sqlite:// will not do.
        server = "sqlite+aiosqlite://"
    context = CheckContext(
        alembic_ini=settings.alembic_ini,
        server_url=server,
        since=since,
        settings=settings,
        environment=environment,
    )
    return context, note


def _names_async_driver(url: str) -> bool:
    from abmigrate.db.database import parse_url, sync_url
    from abmigrate.errors import AbmigrateError

    try:
        parsed = parse_url(url)
    except AbmigrateError:
        return False
    return sync_url(parsed) != parsed
