"""Verification after an apply: the database records the target, the schema matches the
project's models (at head, when it has models) and the health check answers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from abmigrate.database import read_version_rows, version_rows_on
from abmigrate.errors import AbmigrateError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.results import Plan
    from abmigrate.runner import Notify
    from abmigrate.workspace import Workspace

__all__ = ["verify"]


def verify(
    workspace: Workspace,
    plan: Plan,
    notify: Notify,
    *,
    connection: Connection | None = None,
    dry_run: bool = False,
    not_applied: Sequence[str] = (),
) -> dict[str, Any]:
    """current == target, no drift against the models (if configured), the health check.

    With ``connection`` (the dry run's open transaction) the revisions and the schema are
    read through it. In a dry run the health check is skipped: the application cannot see
    changes that are never committed (or that went to a scratch copy), and differences
    naming an object in ``not_applied`` (indexes the dry run could not build) are set aside.
    """
    from abmigrate.health import check_health

    problems: list[str] = []
    now = (
        version_rows_on(connection, workspace.project.version_table)
        if connection is not None
        else read_version_rows(workspace.url, workspace.project.version_table)
    ) or []
    if sorted(now) != sorted(plan.target_revisions):
        problems.append(
            f"the database records {', '.join(now) or 'nothing'},"
            f" expected {', '.join(plan.target_revisions) or 'nothing'}"
        )
    # The models describe the head: an upgrade to an older revision is not compared.
    at_head = sorted(plan.target_revisions) == sorted(workspace.project.heads())
    compare = plan.direction == "upgrade" and at_head and not problems
    drift = _drift(workspace, connection) if compare else None
    set_aside: list[str] = []
    if drift and not_applied:
        names = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in not_applied) + r")\b")
        set_aside = [d for d in drift if names.search(d)]
        drift = [d for d in drift if not names.search(d)]
    if drift:
        problems.append(f"schema differs from the models: {'; '.join(drift[:5])}")
    policy = workspace.environment.policy
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
    verification = {
        "ok": not problems,
        "current": now,
        "expected": plan.target_revisions,
        "drift": drift,
        "drift_not_checked": set_aside,
        "health": health,
        "problems": problems,
    }
    notify("verified", verification)
    return verification


def _drift(workspace: Workspace, connection: Connection | None) -> list[str] | None:
    """Autogenerate's comparison of the project's models (configured ``models`` or env.py's
    ``target_metadata``) with the live schema; None when the project has no models."""
    from abmigrate.drift import compare_to_models, compare_url_to_models
    from abmigrate.models import load_models

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
