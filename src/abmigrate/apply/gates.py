"""The pipeline's gates, declared: what refuses a run before anything changes.

Each gate is one small function of a :class:`GateContext` that returns its refusal (a
message; a list of them where one concern refuses for several reasons, one per changed
script say) or nothing. ``@gate`` registers it, in the order a user reads the refusals, with
the name the journal and the result record for an overridden refusal (``overrides[].gate``)
and whether ``--override REASON`` may overrule it::

    @gate("maintenance_window")
    def maintenance_window(context: GateContext) -> Refusal:
        \"""Upgrades only inside the policy's maintenance window.\"""

The pipeline (:mod:`abmigrate.apply.pipeline`) builds the context once the plan is analysed,
runs :func:`run_gates` and hands the refusals to :func:`overrides_for`, which refuses the run
or records what the override overruled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from abmigrate.errors import GuardRefused

if TYPE_CHECKING:
    from datetime import datetime

    from abmigrate.config.settings import Environment, Policy
    from abmigrate.lint.model import Finding
    from abmigrate.results import Direction, Plan

__all__ = [
    "GATES",
    "GateContext",
    "GateSpec",
    "Refusal",
    "Refused",
    "changed_script",
    "gate",
    "guarded",
    "overrides_for",
    "run_gates",
]

# What a gate returns: a refusal, several, or nothing (None or an empty list).
Refusal = str | Sequence[str] | None
GateFunction = Callable[["GateContext"], Refusal]


def guarded(policy: Policy) -> bool:
    """A guarded environment (production and staging by default): there, changed scripts,
    partially applied revisions and analyses that could not run refuse instead of warning."""
    return policy.require_confirmation or not policy.allow_destructive


@dataclass
class GateContext:
    """What the gates judge: the environment (its name and policy), the analysed plan, the
    run's options, and what the state checks and the analysis found."""

    environment: Environment
    plan: Plan
    direction: Direction
    # Only ``no_backup`` is read here (abmigrate.apply.pipeline.RunOptions).
    no_backup: bool = False
    # The plan's lint findings, each naming its revision.
    findings: list[Finding] = field(default_factory=list)
    # Revisions whose scripts changed after they were applied, sorted.
    changed_scripts: list[str] = field(default_factory=list)
    # The journal's word on an interrupted or partially applied earlier run.
    partial: str | None = None
    # Analyses that could not run (lint/preflight, the data-loss estimate).
    analysis_failures: list[str] = field(default_factory=list)
    # With verify_models = "fail": the model differences already there before the run.
    drift_before: list[str] | None = None
    # A SQLite database that does not exist yet: nothing to lose, nothing to back up.
    nothing_to_lose: bool = False
    # The moment the maintenance window is judged at (None: now).
    now: datetime | None = None

    @property
    def policy(self) -> Policy:
        return self.environment.policy

    @property
    def guarded(self) -> bool:
        return guarded(self.policy)


@dataclass(frozen=True)
class GateSpec:
    name: str
    function: GateFunction
    overridable: bool
    # The name recorded for its refusals (overrides[].gate), when not its own.
    records_as: str | None = None

    @property
    def recorded(self) -> str:
        return self.records_as or self.name

    def refusals(self, context: GateContext) -> list[Refused]:
        found = self.function(context)
        messages = [found] if isinstance(found, str) else list(found or ())
        return [Refused(self.recorded, message, self.overridable) for message in messages]


@dataclass(frozen=True)
class Refused:
    """One refusal: the gate's recorded name and its message."""

    gate: str
    message: str
    overridable: bool = True


GATES: dict[str, GateSpec] = {}


def gate(
    name: str, *, overridable: bool = True, records_as: str | None = None
) -> Callable[[GateFunction], GateFunction]:
    """Add a gate to the registry under ``name``; gates run in the order they register."""

    def decorate(function: GateFunction) -> GateFunction:
        GATES[name] = GateSpec(name, function, overridable, records_as)
        return function

    return decorate


def run_gates(context: GateContext) -> list[Refused]:
    """Every refusal of every gate, in registry order."""
    return [refused for spec in GATES.values() for refused in spec.refusals(context)]


def overrides_for(
    refusals: Sequence[Refused], override: str | None, direction: str, environment: str
) -> list[dict[str, str]]:
    """Refuse the run (GuardRefused, every reason listed), or, with an override reason, the
    overrides to record: one per refusal, naming its gate."""
    if not refusals:
        return []
    binding = [refused for refused in refusals if not refused.overridable]
    if not override or binding:
        raise GuardRefused(
            f"{direction} of {environment} refused by its policy",
            hint="fix the causes, or pass --override REASON to go on (the reason is"
            " recorded in the journal)"
            if not binding
            else "fix the causes: "
            + ", ".join(sorted({refused.gate for refused in binding}))
            + " cannot be overridden",
            reasons=[refused.message for refused in refusals],
        )
    return [
        {"gate": refused.gate, "refused": refused.message, "reason": override}
        for refused in refusals
    ]


