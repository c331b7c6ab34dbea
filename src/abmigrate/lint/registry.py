"""The rule base class and the registry every rule module adds itself to."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterable
from typing import ClassVar, Literal

from abmigrate.lint.model import Hit, RevisionUnit, Severity

__all__ = ["JudgedBy", "ProjectFacts", "Rule", "all_rules", "register", "rule_by_code"]

JudgedBy = Literal["size", "any_row", "in_use"]

_RULES: dict[str, type[Rule]] = {}


class ProjectFacts:
    """What project-wide (graph) rules look at: Alembic's own view of the revision graph."""

    def __init__(self, problems: Iterable[tuple[str, str, tuple[str, ...]]]) -> None:
        self.problems = list(problems)


class Rule:
    """A lint rule. Subclasses set the class attributes and implement one ``check``.

    The class docstring is the rule's documentation and must have the sections
    ``What it does``, ``Why is this bad?``, ``Example`` and ``Use instead``.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    hint: ClassVar[str]
    destructive: ClassVar[bool] = False
    scope: ClassVar[Literal["revision", "project", "meta"]] = "revision"
    # How a plan run against a live database weighs this rule's findings on the tables its
    # hits name (abmigrate.lint.judge): "size" (a lock held or a rewrite lasting as long as
    # the table is big), "any_row" (harmless only on an empty table), "in_use" (harmless
    # only on a table nobody uses yet: created earlier in the plan); None: not judged.
    judged_by: ClassVar[JudgedBy | None] = None

    def check(self, unit: RevisionUnit) -> Iterable[Hit]:
        return ()

    def check_project(self, facts: ProjectFacts) -> Iterable[Hit]:
        return ()


def register(cls: type[Rule]) -> type[Rule]:
    if cls.code in _RULES and _RULES[cls.code] is not cls:
        raise RuntimeError(f"two rules claim {cls.code}")
    _RULES[cls.code] = cls
    return cls


def all_rules() -> list[type[Rule]]:
    """Every rule, by code. Rule modules are discovered in ``abmigrate.lint.rules``."""
    return list(_discover())


@functools.cache
def _discover() -> tuple[type[Rule], ...]:
    from abmigrate.lint import rules

    for module in pkgutil.iter_modules(rules.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{rules.__name__}.{module.name}")
    return tuple(_RULES[code] for code in sorted(_RULES))


def rule_by_code() -> dict[str, type[Rule]]:
    return {rule.code: rule for rule in all_rules()}
