"""Target resolution and plan building: which revisions, in which order, with which SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from abmigrate.database import read_version_rows
from abmigrate.errors import GuardRefused, RevisionError
from abmigrate.results import Direction, Plan, Step

if TYPE_CHECKING:
    from alembic.runtime.migration import RevisionStep

    from abmigrate.alembic_bridge import AlembicProject
    from abmigrate.workspace import Workspace

__all__ = ["build_plan", "heads_after", "message_of", "unknown_revisions"]


def message_of(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""


def unknown_revisions(project: AlembicProject, current: Iterable[str]) -> list[str]:
    return [revision for revision in current if not project.known(revision)]


def heads_after(
    project: AlembicProject, current: Sequence[str], steps: Sequence[RevisionStep]
) -> list[str]:
    """The revisions the version table will record once ``steps`` have run."""
    applied = project.applied_set(current)
    for step in steps:
        if step.is_upgrade:
            applied.add(step.revision.revision)
        else:
            applied.discard(step.revision.revision)
    heads = []
    for revision in applied:
        children = project.get(revision).nextrev
        if not children & applied:
            heads.append(revision)
    return sorted(heads)


def build_plan(
    workspace: Workspace,
    direction: Direction,
    target: str,
    *,
    current: Sequence[str] | None = None,
    with_sql: bool = False,
) -> tuple[Plan, list[RevisionStep]]:
    """The Plan (for showing and recording) and Alembic's own steps (for executing)."""
    project = workspace.project
    if current is None:
        current = read_version_rows(workspace.url, workspace.project.version_table) or []
    unknown = unknown_revisions(project, current)
    if unknown:
        raise GuardRefused(
            f"the database records revision {', '.join(unknown)}, which no script defines",
            hint="run `abmigrate diagnose` to find which revision the schema really matches,"
            " then `abmigrate stamp REV`",
            reasons=[f"unknown revision {revision}" for revision in unknown],
        )
    if direction == "downgrade" and not current:
        raise RevisionError(
            "nothing to downgrade: the database records no revision",
            hint="run `abmigrate status` to see its state",
        )
    if direction == "upgrade":
        steps = project.upgrade_steps(target, current)
    else:
        steps = project.downgrade_steps(target, current)
    plan = Plan(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        dialect=workspace.environment.dialect,
        direction=direction,
        current=list(current),
        target=target,
        target_revisions=heads_after(project, current, steps),
        steps=[_step_record(step, direction) for step in steps],
    )
    if with_sql:
        for record, rendered in zip(plan.steps, project.render_sql(steps, current), strict=True):
            record.sql = rendered.sql
            record.sql_error = rendered.error
    return plan, steps


def _step_record(step: RevisionStep, direction: Direction) -> Step:
    return Step(
        revision=step.revision.revision,
        message=message_of(step.revision.doc),
        direction=direction,
        from_revisions=list(step.from_revisions),
        to_revisions=list(step.to_revisions),
    )
