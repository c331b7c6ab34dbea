"""``fleet status``, ``fleet plan`` and ``fleet diagnose``: every target, read only.

Each target is looked at through the single-target API (``api.status``, ``api.diagnose``) on
its own workspace. The per-target journals are the source of truth: a fleet run sharded over
machines is seen whole from anywhere that reaches the databases.

Fleet drift (``status``): a target's schema should be the one its recorded revision
produces. Targets recording the same revision (per dialect) are grouped, and their live
fingerprints compared with that revision's schema, replayed once per group on a scratch
database (``state.replay``, cached): each target that differs is named with its first
difference. Where the revision cannot be replayed (an undeclared baseline, say), the group
falls back to its peers: the schema most of them share is the reference, and the group says
why.
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
    groups = []
    if command == "status":
        expected = _expected_schemas(base, fleet, targets, states, fingerprints)
        groups = _drift_groups(ordered, fingerprints, expected)
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


def _group_key(state: TargetState, fingerprint: Fingerprint) -> tuple[str, str]:
    return (",".join(state.current) or "base", fingerprint.dialect)


def _expected_schemas(
    base: Workspace,
    fleet: Fleet,
    targets: Sequence[Target],
    states: dict[str, TargetState],
    fingerprints: dict[str, Fingerprint],
) -> dict[tuple[str, str], Fingerprint | str]:
    """Per group: the schema its recorded revision produces, or why it could not be
    replayed. One replay per group, on the workspace of its first target."""
    from abmigrate.state.replay import expected_state_fingerprint

    expected: dict[tuple[str, str], Fingerprint | str] = {}
    for member in targets:
        state = states[member.name]
        fingerprint = fingerprints.get(member.name)
        if fingerprint is None:
            continue
        key = _group_key(state, fingerprint)
        if key in expected:
            continue
        try:
            workspace = target_workspace(base, fleet, member)
            expected[key] = expected_state_fingerprint(workspace, list(state.current))
        except AbmigrateError as exc:
            expected[key] = scrub(exc.message, member.url)
    return expected


def _drift_groups(
    states: list[TargetState],
    fingerprints: dict[str, Fingerprint],
    expected: dict[tuple[str, str], Fingerprint | str],
) -> list[dict[str, Any]]:
    """Per recorded revision (and dialect): how many targets have the schema that revision
    produces (or, where it cannot be replayed, the schema most of them share), and which
    differ, each with its first difference from it."""
    from abmigrate.db.fingerprint import diff

    by_revision: dict[tuple[str, str], list[TargetState]] = {}
    for state in states:
        if state.name in fingerprints:
            key = _group_key(state, fingerprints[state.name])
            by_revision.setdefault(key, []).append(state)
    groups = []
    for (revision, dialect), members in sorted(by_revision.items()):
        replayed = expected.get((revision, dialect))
        if isinstance(replayed, str) or replayed is None:
            digests: dict[str, list[TargetState]] = {}
            for state in members:
                digests.setdefault(fingerprints[state.name].digest, []).append(state)
            usual = max(digests.values(), key=len)
            reference = fingerprints[usual[0].name]
            compared_with = "peers"
            note = f"the revision could not be replayed: {replayed or 'no target to replay on'}"
        else:
            reference = replayed
            usual = [s for s in members if fingerprints[s.name].digest == replayed.digest]
            compared_with, note = "revision", None
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
                "compared_with": compared_with,
                "note": note,
                "identical": len(usual),
                "differ": differ,
            }
        )
    return groups
