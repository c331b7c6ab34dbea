"""Human renderings of ``diagnose``, ``drift`` and ``rehearse`` results (JSON: to_record())."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from abmigrate.rehearse.rehearsal import Rehearsal
from abmigrate.state.diagnose import Diagnosis
from abmigrate.state.drift import DriftReport

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["render_diagnosis", "render_drift", "render_rehearsal", "renderer_for"]

_STATE_STYLE = {
    "up_to_date": "green",
    "behind": "yellow",
    "uninitialized": "yellow",
    "baseline_undeclared": "yellow",
}
_LIMIT = 25


def _revs(revisions: list[str] | None) -> str:
    if revisions is None:
        return "(no version table)"
    return ", ".join(revisions) if revisions else "(none)"


def _differences(out: Console, differences: list[dict[str, Any]], indent: str = "  ") -> None:
    for record in differences[:_LIMIT]:
        out.print(f"{indent}- {record['description']}", markup=False)
    if len(differences) > _LIMIT:
        out.print(f"{indent}  … and {len(differences) - _LIMIT} more (--format json lists all)")


def render_diagnosis(result: Diagnosis, out: Console) -> None:
    style = _STATE_STYLE.get(result.state, "red")
    out.print(f"[bold]diagnose[/] {result.environment} {result.database} ({result.dialect})")
    out.print(f"state: [{style}]{result.state}[/]")
    out.print(f"\n[bold]graph[/]: heads {_revs(result.heads)}")
    for problem in result.graph_problems:
        out.print(f"  [yellow]- {problem['message']}[/]", markup=True)
    if not result.graph_problems:
        out.print("  no problems (single head, single root, parents exist, ids fit)")
    out.print(f"\n[bold]recorded[/]: {_revs(result.recorded)}")
    for revision in result.unknown:
        out.print(f"  [red]- {revision}: no script defines this revision[/]")
    if result.recorded and len(result.recorded) > 1:
        out.print(f"  - {len(result.recorded)} rows in alembic_version")
    out.print(f"\n[bold]schema[/]: {result.tables} table(s), fingerprint {result.fingerprint[:12]}")
    # On its own line: with the fingerprint it ran past 80 columns.
    out.print(f"  replayed {result.replayed} revision(s), {result.cached} from cache")
    if result.baseline is not None:
        out.print(f"  replays start from the {result.baseline}", markup=False)
    if result.state == "graph_broken":
        out.print("  not compared with any revision: the graph cannot be read")
    elif result.state == "not_compared":
        out.print("  not compared with any revision: the migrations could not be replayed")
    elif result.exact_matches:
        out.print(f"  matches exactly: {', '.join(result.exact_matches)}")
    else:
        out.print("  matches no revision exactly; nearest:")
        for match in result.nearest:
            out.print(f"  {match.revision}: {match.distance} object(s) differ")
            _differences(out, match.differences, "    ")
    from abmigrate.state.diagnose import ANCESTOR_FAILED

    # Descendants of a failing revision all fail the same way: one line says how many.
    blocked = [r for r, error in result.replay_errors.items() if error == ANCESTOR_FAILED]
    for revision, error in result.replay_errors.items():
        if error != ANCESTOR_FAILED:
            out.print(f"  replay failed at {revision}: {error}", style="yellow", markup=False)
    if blocked:
        out.print(
            f"  {len(blocked)} later revision(s) not replayed: an ancestor failed to replay",
            style="yellow",
        )
    if result.partial is not None:
        partial = result.partial
        out.print(f"\n[bold red]partially applied[/]: {partial.revision} ({partial.evidence})")
        for line in partial.applied:
            out.print(f"  applied:     {line}", markup=False)
        for line in partial.not_applied:
            out.print(f"  not applied: {line}", markup=False)
    for line in result.evidence:
        out.print(f"[yellow]evidence: {line}[/]")
    if result.models is not None:
        drift = result.model_drift or []
        pending = " (expected: revisions are pending)" if result.state == "behind" else ""
        out.print(f"\n[bold]models[/] ({result.models}): {len(drift)} difference(s){pending}")
        _differences(out, drift)
    # The summary may hold brackets ("[tool.abmigrate]") that are not Rich markup.
    out.print(f"\n[bold]recommendation[/]: {escape(result.recommendation.summary)}")
    for command in result.recommendation.commands:
        out.print(f"  $ {command}", markup=False)


def render_drift(result: DriftReport, out: Console) -> None:
    against = result.against
    if not result.differences:
        out.print(f"[green]no drift[/]: {result.environment} matches {against} ({result.source})")
        return
    out.print(
        f"[red]drift[/]: {result.environment} differs from {against} ({result.source})"
        f" in {len(result.differences)} place(s):"
    )
    _differences(out, result.differences, "")


def render_rehearsal(result: Rehearsal, out: Console) -> None:
    out.print(
        f"[bold]rehearse[/] {result.environment} on a scratch copy: {result.source};"
        f" {_revs(result.start)} → {result.target}, down again and up again"
    )
    if not result.steps:
        out.print("nothing to rehearse: no pending revision")
    for step in result.steps:
        mark = "[green]✓[/]" if step.ok else "[red]✗[/]"
        out.print(
            f"{mark} {step.direction:<10} {step.revision}  {step.elapsed_s:8.3f}s  {step.message}"
        )
        details = []
        if step.locks:
            locks = ", ".join(
                f"{table} {mode.removesuffix('Lock')}" for table, mode in step.locks.items()
            )
            details.append(f"locks: {locks}")
        if step.rewritten:
            details.append(f"rewritten: {', '.join(step.rewritten)}")
        if step.rows_touched:
            rows = ", ".join(f"{table} {count}" for table, count in step.rows_touched.items())
            details.append(f"rows: {rows}")
        for detail in details:
            out.print(f"      {detail}", markup=False)
        if step.error:
            out.print(f"      [red]failed: {step.error}[/]")
    verdict = "[green]rehearsal passed[/]" if result.ok else "[red]rehearsal failed[/]"
    out.print(
        f"{verdict} in {result.elapsed_s:.2f}s; scratch database {result.scratch_database} dropped"
    )
    for warning in result.warnings:
        out.print(f"[yellow]warning: {warning}[/]")


def renderer_for(result: object) -> Callable[[Any, Console], None] | None:
    """The human rendering of a diagnose, drift or rehearse result (None for other records)."""
    renderers: dict[type, Callable[[Any, Console], None]] = {
        Diagnosis: render_diagnosis,
        DriftReport: render_drift,
        Rehearsal: render_rehearsal,
    }
    return renderers.get(type(result))