# --------------------------------------------------------------------------- the gates


@gate("checksum")
def checksum(context: GateContext) -> Refusal:
    """In a guarded environment, a script changed after it was applied (its sha256 differs
    from the journal's): what the database holds is not what the script now says."""
    if not context.guarded:
        return None
    return [changed_script(revision) for revision in context.changed_scripts]


def changed_script(revision: str) -> str:
    """The warning about a changed script, everywhere; the checksum gate's refusal where
    guarded."""
    return (
        f"revision {revision}'s script changed after it was applied"
        " (its sha256 differs from the journal's)"
    )


@gate("partial")
def partial(context: GateContext) -> Refusal:
    """In a guarded environment, a revision an earlier run left partially applied."""
    if context.guarded and context.partial and "partially applied" in context.partial:
        return context.partial
    return None


@gate("analysis")
def analysis(context: GateContext) -> Refusal:
    """In a guarded environment, an analysis that could not run (lint/preflight, the
    data-loss estimate): the gates fail closed rather than let the run through unjudged."""
    return list(context.analysis_failures) if context.guarded else None


@gate("maintenance_window")
def maintenance_window(context: GateContext) -> Refusal:
    """An upgrade outside the policy's maintenance window."""
    window = context.policy.maintenance_window
    if context.direction != "upgrade" or not window:
        return None
    from datetime import UTC, datetime

    from abmigrate.apply.window import in_window

    if in_window(window, context.now):
        return None
    now = (context.now or datetime.now(UTC)).astimezone(UTC).strftime("%a %H:%M UTC")
    return f"outside the maintenance window {window!r} (now {now})"


@gate("lint")
def lint(context: GateContext) -> Refusal:
    """Lint error findings, where the policy forbids destructive changes."""
    errors = [f for f in context.findings if f.severity == "error"]
    if not errors or context.policy.allow_destructive:
        return None
    return f"{len(errors)} error finding(s): " + "; ".join(
        f"{f.revision} {f.code}" + (f" ({f.judged.reason})" if f.judged and f.judged.reason else "")
        for f in errors[:5]
    )


@gate("preflight")
def preflight(context: GateContext) -> Refusal:
    """Live rows a step would fail on (NULLs before NOT NULL, duplicates before UNIQUE,
    orphans before a foreign key …): refused before anything runs rather than failing half
    way (SQLite and MariaDB cannot roll DDL back)."""
    doomed = [
        f"{step.revision}: {check.message}"
        for step in context.plan.steps
        for check in step.preflight
        if check.ok is False
    ]
    if not doomed:
        return None
    return "preflight predicts failure: " + "; ".join(doomed[:5])


@gate("destructive")
def destructive(context: GateContext) -> Refusal:
    """Findings marked destructive, where the policy forbids destructive changes."""
    found = [f for f in context.findings if f.destructive]
    if not found or context.policy.allow_destructive:
        return None
    return f"{context.environment.name} forbids destructive changes: " + "; ".join(
        f"{f.revision}: {f.message}" for f in found[:5]
    )


@gate("data_loss", records_as="destructive")
def data_loss(context: GateContext) -> Refusal:
    """A downgrade dropping tables or columns that hold data, where the policy forbids
    destructive changes (dropping empty ones, indexes or constraints loses nothing a backup
    would be needed for)."""
    if context.policy.allow_destructive:
        return None
    losing = [loss for loss in context.plan.data_loss if loss.loses_data]
    if not losing:
        return None
    return (
        f"{context.environment.name} forbids destructive changes and this downgrade"
        " destroys data: " + "; ".join(loss.message for loss in losing[:5])
    )


@gate("models")
def models(context: GateContext) -> Refusal:
    """With ``verify_models = "fail"``: model differences predicted at the target that were
    not in the database before the run (those already there never fail a run), which the
    verification after the run would fail on once the revisions are in."""
    from abmigrate.apply.verify import counted

    plan = context.plan
    prediction = plan.models or {}
    if context.policy.verify_models != "fail" or prediction.get("status") != "differ":
        return None
    earlier = set(context.drift_before or ())
    new = [d for d in prediction.get("differences") or [] if d not in earlier]
    if not new:
        return None
    return (
        counted(
            "predicted: the schema at"
            f" {', '.join(plan.target_revisions)} will differ from the models",
            new,
            str(prediction.get("command")),
        )
        + '; verify_models = "fail" would fail the run after the revisions are in'
    )


@gate("backup")
def backup(context: GateContext) -> Refusal:
    """``--no-backup`` where the policy requires a backup (and there is something to lose)."""
    if not context.no_backup or not context.policy.require_backup or context.nothing_to_lose:
        return None
    return (
        f"--no-backup refused: {context.environment.name}'s policy requires a backup"
        f" before {context.direction}"
    )
