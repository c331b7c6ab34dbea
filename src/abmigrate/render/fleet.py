"""Human renderings of fleet reports (JSON: ``to_record()``), readable at 80 columns.

A fleet run is one line per target (from → to, duration, outcome; the error and incident
path under it), then the counts and why the rollout halted. ``fleet status|plan|diagnose``
is a table of targets, then the fleet's drift groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape

from abmigrate.render.text import duration, plural, shortener, table_lines, wrap
from abmigrate.results import FleetRun, FleetSurvey, TargetOutcome

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

__all__ = ["render_fleet_run", "render_fleet_survey", "target_line"]

_MARK = {
    "succeeded": "[green]✓[/]",
    "up_to_date": "[green]=[/]",
    "failed": "[red]✗[/]",
    "refused": "[red]✗[/]",
    "not_run": "[dim]·[/]",
}
_STYLE = {"up_to_date": "green", "behind": "yellow", "uninitialized": "yellow"}


def _revs(revisions: list[str], short: Callable[[str], str]) -> str:
    return ",".join(short(revision) for revision in revisions) or "(none)"


def target_line(outcome: TargetOutcome, width: int, name_width: int = 0) -> list[str]:
    """One target's summary (Rich markup): the line, then its error and incident path."""
    short = shortener([*outcome.from_revisions, *outcome.to_revisions])
    name = outcome.name.ljust(name_width)
    if outcome.outcome == "not_run":
        move = "not run"
    else:
        move = (
            f"{_revs(outcome.from_revisions, short)} → {_revs(outcome.to_revisions, short)}"
            f"  {duration(outcome.duration_s)}"
        )
    outcome_text = outcome.outcome.replace("_", " ")
    if outcome.applied:
        outcome_text += f" ({plural(outcome.applied, 'revision')})"
    lead = f"{_MARK[outcome.outcome]} {escape(name)}  "
    lines = [
        f"{lead}{escape(move)}  {outcome_text}" if outcome.outcome != "not_run" else f"{lead}{move}"
    ]
    for label, value in (("error", outcome.error), ("incident", outcome.incident)):
        if value:
            lines.extend(escape(line) for line in wrap(value, width, 6, lead=f"    {label}: "))
    return lines


def render_fleet_run(result: FleetRun, out: Console) -> None:
    width = out.width
    shard = f", shard {result.shard}" if result.shard else ""
    out.print(
        f"[bold]fleet {escape(result.fleet)}[/] ({escape(result.environment)}):"
        f" {result.direction} to {escape(result.target)},"
        f" {plural(len(result.targets), 'target')}{shard}, concurrency {result.concurrency}"
    )
    name_width = max((len(target.name) for target in result.targets), default=0)
    cohort = None
    for target in result.targets:
        if target.cohort != cohort:
            cohort = target.cohort
            out.print(f"[bold]{escape(cohort)}[/]")
        for line in target_line(target, width, name_width):
            out.print(f"  {line}")
    counts = ", ".join(
        f"{count} {outcome.replace('_', ' ')}"
        for outcome, count in result.counts().items()
        if count
    )
    out.print(f"{plural(len(result.targets), 'target')}: {counts} in {duration(result.elapsed_s)}")
    if result.halted:
        out.print(f"[red]halted[/]: {escape(result.halted)}; the targets not run are untouched")
        out.print("hint: fix the cause, then rerun the same command: finished targets are skipped")


def render_fleet_survey(result: FleetSurvey, out: Console) -> None:
    width = out.width
    everything = [rev for target in result.targets for rev in target.current] + result.heads
    short = shortener(everything)
    shard = f", shard {result.shard}" if result.shard else ""
    goal = f" to {result.target}" if result.target else ""
    out.print(
        f"[bold]fleet {escape(result.fleet)}[/] ({escape(result.environment)})"
        f" {result.command}{escape(goal)}: {plural(len(result.targets), 'target')}{shard},"
        f" heads {_revs(result.heads, short)}"
    )
    header, rows = _rows(result, short)
    for line in table_lines(header, rows, width - 2):
        out.print(f"  {escape(line)}")
    for target in result.targets:
        if target.error:
            for line in wrap(target.error, width, 6, lead=f"  {target.name}: "):
                out.print(f"[red]{escape(line)}[/]")
    counts = ", ".join(f"{count} {state}" for state, count in sorted(result.counts().items()))
    out.print(f"{plural(len(result.targets), 'target')}: {counts}")
    for group in result.groups:
        revision = _revs(group["revision"].split(","), short)
        against = (
            f"the schema {revision} produces"
            if group.get("compared_with") == "revision"
            else "each other"
        )
        line = (
            f"drift at {revision} ({group['dialect']}), against {against}:"
            f" {group['identical']} identical"
        )
        for text in wrap(group.get("note") or "", width, 4, lead="  note: "):
            out.print(escape(text), style="dim")
        if group["differ"]:
            names = ", ".join(item["name"] for item in group["differ"])
            line += f", {len(group['differ'])} differ: {names}"
        style = "yellow" if group["differ"] else "green"
        out.print(escape("\n".join(wrap(line, width, 2))), style=style)
        if not group["differ"]:
            continue
        for item in group["differ"]:
            for text in wrap(item["difference"], width, 6, lead=f"  - {item['name']}: "):
                out.print(escape(text))


def _rows(result: FleetSurvey, short: Callable[[str], str]) -> tuple[list[str], list[list[str]]]:
    if result.command == "diagnose":
        header = ["target", "state", "recorded", "recommendation"]
        rows = [
            [t.name, t.state, _revs(t.current, short), t.recommendation or t.error or ""]
            for t in result.targets
        ]
        return header, rows
    if result.command == "plan":
        header = ["target", "cohort", "current", "plan"]
        rows = [
            [
                t.name,
                t.cohort or "",
                _revs(t.current, short),
                "error" if t.error else (plural(t.pending, "revision") if t.pending else "skip"),
            ]
            for t in result.targets
        ]
        return header, rows
    header = ["target", "state", "current", "last run"]
    rows = [[t.name, t.state, _revs(t.current, short), t.last_run or "-"] for t in result.targets]
    return header, rows
