"""Commands `backup`, `backups`, `verify-backup` and `restore`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from abmigrate.cli.main import CliState, common_options, emit, open_workspace, pass_state

if TYPE_CHECKING:
    from abmigrate.config.settings import Settings

__all__ = ["backup", "backups", "restore", "verify_backup"]


def _settings_and_env(state: CliState) -> tuple[Settings, str]:
    """The settings and the environment's name, without needing its database URL: backups
    can be listed and checked on a machine that cannot reach the database."""
    from abmigrate.config.settings import load_settings
    from abmigrate.errors import ConfigError

    settings = load_settings(state.config, alembic_ini=state.alembic_ini, url=state.url)
    name = (
        state.env
        or os.environ.get("ABMIGRATE_ENV")
        or os.environ.get("ENVIRONMENT")
        or settings.default_env
        or "development"
    )
    if settings.environments and name not in settings.environments:
        known = ", ".join(sorted(settings.environments))
        raise ConfigError(f"unknown environment {name!r} (known: {known})")
    return settings, name


@click.command()
@common_options()
@pass_state
def backup(state: CliState) -> None:
    """Back up the environment's database (checksummed, read back, retention applied)."""
    from abmigrate.backup import take_backup

    emit(state, take_backup(open_workspace(state)))


@click.command()
@common_options()
@pass_state
def backups(state: CliState) -> None:
    """List the environment's backups, newest first."""
    from abmigrate.backup import list_backups

    settings, name = _settings_and_env(state)
    emit(state, list_backups(settings, name))


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
    from abmigrate.backup import verify_backup as verify
    from abmigrate.errors import ConfigError

    settings, name = _settings_and_env(state)
    restore_url = None
    if restore_test:
        restore_url = scratch_url
        if restore_url is None:
            try:
                restore_url = settings.environment(state.env).url
            except ConfigError:
                restore_url = None
    emit(
        state,
        verify(settings, name, reference, restore_test=restore_test, restore_url=restore_url),
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
    from abmigrate.backup import restore as restore_backup

    emit(
        state,
        restore_backup(
            open_workspace(state),
            reference,
            target_url=target_url,
            confirm=_restore_confirmer(state),
        ),
    )
