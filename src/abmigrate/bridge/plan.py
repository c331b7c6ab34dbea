"""Target resolution and plan building: which revisions, in which order, with which SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from abmigrate.bridge.graph import alembic_options
from abmigrate.db.database import read_version_rows
from abmigrate.errors import GuardRefused, RevisionError
from abmigrate.results import Direction, Plan, Step

if TYPE_CHECKING:
    from alembic.runtime.migration import RevisionStep

    from abmigrate.analysis_cache import AnalysisCache
    from abmigrate.bridge.graph import RevisionGraph
    from abmigrate.bridge.project import AlembicProject, StepSQL
    from abmigrate.config.workspace import Workspace

__all__ = [
    "build_plan",
    "heads_after",
    "message_of",
    "plan_from_cache",
    "rendered_sql",
    "unknown_revisions",
]


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
        for record, rendered in zip(
            plan.steps, rendered_sql(workspace, steps, current), strict=True
        ):
            record.sql = rendered.sql
            record.sql_error = rendered.error
    return plan, steps


def rendered_sql(
    workspace: Workspace, steps: Sequence[RevisionStep], current: Sequence[str]
) -> list[StepSQL]:
    """Each step's offline SQL (one offline run of env.py), from the analysis cache when
    every step of the same run is there.

    A step's SQL depends on where the run starts and on every step before it in the run
    (Alembic remembers, for one run, which PostgreSQL types it created), so each step's key
    chains the keys of the steps before it: the start (``current``), the dialect and the
    ``[alembic]`` options (the URL's database and credentials aside), then per step its
    revision file, direction and from/to revisions (:mod:`abmigrate.analysis_cache` adds
    env.py and abmigrate's code). Runs with a step that fails to render are not kept.
    """
    from abmigrate.analysis_cache import AnalysisCache
    from abmigrate.bridge.project import StepSQL

    if not steps:
        return []
    project = workspace.project
    cache = AnalysisCache.for_workspace(workspace)
    keys = _sql_keys(
        cache,
        workspace,
        [
            _KeyedStep(
                cache.script_key(step.revision),
                step.is_upgrade,
                tuple(step.from_revisions),
                tuple(step.to_revisions),
            )
            for step in steps
        ],
        current,
    )
    cached: list[StepSQL] = []
    for key, step in zip(keys, steps, strict=True):
        record = cache.get("sql", key)
        if not isinstance(record, dict) or not isinstance(record.get("sql"), str):
            break
        cached.append(StepSQL(step.revision.revision, record["sql"]))
    else:
        return cached
    rendered = project.render_sql(steps, current)
    if all(one.error is None and one.sql is not None for one in rendered):
        for key, one in zip(keys, rendered, strict=True):
            cache.put("sql", key, {"revision": one.revision, "sql": one.sql})
        cache.flush()
    return rendered


@dataclass(frozen=True)
class _KeyedStep:
    """What a step's SQL depends on, besides the steps before it."""

    script: str  # AnalysisCache.script_key of its revision file
    is_upgrade: bool
    from_revisions: tuple[str, ...]
    to_revisions: tuple[str, ...]


def _sql_keys(
    cache: AnalysisCache,
    workspace: Workspace,
    steps: Sequence[_KeyedStep],
    current: Sequence[str],
) -> list[str]:
    project = workspace.project
    options = alembic_options(project.alembic_ini)
    if options is None:
        options = project.config.get_section(project.config.config_ini_section) or {}
    options.pop("sqlalchemy.url", None)
    # The database and the credentials aside, the URL's driver and query options change
    # the SQL (the dialect and its flags); read here without SQLAlchemy.
    scheme, _, rest = workspace.url.partition("://")
    query = json.dumps(sorted(parse_qsl(rest.partition("?")[2], keep_blank_values=True)))
    key = cache.key(
        "sql", scheme, query, json.dumps(options, sort_keys=True), "from", *sorted(current)
    )
    keys = []
    for step in steps:
        key = cache.key(
            key,
            step.script,
            "upgrade" if step.is_upgrade else "downgrade",
            ",".join(step.from_revisions),
            ",".join(step.to_revisions),
        )
        keys.append(key)
    return keys


def plan_from_cache(
    workspace: Workspace, target: str, current: Sequence[str], *, with_sql: bool
) -> Plan | None:
    """The upgrade plan to the head(s) (``with_sql``: with every step's SQL), built from the
    cached graph and the analysis cache alone: nothing imports Alembic, SQLAlchemy or a revision, so a
    warm ``plan --sql`` costs reading two caches. None when they cannot answer (another
    target, a graph only Alembic reads, a step never rendered): build_plan then asks Alembic.
    The steps are the ones build_plan makes (tests/bridge compares them)."""
    from abmigrate.analysis_cache import AnalysisCache

    project = workspace.project
    graph = project.graph
    if target not in ("head", "heads") or graph is None:
        return None
    if any(revision not in graph.revisions for revision in current):
        return None
    if target == "head" and len(graph.heads) != 1:
        return None  # Alembic words the ambiguity
    pending = [graph.revisions[revision] for revision in graph.pending(current)]
    steps = [
        Step(
            revision=one.revision,
            message=message_of(one.doc),
            direction="upgrade",
            from_revisions=list(one.down_revisions),
            to_revisions=[one.revision],
        )
        for one in pending
    ]
    if with_sql:
        cache = AnalysisCache.for_workspace(workspace)
        keyed = [
            _KeyedStep(cache.script_key(one), True, one.down_revisions, (one.revision,))
            for one in pending
        ]
        for step, key in zip(steps, _sql_keys(cache, workspace, keyed, current), strict=True):
            record = cache.get("sql", key)
            if not isinstance(record, dict) or not isinstance(record.get("sql"), str):
                return None
            step.sql = record["sql"]
    return Plan(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        dialect=workspace.environment.dialect,
        direction="upgrade",
        current=list(current),
        target=target,
        target_revisions=_heads_of(graph, graph.ancestors([*current, *graph.heads])),
        steps=steps,
    )


def _heads_of(graph: RevisionGraph, applied: set[str]) -> list[str]:
    """The revisions of ``applied`` none of whose children is applied (heads_after's rule)."""
    return sorted(
        revision for revision in applied if not graph.revisions[revision].nextrev & applied
    )


def _step_record(step: RevisionStep, direction: Direction) -> Step:
    return Step(
        revision=step.revision.revision,
        message=message_of(step.revision.doc),
        direction=direction,
        from_revisions=list(step.from_revisions),
        to_revisions=list(step.to_revisions),
    )
