"""Lint as the commands use it: configuration from the workspace, results onto plan steps."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from abmigrate.lint.config import LintConfig
from abmigrate.lint.engine import LintResult, lint_project
from abmigrate.lint.registry import all_rules

if TYPE_CHECKING:
    from abmigrate.bridge.types import RevisionStep
    from abmigrate.config.workspace import Workspace
    from abmigrate.results import Plan

__all__ = ["analyse_plan", "lint_config", "lint_workspace"]


def lint_config(workspace: Workspace) -> LintConfig:
    return LintConfig.from_mapping(workspace.settings.lint, [rule.code for rule in all_rules()])


def _runner_sets_lock_timeout(workspace: Workspace) -> bool:
    # abmigrate's runner sets lock_timeout where an environment configures one; lint judges
    # revisions for every environment, so any configured lock_timeout counts.
    if workspace.environment.policy.lock_timeout_ms is not None:
        return True
    return any("lock_timeout" in table for table in workspace.settings.environments.values())


def lint_workspace(
    workspace: Workspace,
    revisions: Collection[str] | None = None,
    *,
    graph: bool = True,
    parallel: bool = False,
) -> LintResult:
    """``parallel``: a long cold walk may be split over two processes
    (:func:`abmigrate.lint.engine.lint_project`)."""
    from abmigrate.analysis_cache import AnalysisCache

    return lint_project(
        workspace.project,
        config=lint_config(workspace),
        revisions=revisions,
        assume_lock_timeout=_runner_sets_lock_timeout(workspace),
        graph=graph,
        cache=AnalysisCache.for_workspace(workspace),
        parallel=parallel,
    )


def analyse_plan(
    workspace: Workspace,
    plan: Plan,
    steps: Sequence[RevisionStep],
    *,
    preflight: bool = True,
) -> LintResult | None:
    """Fill each step's ``findings`` (upgrades) and ``preflight`` (when the DB answers).

    With ``preflight`` (the plan is for a live database), each finding is judged against the
    tables it touches (:mod:`abmigrate.lint.judge`): created earlier in the plan, empty or
    under the environment's ``small_table_rows`` → severity ``info``; every record says why
    in ``judged``.
    """
    del steps  # the plan's records name the revisions; Alembic's steps add nothing here
    if not plan.steps:
        return None
    wanted = {step.revision for step in plan.steps}
    result = lint_workspace(workspace, wanted, graph=False)
    if plan.direction == "upgrade":
        for step in plan.steps:
            step.findings = list(result.for_revision(step.revision))
        if preflight:
            from abmigrate.lint.judge import judge_plan
            from abmigrate.lint.preflight_run import live_tables

            with live_tables(workspace) as live:
                judge_plan(plan, result, live, workspace.environment.policy.small_table_rows)
    if preflight:
        from abmigrate.lint.preflight_run import run_preflight

        run_preflight(workspace, plan, result)
    return result
