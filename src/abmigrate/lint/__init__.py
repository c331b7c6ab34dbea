"""Migration lint: per-revision analysis of what each Alembic revision does to PostgreSQL.

``lint_project`` lints a project's revisions; ``analyse_plan`` fills a plan's steps with
findings (and, when the database is reachable, data preflight results).
"""

from __future__ import annotations

from abmigrate.lint.config import LintConfig
from abmigrate.lint.engine import LintResult, lint_project
from abmigrate.lint.model import Finding
from abmigrate.lint.registry import Rule, all_rules
from abmigrate.lint.workspace import analyse_plan, lint_workspace

__all__ = [
    "Finding",
    "LintConfig",
    "LintResult",
    "Rule",
    "all_rules",
    "analyse_plan",
    "lint_project",
    "lint_workspace",
]
