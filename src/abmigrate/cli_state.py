"""``diagnose``, ``drift`` and ``rehearse``: measure the database's real state."""

from __future__ import annotations

import click

from abmigrate.cli import CliState, common_options, emit, open_workspace, pass_state

__all__ = ["diagnose", "drift"]


@click.command()
@click.option("--no-models", is_flag=True, help="Do not compare with the models.")
@common_options()
@pass_state
def diagnose(state: CliState, no_models: bool) -> None:
    """Which revision the schema really matches, with evidence and the command to fix it.

    Reads the database only; the revisions are replayed in scratch databases (cached).
    Exit 1 when the state needs action (anything but up to date, behind or empty).
    """
    from abmigrate import api

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
