"""``fleet status``, ``fleet plan`` and ``fleet diagnose``: every target, read only.

Each target is looked at through the single-target API (``api.status``, ``api.diagnose``) on
its own workspace. The per-target journals are the source of truth: a fleet run sharded over
machines is seen whole from anywhere that reaches the databases.

Fleet drift (``status``): targets recording the same revision should have the same schema.
Their live schemas are fingerprinted and grouped; the schema most of them share is the
reference, and each target that differs is named with its first difference.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from abmigrate import api
from abmigrate.config.workspace import Workspace
from abmigrate.db.database import scrub
from abmigrate.errors import AbmigrateError
from abmigrate.fleet.inventory import Fleet, Target, target_workspace
from abmigrate.fleet.rollout import check_target, cohorts
from abmigrate.fleet.schedule import run_each
from abmigrate.results import FleetSurvey, TargetState

if TYPE_CHECKING:
    from abmigrate.db.fingerprint import Fingerprint

__all__ = ["survey"]


def survey(
    base: Workspace,
    fleet: Fleet,
    targets: Sequence[Target],
    command: str,
    *,
    concurrency: int,
    target: str | None = None,
    canary: Sequence[str] = (),
    wave_size: int = 0,
    shard: str | None = None,
) -> FleetSurvey:
    """``command`` is "status", "plan" (to ``target``) or "diagnose"."""
    if command == "plan":
        check_target("upgrade", target or "head")
    states: dict[str, TargetState] = {}
    fingerprints: dict[str, Fingerprint] = {}
    lock = threading.Lock()

    def look(member: Target) -> None:
        state, fingerprint = _look(base, fleet, member, command, target)
        with lock:
            states[member.name] = state
            if fingerprint is not None:
                fingerprints[member.name] = fingerprint

    run_each(targets, look, concurrency=concurrency, one_per_database=False)
    ordered = [states[member.name] for member in targets]
    if command == "plan":
        for cohort, members in cohorts(targets, canary, wave_size):
            for member in members:
                states[member.name].cohort = cohort
    groups = _drift_groups(ordered, fingerprints) if command == "status" else []
    return FleetSurvey(
        fleet=fleet.name,
        environment=fleet.environment.name,
        command=command,
        heads=sorted(base.project.heads()),
        shard=shard,
        targets=ordered,
        target=target if command == "plan" else None,
        groups=groups,
    )


def _look(
    base: Workspace, fleet: Fleet, target: Target, command: str, revision: str | None
) -> tuple[TargetState, Fingerprint | None]:
    state = TargetState(
        name=target.name, database=target.database, schema=target.schema, state="error"
    )
    fingerprint = None
    try:
        workspace = target_workspace(base, fleet, target)
        if command == "diagnose":
            diagnosis = api.diagnose(workspace, with_models=False)
            state.state = diagnosis.state
            state.current = list(diagnosis.recorded or [])
            state.fingerprint = diagnosis.fingerprint
            state.recommendation = diagnosis.recommendation.summary
            return state, None
        status = api.status(workspace)
        state.state, state.current = status.state, list(status.current)
        state.pending = len(status.pending)
        state.last_run = (status.last_run or {}).get("outcome")
        if command == "plan" and revision not in (None, "head", "heads"):
            state.pending = len(_steps_to(workspace, revision or "head", status.current))
        if command == "status":
            from abmigrate.db.fingerprint import fingerprint_url

            fingerprint = fingerprint_url(
                workspace.url, schema=workspace.project.version_table.schema
            )
            state.fingerprint = fingerprint.digest[:12]
    except AbmigrateError as exc:
        state.error = scrub(exc.message, target.url)
    except Exception as exc:
        state.error = scrub(f"unexpected {type(exc).__name__}: {exc}", target.url)
    return state, fingerprint


def _steps_to(workspace: Workspace, revision: str, current: list[str]) -> list[Any]:
    steps: list[Any] = workspace.project.upgrade_steps(revision, current)
    return steps


def _drift_groups(
    states: list[TargetState], fingerprints: dict[str, Fingerprint]
) -> list[dict[str, Any]]:
    """Per recorded revision (and dialect): how many targets share the usual schema, and
    which differ, each with its first difference from it."""
    from abmigrate.db.fingerprint import diff

    by_revision: dict[tuple[str, str], list[TargetState]] = {}
    for state in states:
        if state.name in fingerprints:
            key = (",".join(state.current) or "base", fingerprints[state.name].dialect)
            by_revision.setdefault(key, []).append(state)
    groups = []
    for (revision, dialect), members in sorted(by_revision.items()):
        digests: dict[str, list[TargetState]] = {}
        for state in members:
            digests.setdefault(fingerprints[state.name].digest, []).append(state)
        usual = max(digests.values(), key=len)
        reference = fingerprints[usual[0].name]
        differ = []
        for state in members:
            if state in usual:
                continue
            differences = diff(reference, fingerprints[state.name])
            state.drift = differences[0].describe() if differences else "differs"
            if len(differences) > 1:
                state.drift += f" (+{len(differences) - 1} more)"
            differ.append({"name": state.name, "difference": state.drift})
        groups.append(
            {
                "revision": revision,
                "dialect": dialect,
                "identical": len(usual),
                "differ": differ,
            }
        )
    return groups
