"""``diagnose``, ``drift`` and ``rehearse``: measure the database's real state."""

from __future__ import annotations

import click

from abmigrate.cli.main import (
    CliState,
    common_options,
    emit,
    event_printer,
    open_workspace,
    pass_state,
)

__all__ = ["diagnose", "drift", "rehearse"]


@click.command()
@click.option("--no-models", is_flag=True, help="Do not compare with the models.")
@click.option(
    "--write-revision",
    is_flag=True,
    help="Write a revision capturing the objects made by hand (database recorded at head).",
)
@click.option("-m", "--message", help="Message of the revision --write-revision writes.")
@common_options()
@pass_state
def diagnose(state: CliState, no_models: bool, write_revision: bool, message: str | None) -> None:
    """Which revision the schema really matches, with evidence and the command to fix it.

    Reads the database only; the revisions are replayed in scratch databases (cached).
    Exit 1 when the state needs action (anything but up to date, behind or empty).
    With --write-revision, writes a revision file capturing hand-made changes instead.
    """
    from abmigrate import api

    if write_revision:
        created = api.capture(open_workspace(state), message or "capture hand-applied changes")
        emit(state, created)
        click.echo(
            f"next: review it, then record it here (its objects exist already):"
            f" abmigrate stamp {created.revision}",
            err=True,
        )
        return
    result = api.diagnose(open_workspace(state), with_models=not no_models)
    emit(state, result)
    if not result.healthy:
        click.get_current_context().exit(1)


@click.command()
@click.option(
    "--against",
    default="models",
    show_default=True,
    help="models, head, or a revision: what the live schema should be.",
)
@common_options()
@pass_state
def drift(state: CliState, against: str) -> None:
    """Differences between the live schema and the models (or a revision); exit 1 on drift."""
    from abmigrate import api

    result = api.drift(open_workspace(state), against)
    emit(state, result)
    if result.drifted:
        click.get_current_context().exit(1)


@click.command()
@click.argument("target", required=False)
@click.option(
    "--from-backup",
    "from_backup",
    metavar="ID",
    help="Rehearse on this backup (an id, or 'latest'). Default: the latest backup, if any.",
)
@click.option("--clone", is_flag=True, help="Rehearse on a fresh copy of the database.")
@click.option(
    "--scale-rows",
    type=click.IntRange(min=1),
    metavar="N",
    help="Rehearse on the schema plus N synthetic rows per table (no backup needed).",
)
@common_options()
@pass_state
def rehearse(
    state: CliState,
    target: str | None,
    from_backup: str | None,
    clone: bool,
    scale_rows: int | None,
) -> None:
    """Apply the pending revisions to a scratch copy and measure each one.

    Per revision: duration, strongest lock per table, tables rewritten, rows touched; then
    downgrade and upgrade again. The scratch database is always dropped. Exit 1 on failure.
    """
    from abmigrate import api

    if sum(bool(option) for option in (from_backup, clone, scale_rows)) > 1:
        raise click.UsageError("choose one of --from-backup, --clone and --scale-rows")
    result = api.rehearse(
        open_workspace(state),
        target,
        from_backup=from_backup,
        clone=clone,
        scale_rows=scale_rows,
        observer=event_printer(state),
    )
    emit(state, result)
    if not result.ok:
        click.get_current_context().exit(1)
