"""A fleet upgrade or downgrade: the single-target pipeline, target after target.

Each target runs :func:`abmigrate.api.upgrade` (or ``downgrade``) on a workspace of its own
— its own connection, migration lock, journal, backup and incident report; nothing here
re-implements a gate. The fleet decides only the order and when to stop:

- cohorts: the canaries first, then the other targets in waves (``wave_size``, 0: one);
- a failed (or refused) canary halts the rollout once the canaries in flight finish;
- more than ``failure_budget`` failed targets halt it (``continue_on_error`` ignores the
  budget, never a canary);
- a target that already records the target revision is skipped without taking its lock, so
  re-running after a halt or a crash picks up where the fleet stands, and the pipeline checks
  again under the lock (two fleet runs at once never migrate a target twice).

The confirmation is the fleet's, asked once before (``confirmed=True`` here).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from abmigrate import api
from abmigrate.config.workspace import Workspace
from abmigrate.db.database import scrub
from abmigrate.errors import AbmigrateError, GuardRefused, MigrationFailed, RevisionError
from abmigrate.fleet.inventory import Fleet, Target, target_workspace
from abmigrate.fleet.schedule import run_each
from abmigrate.results import Direction, FleetRun, RunResult, TargetOutcome

__all__ = ["RolloutOptions", "cohorts", "roll_out"]

_RELATIVE = re.compile(r"[+-]\d+$")


@dataclass(frozen=True)
class RolloutOptions:
    direction: Direction
    target: str
    canary: Sequence[str] = ()
    concurrency: int = 4
    wave_size: int = 0
    failure_budget: int = 0
    continue_on_error: bool = False
    dry_run: bool = False
    override: str | None = None
    no_backup: bool = False
    lock_wait_ms: int | None = None
    shard: str | None = None


def cohorts(
    targets: Sequence[Target], canary: Sequence[str], wave_size: int
) -> list[tuple[str, list[Target]]]:
    """("canary", the named targets), then ("wave 1", …) of ``wave_size`` targets each."""
    named = set(canary)
    first = [target for target in targets if target.name in named]
    rest = [target for target in targets if target.name not in named]
    groups: list[tuple[str, list[Target]]] = [("canary", first)] if first else []
    size = wave_size or len(rest) or 1
    for number, start in enumerate(range(0, len(rest), size), 1):
        groups.append((f"wave {number}", rest[start : start + size]))
    return groups


def check_target(direction: Direction, target: str) -> None:
    """A fleet's target must name where every member ends: re-running a relative one
    (``-1``) after a halt would move the finished targets again."""
    if _RELATIVE.search(target):
        raise RevisionError(
            f"a fleet {direction} needs an absolute target, not {target!r}",
            hint="name the revision (an id, head or base): re-running then skips the"
            " targets already there",
        )


def roll_out(
    base: Workspace,
    fleet: Fleet,
    targets: Sequence[Target],
    options: RolloutOptions,
    *,
    on_done: Callable[[TargetOutcome], None] | None = None,
) -> FleetRun:
    check_target(options.direction, options.target)
    started = time.monotonic()
    resolved = base.project.resolve_target(options.target)
    heads = sorted(base.project.heads())
    outcomes: dict[str, TargetOutcome] = {}
    lock = threading.Lock()
    failures: list[str] = []
    halted: list[str] = []

    def finished(outcome: TargetOutcome, canary: bool) -> None:
        with lock:
            outcomes[outcome.name] = outcome
            if outcome.outcome in ("failed", "refused"):
                failures.append(outcome.name)
                if canary and not halted:
                    halted.append(f"canary {outcome.name} {outcome.outcome}")
                elif (
                    not options.continue_on_error
                    and len(failures) > options.failure_budget
                    and not halted
                ):
                    count = f"{len(failures)} target{'s' if len(failures) > 1 else ''}"
                    halted.append(f"{count} failed (failure budget {options.failure_budget})")
        if on_done is not None:
            on_done(outcome)

    for cohort, members in cohorts(targets, options.canary, options.wave_size):
        if halted:
            break

        def work(target: Target, cohort: str = cohort) -> None:
            outcome = _migrate_one(base, fleet, target, cohort, options, resolved, heads)
            finished(outcome, cohort == "canary")

        try:
            run_each(members, work, concurrency=options.concurrency, stop=lambda: bool(halted))
        except KeyboardInterrupt:
            halted.append("interrupted")
            break
    cohort_of = {
        target.name: cohort
        for cohort, members in cohorts(targets, options.canary, options.wave_size)
        for target in members
    }
    report = [
        outcomes.get(target.name)
        or TargetOutcome(
            name=target.name,
            database=target.database,
            schema=target.schema,
            cohort=cohort_of[target.name],
            outcome="not_run",
        )
        for target in targets
    ]
    return FleetRun(
        fleet=fleet.name,
        environment=fleet.environment.name,
        direction=options.direction,
        target=options.target,
        shard=options.shard,
        concurrency=options.concurrency,
        failure_budget=options.failure_budget,
        continue_on_error=options.continue_on_error,
        elapsed_s=round(time.monotonic() - started, 3),
        targets=report,
        halted=halted[0] if halted else None,
    )


def _migrate_one(
    base: Workspace,
    fleet: Fleet,
    target: Target,
    cohort: str,
    options: RolloutOptions,
    resolved: str,
    heads: list[str],
) -> TargetOutcome:
    started = time.monotonic()
    outcome = TargetOutcome(
        name=target.name,
        database=target.database,
        schema=target.schema,
        cohort=cohort,
        outcome="failed",
    )
    try:
        workspace = target_workspace(base, fleet, target)
        before = workspace.recorded_revisions() or []
        outcome.from_revisions = outcome.to_revisions = list(before)
        if _already_there(before, options.direction, resolved, heads):
            outcome.outcome = "up_to_date"
        else:
            _record_run(outcome, _run(workspace, options))
    except MigrationFailed as exc:
        outcome.error = scrub(exc.message, target.url)
        outcome.incident = exc.incident_path
        outcome.to_revisions = list(exc.current)
    except GuardRefused as exc:
        outcome.outcome = "refused"
        reasons = f": {'; '.join(exc.reasons)}" if exc.reasons else ""
        outcome.error = scrub(exc.message + reasons, target.url)
    except AbmigrateError as exc:
        outcome.error = scrub(exc.message, target.url)
    except Exception as exc:
        outcome.error = scrub(f"unexpected {type(exc).__name__}: {exc}", target.url)
    outcome.duration_s = round(time.monotonic() - started, 3)
    return outcome


def _already_there(
    before: list[str], direction: Direction, resolved: str, heads: list[str]
) -> bool:
    if resolved in ("head", "heads"):
        return direction == "upgrade" and bool(before) and sorted(before) == heads
    if resolved == "base":
        return direction == "downgrade" and not before
    return before == [resolved]


def _run(workspace: Workspace, options: RolloutOptions) -> RunResult:
    migrate = api.upgrade if options.direction == "upgrade" else api.downgrade
    return migrate(
        workspace,
        options.target,
        confirm=lambda plan: True,  # the fleet was confirmed once, before any target
        dry_run=options.dry_run,
        override=options.override,
        no_backup=options.no_backup,
        lock_wait_ms=options.lock_wait_ms,
    )


def _record_run(outcome: TargetOutcome, result: RunResult) -> None:
    outcome.outcome = "succeeded" if result.applied else "up_to_date"
    outcome.from_revisions = list(result.from_revisions)
    outcome.to_revisions = list(result.to_revisions)
    outcome.applied = len(result.applied)
    outcome.run_id = result.run_id
    if result.backup:
        outcome.backup = str(result.backup.get("path") or result.backup.get("artifact") or "")
