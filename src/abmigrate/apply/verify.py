"""Verification after an apply: the database records the target, its schema is what the
revisions produce there, the models (a separate question: a warning unless the policy makes
it fatal) and the health check."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from abmigrate.db.database import read_version_rows, version_rows_on
from abmigrate.errors import AbmigrateError
from abmigrate.events import Observer, Verified
from abmigrate.results import Verification

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.config.workspace import Workspace
    from abmigrate.results import Plan

__all__ = ["counted", "models_drift", "schema_differences", "verify"]


def verify(
    workspace: Workspace,
    plan: Plan,
    observe: Observer,
    *,
    connection: Connection | None = None,
    dry_run: bool = False,
    not_applied: Sequence[str] = (),
    drift_before: Sequence[str] | None = None,
    schema_before: Sequence[str] | None = None,
    drift_overridden: Sequence[str] = (),
) -> Verification:
    """What the run did, proven: the database records the target and (``verify_schema =
    "replay"``) its schema is what the revisions produce there; then, as a separate question,
    the models (``verify_models``: a difference is a warning by default, fatal with
    ``"fail"``; one that ``drift_before`` lists — there before the run — never fails it);
    and the health check. Differences from the revisions' schema that ``schema_before``
    lists (hand changes made before the run) do not fail it either, nor do model
    differences in ``drift_overridden`` (predicted before the run, refused by
    ``verify_models = "fail"`` and overridden: a warning, not a failure after the fact).

    With ``connection`` (the dry run's open transaction) the revisions and the schema are
    read through it. In a dry run the health check is skipped: the application cannot see
    changes that are never committed (or that went to a scratch copy), and differences
    naming an object in ``not_applied`` (indexes the dry run could not build) are set aside.
    """
    from abmigrate.apply.health import check_health

    policy = workspace.environment.policy
    problems: list[str] = []
    warnings: list[str] = []
    version_table = workspace.project.version_table
    now = (
        version_rows_on(connection, version_table)
        if connection is not None
        else read_version_rows(workspace.url, version_table)
    ) or []
    if sorted(now) != sorted(plan.target_revisions):
        problems.append(
            f"the database records {', '.join(now) or 'nothing'},"
            f" expected {', '.join(plan.target_revisions) or 'nothing'}"
        )
    set_aside: list[str] = []
    names = (
        re.compile(r"\b(?:" + "|".join(re.escape(n) for n in not_applied) + r")\b")
        if not_applied
        else None
    )

    def keep(differences: list[str]) -> list[str]:
        if names is None:
            return differences
        set_aside.extend(d for d in differences if names.search(d))
        return [d for d in differences if not names.search(d)]

    schema: dict[str, Any] = {"checked": False, "reason": "verify_schema is off"}
    if policy.verify_schema == "replay" and not problems:
        schema = _schema_against_replay(workspace, plan.target_revisions, connection)
        if schema["checked"]:
            earlier = set(schema_before or ())
            schema["before_run"] = [d for d in schema["differences"] if d in earlier]
            schema["differences"] = keep([d for d in schema["differences"] if d not in earlier])
            if schema["differences"]:
                problems.append(
                    counted(
                        "the schema differs from what the revisions produce at"
                        f" {', '.join(plan.target_revisions) or 'base'}",
                        schema["differences"],
                        "abmigrate drift --against head",
                    )
                )
        else:
            warnings.append(f"schema not compared with the revisions: {schema['reason']}")
    # The models describe the head: an upgrade to an older revision is not compared.
    at_head = sorted(plan.target_revisions) == sorted(workspace.project.heads())
    compare = (
        policy.verify_models != "off" and plan.direction == "upgrade" and at_head and not problems
    )
    drift = _drift(workspace, connection) if compare else None
    if drift:
        drift = keep(drift)
    before = set(drift_before or ())
    new_drift = [d for d in drift or [] if d not in before]
    accepted = set(drift_overridden)
    fatal = [d for d in new_drift if d not in accepted] if policy.verify_models == "fail" else []
    if fatal:
        problems.append(counted("the schema differs from the models", fatal, "abmigrate drift"))
    elif new_drift and policy.verify_models == "fail":
        warnings.append(
            counted("the schema differs from the models", new_drift, "abmigrate drift")
            + " (predicted before the run; the refusal was overridden)"
        )
    elif new_drift:
        message = counted("the schema differs from the models", new_drift, "abmigrate drift")
        warnings.append(message + ' (verify_models = "fail" makes this fatal)')
    if dry_run:
        health: dict[str, Any] = {"ok": True, "checks": []}
        if policy.health_url or policy.health_sql:
            health["skipped"] = (
                "not run: a dry run's changes are never committed, the application cannot see them"
            )
    else:
        health = check_health(workspace.environment)
    for check in health["checks"]:
        if not check["ok"]:
            problems.append(f"health check {check['kind']} {check['target']}: {check.get('error')}")
    verification = Verification(
        ok=not problems,
        current=now,
        expected=plan.target_revisions,
        schema=schema,
        drift=drift,
        drift_before_run=sorted(before & set(drift or ())),
        drift_not_checked=set_aside,
        verify_models=policy.verify_models,
        health=health,
        problems=problems,
        warnings=warnings,
    )
    observe(Verified(verification=verification))
    return verification


def counted(what: str, differences: list[str], command: str, shown: int = 3) -> str:
    """A count, the first few differences and the command that lists them all."""
    first = "; ".join(differences[:shown])
    more = f" (and {len(differences) - shown} more)" if len(differences) > shown else ""
    return f"{what} in {len(differences)} place(s): {first}{more}; `{command}` lists them"


def schema_differences(workspace: Workspace, revisions: Sequence[str]) -> list[str] | None:
    """The live schema's differences with what the revisions produce at ``revisions`` now
    (None: the history cannot be replayed here)."""
    found = _schema_against_replay(workspace, revisions, None)
    return list(found["differences"]) if found["checked"] else None


def _schema_against_replay(
    workspace: Workspace, revisions: Sequence[str], connection: Connection | None
) -> dict[str, Any]:
    """The live schema against the fingerprint the revisions produce at the target (a
    replay on a scratch database, cached by the scripts' content)."""
    from abmigrate.db.fingerprint import diff, fingerprint_connection, fingerprint_url
    from abmigrate.state.replay import BASE, expected_state_fingerprint

    schema_name = workspace.project.version_table.schema
    try:
        expected = expected_state_fingerprint(workspace, list(revisions) or [BASE])
    except AbmigrateError as exc:
        # A history whose first tables come from elsewhere (create_all, an older tool)
        # cannot be replayed from empty: nothing to compare with, which is not a failure.
        return {"checked": False, "reason": exc.message}
    if connection is not None:
        live = fingerprint_connection(connection)
    else:
        live = fingerprint_url(workspace.url, schema=schema_name)
    return {
        "checked": True,
        "differences": [difference.describe() for difference in diff(expected, live)],
    }


def models_drift(workspace: Workspace) -> list[str] | None:
    """The models' differences with the live schema now (None: no models)."""
    return _drift(workspace, None)


def _drift(workspace: Workspace, connection: Connection | None) -> list[str] | None:
    """Autogenerate's comparison of the project's models (configured ``models`` or env.py's
    ``target_metadata``) with the live schema; None when the project has no models."""
    from abmigrate.bridge.models import load_models
    from abmigrate.state.drift import compare_to_models, compare_url_to_models

    try:
        source = load_models(workspace)
    except AbmigrateError as exc:
        return [f"cannot load the models: {exc.message}"]
    if source is None:
        return None
    filters = {"include_object": source.include_object, "include_name": source.include_name}
    if connection is not None:
        differences = compare_to_models(connection, source.metadata, **filters)
    else:
        differences = compare_url_to_models(workspace.url, source.metadata, **filters)
    return [difference.describe() for difference in differences]
