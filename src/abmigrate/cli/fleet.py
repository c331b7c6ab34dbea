"""``abmigrate fleet status|plan|upgrade|downgrade|diagnose``: one plan over many targets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from abmigrate.cli.main import CliState, common_options, pass_state
from abmigrate.errors import GuardRefused

if TYPE_CHECKING:
    from abmigrate.config.workspace import Workspace
    from abmigrate.fleet.inventory import Fleet, Target
    from abmigrate.results import TargetOutcome

__all__ = ["fleet"]

F = TypeVar("F", bound=Callable[..., Any])


def _fleet_options(function: F) -> F:
    for option in reversed(
        [
            click.option("--fleet", "fleet_name", metavar="NAME", help="A configured fleet."),
            click.option(
                "--targets",
                "targets_file",
                type=click.Path(path_type=Path, dir_okay=False),
                help="A file of targets, one name=URL, URL or schema:NAME a line"
                " (no configuration needed).",
            ),
            click.option(
                "--canary",
                metavar="NAME[,NAME…]",
                help="The first cohort: its failure halts the rollout.",
            ),
            click.option(
                "--concurrency",
                type=click.IntRange(min=1),
                help="Targets at once (threads; each its own connection, lock and journal).",
            ),
            click.option(
                "--shard",
                metavar="K/N",
                help="Only the K-th of N stable subsets (hash of the target's name).",
            ),
        ]
    ):
        function = option(function)
    return function


def _rollout_options(function: F) -> F:
    from abmigrate.cli.main import migrate_options

    for option in reversed(
        [
            click.option(
                "--failure-budget",
                type=click.IntRange(min=0),
                help="Halt once more than K targets failed (default 0: at the first).",
            ),
            click.option(
                "--continue-on-error",
                is_flag=True,
                default=None,
                help="Go on whatever fails after the canaries (a failed canary still halts).",
            ),
            click.option(
                "--wave-size",
                type=click.IntRange(min=0),
                help="Targets per wave after the canaries (0: one wave).",
            ),
        ]
    ):
        function = option(function)
    return migrate_options(function)


@click.group()
def fleet() -> None:
    """One plan over many databases or tenant schemas: canary first, halt on failure.

    Targets come from [tool.abmigrate.fleets.NAME] (urls, targets_file, schemas, query,
    command) or --targets FILE; each inherits the environment's policy. See docs/fleet.md.
    """


class _Chosen:
    """What every fleet command starts from: the base workspace, the fleet, its targets."""

    def __init__(
        self,
        state: CliState,
        fleet_name: str | None,
        targets_file: Path | None,
        canary: str | None,
        concurrency: int | None,
        shard: str | None,
    ) -> None:
        from abmigrate.bridge.project import AlembicProject
        from abmigrate.config.settings import load_settings
        from abmigrate.config.workspace import Workspace
        from abmigrate.errors import ConfigError
        from abmigrate.fleet.inventory import load_fleet
        from abmigrate.fleet.shard import parse_shard

        settings = load_settings(state.config, alembic_ini=state.alembic_ini, url=state.url)
        self.fleet: Fleet = load_fleet(
            settings, fleet_name, env=state.env, targets_file=targets_file
        )
        environment = self.fleet.environment
        project = AlembicProject(settings.alembic_ini, environment.url or None, state.x_args)
        self.base: Workspace = Workspace(settings, environment, project)
        self.shard = parse_shard(shard) if shard else None
        self.targets: list[Target] = (
            self.shard.select(self.fleet.targets) if self.shard else list(self.fleet.targets)
        )
        names = {target.name for target in self.fleet.targets}
        self.canary = (
            [name.strip() for name in canary.split(",") if name.strip()]
            if canary
            else list(self.fleet.canary)
        )
        unknown = [name for name in self.canary if name not in names]
        if unknown:
            raise ConfigError(
                f"--canary names unknown targets: {', '.join(unknown)}",
                hint="`abmigrate fleet status` lists the targets",
            )
        self.concurrency = concurrency or self.fleet.concurrency


def _emit(state: CliState, result: Any, human: Callable[[Any, Any], None]) -> None:
    from abmigrate.render.records import console, render_json

    if state.output_format == "json":
        click.echo(render_json(result))
    else:
        human(result, console())


def _survey(state: CliState, command: str, chosen: _Chosen, target: str | None = None) -> Any:
    from abmigrate.fleet.survey import survey

    return survey(
        chosen.base,
        chosen.fleet,
        chosen.targets,
        command,
        concurrency=chosen.concurrency,
        target=target,
        canary=chosen.canary,
        wave_size=chosen.fleet.wave_size,
        shard=str(chosen.shard) if chosen.shard else None,
    )


@fleet.command()
@_fleet_options
@common_options()
@pass_state
@click.pass_context
def status(ctx: click.Context, state: CliState, /, **options: Any) -> None:
    """Revisions, last runs and fleet drift of every target.

    Fleet drift: targets at the same revision whose schemas differ (exit 1 when some differ
    or cannot be read)."""
    from abmigrate.render.fleet import render_fleet_survey

    result = _survey(state, "status", _Chosen(state, **options))
    _emit(state, result, render_fleet_survey)
    errors = [target for target in result.targets if target.error]
    ctx.exit(1 if result.drifted or errors else 0)


@fleet.command()
@click.argument("target", required=False)
@_fleet_options
@common_options()
@pass_state
def plan(state: CliState, /, target: str | None, **options: Any) -> None:
    """Per target: cohort, current revision, what would run.

    What `fleet upgrade TARGET` would do; writes nothing."""
    from abmigrate.render.fleet import render_fleet_survey

    chosen = _Chosen(state, **options)
    target = target or chosen.base.project.default_target()
    _emit(state, _survey(state, "plan", chosen, target), render_fleet_survey)


@fleet.command()
@_fleet_options
@common_options()
@pass_state
def diagnose(state: CliState, /, **options: Any) -> None:
    """Every target's real state and the fixing command.

    `abmigrate diagnose` on each target; reads only."""
    from abmigrate.render.fleet import render_fleet_survey

    _emit(state, _survey(state, "diagnose", _Chosen(state, **options)), render_fleet_survey)


@fleet.command()
@click.argument("target", required=False)
@_fleet_options
@_rollout_options
@common_options(confirm=True)
@pass_state
@click.pass_context
def upgrade(ctx: click.Context, state: CliState, /, target: str | None, **options: Any) -> None:
    """Upgrade every target: canaries first, then waves.

    Targets already at TARGET (default head; every head when each is in its own labelled
    branch) are skipped, so a rerun after a halt or a crash
    picks up where the fleet stands."""
    ctx.exit(_roll_out(state, "upgrade", target, options))


@fleet.command(context_settings={"ignore_unknown_options": True})
@click.argument("target")
@_fleet_options
@_rollout_options
@common_options(confirm=True)
@pass_state
@click.pass_context
def downgrade(ctx: click.Context, state: CliState, /, target: str, **options: Any) -> None:
    """Downgrade every target to an absolute TARGET.

    TARGET is a revision id or base, never relative (-1): a rerun skips the targets already
    there."""
    ctx.exit(_roll_out(state, "downgrade", target, options))


def _roll_out(state: CliState, direction: str, target: str | None, options: dict[str, Any]) -> int:
    from abmigrate.config.settings import parse_duration_ms
    from abmigrate.fleet.rollout import RolloutOptions, check_target, roll_out
    from abmigrate.render.fleet import render_fleet_run

    chosen = _Chosen(
        state,
        **{
            key: options.pop(key)
            for key in ("fleet_name", "targets_file", "canary", "concurrency", "shard")
        },
    )
    target = target or chosen.base.project.default_target()
    check_target(direction, target)  # type: ignore[arg-type]
    fleet_config = chosen.fleet
    lock_wait = options["lock_wait"]
    budget = options["failure_budget"]
    continue_on_error = options["continue_on_error"]
    rollout = RolloutOptions(
        direction=direction,  # type: ignore[arg-type]
        target=target,
        canary=chosen.canary,
        concurrency=chosen.concurrency,
        wave_size=(
            options["wave_size"] if options["wave_size"] is not None else fleet_config.wave_size
        ),
        failure_budget=budget if budget is not None else fleet_config.failure_budget,
        continue_on_error=(
            continue_on_error if continue_on_error is not None else fleet_config.continue_on_error
        ),
        dry_run=options["dry_run"],
        override=options["override"],
        no_backup=options["no_backup"],
        lock_wait_ms=None if lock_wait is None else parse_duration_ms(lock_wait, key="--lock-wait"),
        shard=str(chosen.shard) if chosen.shard else None,
    )
    _confirm(state, chosen, rollout)
    result = roll_out(chosen.base, fleet_config, chosen.targets, rollout, on_done=_live(state))
    _emit(state, result, render_fleet_run)
    return 0 if result.ok else 1


def _confirm(state: CliState, chosen: _Chosen, rollout: Any) -> None:
    """One typed confirmation for the whole fleet, never one per target."""
    import sys

    environment = chosen.fleet.environment
    if not environment.policy.require_confirmation or state.yes:
        return
    what = f"{rollout.direction} {len(chosen.targets)} targets of fleet {chosen.fleet.name}"
    if not sys.stdin.isatty():
        raise GuardRefused(
            f"{environment.name} requires confirmation to {what}, and there is nobody to ask",
            hint="pass --yes once the fleet plan (`abmigrate fleet plan`) is reviewed",
            reasons=["confirmation required"],
        )
    answer = click.prompt(
        f"Type the environment name ({environment.name}) to {what} to {rollout.target}",
        default="",
        show_default=False,
        err=True,
    )
    if answer.strip() != environment.name:
        raise GuardRefused("not confirmed: nothing was run", reasons=["not confirmed"])


def _live(state: CliState) -> Callable[[TargetOutcome], None]:
    """Each target's summary line on standard error as it finishes (one line each, from
    whichever thread ran it: never interleaved step output)."""
    from abmigrate.render.fleet import target_line
    from abmigrate.render.records import console

    err = console(stderr=True)
    printing = threading.Lock()

    def done(outcome: TargetOutcome) -> None:
        with printing:
            for line in target_line(outcome, err.width):
                err.print(line)

    return done
