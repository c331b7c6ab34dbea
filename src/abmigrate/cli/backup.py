"""Commands `backup`, `backups`, `verify-backup` and `restore`."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from abmigrate.cli.main import CliState, common_options, emit, open_workspace, pass_state

__all__ = ["backup", "backups", "restore", "verify_backup"]


@click.command()
@common_options()
@pass_state
def backup(state: CliState) -> None:
    """Back up the environment's database (checksummed, read back, retention applied)."""
    from abmigrate import api

    emit(state, api.backup(open_workspace(state)))


@click.command()
@common_options()
@pass_state
def backups(state: CliState) -> None:
    """List the environment's backups, newest first."""
    from abmigrate import api

    # Backups can be listed and checked on a machine that cannot reach the database.
    emit(state, api.backups(open_workspace(state, require_url=False)))


@click.command("verify-backup")
@click.argument("reference", metavar="ID|PATH")
@click.option(
    "--restore-test",
    is_flag=True,
    help="Also restore into a scratch database and compare row counts and data checksums.",
)
@click.option(
    "--scratch-url",
    help="Server for the restore test's scratch database (default: the environment's).",
)
@common_options()
@pass_state
def verify_backup(
    state: CliState, reference: str, restore_test: bool, scratch_url: str | None
) -> None:
    """Check a backup's checksums and archive; optionally restore-test it."""
    from abmigrate import api

    workspace = open_workspace(state, require_url=False)
    emit(
        state,
        api.verify_backup(workspace, reference, restore_test=restore_test, scratch_url=scratch_url),
    )


def _restore_confirmer(state: CliState) -> Callable[[str], bool] | None:
    if state.yes:
        return lambda label: True
    if not sys.stdin.isatty():
        return None

    def ask(label: str) -> bool:
        answer = click.prompt(
            f"{label} is not empty and will be replaced. Type {label} to go on",
            default="",
            show_default=False,
            err=True,
        )
        return bool(answer.strip() == label)

    return ask


@click.command()
@click.argument("reference", metavar="ID|PATH")
@click.option("--target-url", help="Restore into this database instead of the environment's.")
@common_options(confirm=True)
@pass_state
def restore(state: CliState, reference: str, target_url: str | None) -> None:
    """Restore a backup into the environment's database (or --target-url)."""
    from abmigrate import api

    emit(
        state,
        api.restore(
            open_workspace(state),
            reference,
            target_url=target_url,
            confirm=_restore_confirmer(state),
        ),
    )
