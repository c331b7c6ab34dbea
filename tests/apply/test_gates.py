"""The pipeline's declared gates (abmigrate.apply.gates), each called directly with a small
context: it refuses, it passes, and what an override does with its refusal.

The refusal texts are the ones the runner has always printed and journaled; the integration
tests (test_runner_pipeline, test_gates_fail_closed, test_plan_models,
test_guarded_downgrade_sqlite) hold them end to end.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from abmigrate.apply import gates
from abmigrate.apply.gates import GATES, GateContext, Refused, overrides_for, run_gates
from abmigrate.config.settings import Environment, Policy
from abmigrate.errors import GuardRefused
from abmigrate.lint.model import Finding, Judgement, Severity
from abmigrate.results import DataLoss, Plan, PreflightResult, Step

GUARDED = Policy.default_for("production")
DEVELOPMENT = Policy()
# 2026-11-28 is a Saturday.
SAT_23 = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
TUE_02 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _step(revision: str, **kwargs: Any) -> Step:
    return Step(revision, f"step {revision}", "upgrade", [], [revision], **kwargs)


def _context(policy: Policy = GUARDED, *, steps: list[Step] | None = None, **kwargs: Any) -> Any:
    plan_fields = {k: kwargs.pop(k) for k in ("data_loss", "models") if k in kwargs}
    direction = kwargs.pop("direction", "upgrade")
    plan = Plan(
        environment="production",
        database="sqlite:///shop.db",
        dialect="sqlite",
        direction=direction,
        current=["r1"],
        target="head",
        target_revisions=["r3"],
        steps=steps if steps is not None else [_step("r2"), _step("r3")],
        **plan_fields,
    )
    environment = Environment("production", "sqlite:///shop.db", policy)
    return GateContext(environment=environment, plan=plan, direction=direction, **kwargs)


def test_gates_are_registered_in_the_order_refusals_are_listed() -> None:
    assert list(GATES) == [
        "checksum",
        "partial",
        "analysis",
        "maintenance_window",
        "lint",
        "preflight",
        "destructive",
        "data_loss",
        "models",
        "backup",
    ]
    assert all(spec.overridable for spec in GATES.values())
    # The journal and the result name the data-loss refusal as it always has.
    assert [spec.recorded for spec in GATES.values()].count("destructive") == 2


# --------------------------------------------------------------------------- each gate


def test_checksum() -> None:
    context = _context(changed_scripts=["r1", "r2"])
    assert gates.checksum(context) == [
        "revision r1's script changed after it was applied (its sha256 differs from the journal's)",
        "revision r2's script changed after it was applied (its sha256 differs from the journal's)",
    ]
    assert not gates.checksum(_context())
    assert not gates.checksum(_context(DEVELOPMENT, changed_scripts=["r1"]))  # a warning there
    assert GATES["checksum"].overridable


def test_partial() -> None:
    partial = (
        "run 1a2b failed during upgrade of r2: mysql cannot roll back DDL, so r2 may be"
        " partially applied"
    )
    assert gates.partial(_context(partial=partial)) == partial
    rolled_back = (
        "run 1a2b failed during upgrade of r2; its transaction was rolled back (the database"
        " is at the last good revision)"
    )
    assert gates.partial(_context(partial=rolled_back)) is None
    assert gates.partial(_context()) is None
    assert gates.partial(_context(DEVELOPMENT, partial=partial)) is None
    assert GATES["partial"].overridable


def test_analysis() -> None:
    failed = ["lint/preflight could not run on r2: RuntimeError: boom"]
    assert gates.analysis(_context(analysis_failures=failed)) == failed
    assert not gates.analysis(_context())
    assert not gates.analysis(_context(DEVELOPMENT, analysis_failures=failed))
    assert GATES["analysis"].overridable


def test_maintenance_window() -> None:
    policy = replace(DEVELOPMENT, maintenance_window="Sat 22:00-Sun 04:00 UTC")
    assert gates.maintenance_window(_context(policy, now=TUE_02)) == (
        "outside the maintenance window 'Sat 22:00-Sun 04:00 UTC' (now Tue 02:00 UTC)"
    )
    assert gates.maintenance_window(_context(policy, now=SAT_23)) is None
    assert gates.maintenance_window(_context(policy, now=TUE_02, direction="downgrade")) is None
    assert gates.maintenance_window(_context(DEVELOPMENT, now=TUE_02)) is None
    assert GATES["maintenance_window"].overridable


def test_lint() -> None:
    findings = [
        _finding("r2", "AM101"),
        _finding("r3", "AM102", judged="parts has 2,000,000 rows"),
        _finding("r3", "AM301", "warning"),
    ]
    assert gates.lint(_context(findings=findings)) == (
        "2 error finding(s): r2 AM101; r3 AM102 (parts has 2,000,000 rows)"
    )
    assert gates.lint(_context(findings=findings[2:])) is None
    assert gates.lint(_context(DEVELOPMENT, findings=findings)) is None  # destructive allowed
    assert GATES["lint"].overridable


def _finding(
    revision: str,
    code: str = "AM101",
    severity: Severity = "error",
    *,
    message: str = "",
    destructive: bool = False,
    judged: str | None = None,
) -> Finding:
    judgement = Judgement("kept", judged, {}, []) if judged else None
    return Finding(
        code, "a-rule", severity, message, "", revision, None, None, destructive, judged=judgement
    )


def _preflight(revision: str, ok: bool, message: str) -> PreflightResult:
    count = 0 if ok else 3
    return PreflightResult(
        revision, "not_null", "parts", "name", ["name"], count, count, [], ok, True, message
    )


def test_preflight() -> None:
    steps = [
        _step("r2", preflight=[_preflight("r2", True, "no NULLs")]),
        _step("r3", preflight=[_preflight("r3", False, "3 NULLs in parts.name")]),
    ]
    assert gates.preflight(_context(DEVELOPMENT, steps=steps)) == (
        "preflight predicts failure: r3: 3 NULLs in parts.name"
    )
    assert gates.preflight(_context(steps=steps[:1])) is None
    assert GATES["preflight"].overridable


def test_destructive() -> None:
    findings = [_finding("r2", message="drops column parts.name", destructive=True)]
    assert gates.destructive(_context(findings=findings)) == (
        "production forbids destructive changes: r2: drops column parts.name"
    )
    assert gates.destructive(_context(findings=[_finding("r2")])) is None
    assert gates.destructive(_context(DEVELOPMENT, findings=findings)) is None
    assert GATES["destructive"].overridable


def test_data_loss() -> None:
    losing = [
        DataLoss("r2", "parts", None, 12, "drops table parts (12 rows)"),
        DataLoss("r2", "empty", None, 0, "drops table empty (0 rows)"),
        DataLoss("r2", "parts", "note", None, "drops column parts.note (rows unknown)"),
    ]
    assert gates.data_loss(_context(data_loss=losing, direction="downgrade")) == (
        "production forbids destructive changes and this downgrade destroys data: drops"
        " table parts (12 rows); drops column parts.note (rows unknown)"
    )
    assert gates.data_loss(_context(data_loss=losing[1:2], direction="downgrade")) is None
    assert gates.data_loss(_context(DEVELOPMENT, data_loss=losing)) is None
    assert GATES["data_loss"].overridable
    assert GATES["data_loss"].recorded == "destructive"


def test_models() -> None:
    policy = replace(DEVELOPMENT, verify_models="fail")
    prediction = {
        "status": "differ",
        "differences": ["missing column parts.sku", "extra index ix_parts_name"],
        "command": "abmigrate drift --models",
    }
    assert gates.models(_context(policy, models=prediction)) == (
        "predicted: the schema at r3 will differ from the models in 2 place(s): missing"
        " column parts.sku; extra index ix_parts_name; `abmigrate drift --models` lists them"
        '; verify_models = "fail" would fail the run after the revisions are in'
    )
    # Differences already in the database before the run never refuse it.
    assert gates.models(
        _context(policy, models=prediction, drift_before=["missing column parts.sku"])
    ) == (
        "predicted: the schema at r3 will differ from the models in 1 place(s): extra index"
        " ix_parts_name; `abmigrate drift --models` lists them"
        '; verify_models = "fail" would fail the run after the revisions are in'
    )
    assert (
        gates.models(_context(policy, models=prediction, drift_before=prediction["differences"]))
        is None
    )
    assert gates.models(_context(policy, models={"status": "match"})) is None
    assert gates.models(_context(GUARDED, models=prediction)) is None  # verify_models = "warn"
    assert GATES["models"].overridable


def test_backup() -> None:
    assert gates.backup(_context(no_backup=True)) == (
        "--no-backup refused: production's policy requires a backup before upgrade"
    )
    assert gates.backup(_context(no_backup=True, direction="downgrade")) == (
        "--no-backup refused: production's policy requires a backup before downgrade"
    )
    assert gates.backup(_context()) is None
    assert gates.backup(_context(no_backup=True, nothing_to_lose=True)) is None
    assert gates.backup(_context(DEVELOPMENT, no_backup=True)) is None
    assert GATES["backup"].overridable


# --------------------------------------------------------------------------- all together


def test_refusals_come_in_registry_order_with_their_recorded_names() -> None:
    context = _context(
        replace(GUARDED, maintenance_window="Sat 22:00-Sun 04:00 UTC", verify_models="fail"),
        now=TUE_02,
        no_backup=True,
        changed_scripts=["r1"],
        partial="r1 was partially applied",
        analysis_failures=["lint/preflight could not run on r2"],
        findings=[_finding("r2", destructive=True)],
        steps=[_step("r2", preflight=[_preflight("r2", False, "NULLs")])],
        data_loss=[DataLoss("r2", "parts", None, 3, "drops parts")],
        models={"status": "differ", "differences": ["x"], "command": "c"},
    )
    # Every gate refuses once (data_loss under the name destructive), in registry order.
    assert [refused.gate for refused in run_gates(context)] == [
        spec.recorded for spec in GATES.values()
    ]
    assert run_gates(_context()) == []


def test_refusals_refuse_the_run_unless_overridden() -> None:
    refusals = [Refused("lint", "1 error finding(s): r2 AM101"), Refused("backup", "no")]
    with pytest.raises(GuardRefused) as refused:
        overrides_for(refusals, None, "upgrade", "production")
    assert refused.value.message == "upgrade of production refused by its policy"
    assert refused.value.hint == (
        "fix the causes, or pass --override REASON to go on (the reason is recorded in the journal)"
    )
    assert refused.value.reasons == ["1 error finding(s): r2 AM101", "no"]
    assert overrides_for(refusals, "reviewed", "upgrade", "production") == [
        {"gate": "lint", "refused": "1 error finding(s): r2 AM101", "reason": "reviewed"},
        {"gate": "backup", "refused": "no", "reason": "reviewed"},
    ]
    assert overrides_for([], None, "upgrade", "production") == []


def test_a_gate_that_cannot_be_overridden_refuses_even_with_a_reason() -> None:
    refusals = [Refused("lint", "1 error finding(s)"), Refused("frozen", "frozen", False)]
    with pytest.raises(GuardRefused) as refused:
        overrides_for(refusals, "reviewed", "upgrade", "production")
    assert refused.value.reasons == ["1 error finding(s)", "frozen"]
    assert refused.value.hint == "fix the causes: frozen cannot be overridden"
