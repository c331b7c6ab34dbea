"""``abmigrate journal``: the runs recorded for an environment, or one run with its steps."""

from __future__ import annotations

import click

from abmigrate.cli.main import CliState, common_options, emit, open_workspace, pass_state


@click.command()
@click.argument("run_id", metavar="[RUN]", required=False)
@click.option("-n", "--limit", default=20, show_default=True, help="How many runs to show.")
@click.option("--local", is_flag=True, help="Read the local JSON-lines log, not the database.")
@click.option(
    "--acknowledge-checksums",
    is_flag=True,
    help="Accept the current scripts of applied revisions whose checksum changed.",
)
@click.option("--reason", help="Why the changed scripts are acceptable (required to acknowledge).")
@common_options()
@pass_state
def journal(
    state: CliState,
    run_id: str | None,
    limit: int,
    local: bool,
    acknowledge_checksums: bool,
    reason: str | None,
) -> None:
    """Show the journal: who ran which migration, when, and how it went.

    One row per run, newest first. With RUN (the id `journal` shows, or a unique prefix of
    the whole id), that run in full: every revision it applied, with its time.
    """
    from abmigrate import api

    if acknowledge_checksums and run_id:
        raise click.UsageError("--acknowledge-checksums takes no RUN")
    workspace = open_workspace(state)
    if acknowledge_checksums:
        if not reason:
            raise click.UsageError("--acknowledge-checksums needs --reason 'why'")
        emit(state, api.acknowledge_checksums(workspace, reason))
        return
    if run_id:
        emit(state, api.journal_run(workspace, run_id, local=local))
        return
    emit(state, api.journal(workspace, limit=limit, local=local))
