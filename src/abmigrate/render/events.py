"""Progress lines on standard error: one rendering of each event of :mod:`abmigrate.events`.

Standard output keeps the result record; these lines say what is happening meanwhile.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from abmigrate.events import (
    BackfillBatch,
    BackupFinished,
    BackupStarted,
    DowngradeSql,
    DryRunSkipped,
    Event,
    GatesOverridden,
    IndexProgress,
    InvalidIndexDropped,
    LockRetry,
    LockTaken,
    LockWaiting,
    ModelsPredicted,
    Observer,
    StatementRun,
    StepBlocked,
    StepFinished,
    StepStarted,
    TargetChosen,
    Verified,
    WaitingForBlockers,
)
from abmigrate.render.records import model_prediction_lines
from abmigrate.render.text import wrap

if TYPE_CHECKING:
    from rich.console import Console

    from abmigrate.results import Verification

__all__ = ["ProgressThrottle", "event_printer", "render_event"]


def event_printer(out: Console) -> Observer:
    """An observer printing each event on ``out``, index progress thinned out over time."""
    throttle = ProgressThrottle()

    def observe(event: Event) -> None:
        if isinstance(event, IndexProgress) and not throttle.due(event, time.monotonic()):
            return
        render_event(event, out)

    return observe


def _blockers(blockers: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"pid {b.get('pid')} {b.get('user') or ''} {b.get('state') or ''}"
        f" for {b.get('transaction_s')}s: {b.get('query')}"
        for b in blockers[:3]
    )


def _index_progress(event: IndexProgress) -> str:
    """E.g. ``CREATE INDEX CONCURRENTLY building index: scanning table: blocks 141/400, 1.6s``;
    in a waiting phase, the sessions waited for instead of (stale) block figures."""
    figures = (
        [f"sessions {event.lockers_done}/{event.lockers_total}"]
        if event.lockers_total
        else [
            f"{name} {done}/{total}"
            for name, done, total in (
                ("blocks", event.blocks_done, event.blocks_total),
                ("tuples", event.tuples_done, event.tuples_total),
            )
            if total
        ]
    )
    figures.append(f"{event.running_s}s")
    what = " ".join(str(part) for part in (event.command, event.phase) if part)
    blockers = _blockers(event.blockers)
    return f"   {what}: " + ", ".join(figures) + (f"; held up by {blockers}" if blockers else "")


_SGR = {"green": "\x1b[32m", "red": "\x1b[31m", "dim": "\x1b[2m"}
_RESET = "\x1b[0m"


def _write_lines(
    out: Console, lines: list[str], *, style: str | None = None, mark: tuple[str, str] = ("", "")
) -> bool:
    """Write progress lines straight to the console's file, as Rich would print them (no
    markup, no highlighting, no wrapping: soft wrap), without its rendering pipeline, which
    costs about a millisecond per line (a 300-revision upgrade prints over a thousand).
    ``style`` styles whole lines, ``mark`` is a styled prefix of the first line. False when
    the console records, is in Jupyter or on a legacy Windows console: then Rich prints."""
    if out.record or out.is_jupyter or out.legacy_windows:
        return False
    if out.quiet:
        return True
    colour = out.color_system is not None
    text, mark_style = mark
    if text and colour and not out.no_color:
        text = f"{_SGR[mark_style]}{text}{_RESET}"
    rendered = []
    for index, line in enumerate(lines):
        line = f"{text}{line}" if index == 0 else line
        if style is not None and colour and line:
            line = f"{_SGR[style]}{line}{_RESET}"
        rendered.append(line + "\n")
    file = out.file
    file.write("".join(rendered))
    file.flush()
    return True


class ProgressThrottle:
    """Fewer progress lines as a long operation goes on: every phase change is shown, then
    lines after 1, 2, 4 … seconds, at most ``max_gap_s`` apart (a 30-minute index build
    prints about 70 lines, not 1800)."""

    def __init__(self, max_gap_s: float = 30.0) -> None:
        self.max_gap_s = max_gap_s
        self._phase: tuple[Any, ...] | None = None
        self._next_at = 0.0
        self._gap = 1.0

    def due(self, event: IndexProgress, now: float) -> bool:
        phase = (event.revision, event.command, event.phase)
        if phase != self._phase:
            self._phase, self._gap, self._next_at = phase, 1.0, now + 1.0
            return True
        if now < self._next_at:
            return False
        self._gap = min(self._gap * 2, self.max_gap_s)
        self._next_at = now + self._gap
        return True


def _target(event: TargetChosen, out: Console) -> None:
    policy = event.policy
    rules = ", ".join(
        name
        for name, on in (
            ("backup", policy.require_backup),
            ("confirmation", policy.require_confirmation),
            ("no destructive changes", not policy.allow_destructive),
        )
        if on
    )
    timeouts = ", ".join(
        f"{label}={value / 1000:g}s"
        for label, value in (
            ("lock_timeout", policy.lock_timeout_ms),
            ("statement_timeout", policy.statement_timeout_ms),
        )
        if value is not None
    )
    policy_text = f"policy: {rules or 'development (no guards)'}" + (
        f"; {timeouts}" if timeouts else ""
    )
    line = f"{event.environment} {event.database}  {policy_text}"
    out.print("\n".join(wrap(line, out.width, 2, lead="")), markup=False)


def _step_finished(event: StepFinished, out: Console) -> None:
    rest = (
        f" {event.direction} {event.revision} ({event.elapsed_s:.2f}s"
        + (f", {event.attempts} attempts" if event.attempts > 1 else "")
        + ")"
    )
    mark = ("✓", "green") if event.ok else ("✗", "red")
    if not _write_lines(out, [rest], mark=mark):
        out.print(f"[{mark[1]}]{mark[0]}[/]{rest}")


def _verified(verification: Verification, out: Console) -> None:
    if not verification.ok:
        for problem in verification.problems:
            out.print(f"[red]verification: {problem}[/]")
        return
    health = verification.health
    out.print(
        "[green]✓[/] verified: at the target revision"
        + (", schema matches the models" if verification.drift == [] else "")
        + (", health check ok" if health.get("checks") else "")
        + (f" (health check {health['skipped']})" if health.get("skipped") else "")
    )
    for difference in verification.drift_not_checked:
        out.print(f"   [yellow]not checked (skipped in the dry run): {difference}[/]")


def _downgrade_sql(event: DowngradeSql, out: Console) -> None:
    for step in event.steps:
        out.print(f"-- ===== downgrade {step.get('revision')}: {step.get('message')} =====")
        if step.get("error"):
            out.print(f"-- cannot render offline: {step['error']}", markup=False)
        elif step.get("sql"):
            out.print(step["sql"], markup=False)
    for loss in event.data_loss:
        out.print(f"[red]data loss: {loss.message}[/]")


def render_event(event: Event, out: Console) -> None:
    """One line (or a few) of progress for ``event``."""
    match event:
        case TargetChosen():
            _target(event, out)
        case LockWaiting(holder=holder, wait_s=wait_s):
            who = ", ".join(
                f"{k} {holder[k]}" for k in ("pid", "host", "user", "since") if holder.get(k)
            )
            out.print(
                f"[yellow]waiting up to {wait_s:g}s for the migration lock,"
                f" held by {who or 'another session'}[/]"
            )
        case StepStarted():
            line = f"→ {event.direction} {event.revision}  {event.message} …"
            if not _write_lines(out, [line]):
                out.print(line, markup=False)
        case StatementRun(sql=sql):
            # Wrapped under itself (SQL reads the same across lines), printed as text: SQL
            # may hold brackets that Rich would take for markup.
            lines = wrap(sql, out.width, 5, lead="   ")
            if not _write_lines(out, lines, style="dim"):
                out.print("\n".join(lines), style="dim", markup=False)
        case StepBlocked():
            out.print(
                f"   [yellow]{event.revision} waiting {event.waiting_s}s for a lock,"
                f" blocked by {_blockers(event.blockers)}[/]"
            )
        case WaitingForBlockers():
            out.print(
                f"   [yellow]waiting (up to {event.budget_s}s, taking no lock) for"
                f" {_blockers(event.blockers)}[/]"
            )
        case LockRetry():
            blockers = _blockers(event.blockers)
            out.print(
                f"   [yellow]lock timeout ({event.lock_timeout_ms}ms) on attempt"
                f" {event.attempt}/{event.of}; retrying in {event.delay_s}s"
                + (f"; blocked by {blockers}" if blockers else "")
                + "[/]"
            )
        case IndexProgress():
            out.print(_index_progress(event), markup=False)
        case StepFinished():
            _step_finished(event, out)
        case DowngradeSql():
            _downgrade_sql(event, out)
        case BackfillBatch():
            out.print(
                f"   backfill {event.table}: batch {event.batch},"
                f" {event.rows} rows, {event.elapsed_s}s"
            )
        case InvalidIndexDropped():
            out.print(f"   [yellow]dropped invalid index {event.index} left by an earlier try[/]")
        case BackupStarted():
            out.print("backing up …")
        case BackupFinished(backup=backup):
            out.print(f"[green]✓[/] backup {backup.get('id')} {backup.get('path', '')}")
        case DryRunSkipped():
            out.print(
                "   [yellow]skipped in the dry run (cannot run inside a transaction):"
                f" {event.sql}[/]"
            )
        case Verified():
            _verified(event.verification, out)
        case ModelsPredicted(models=models):
            models_lines = model_prediction_lines(models, out.width)
            if models_lines:
                style = {"match": "green", "differ": "yellow"}.get(str(models.get("status")), "")
                out.print("\n".join(models_lines), style=style, markup=False)
        case GatesOverridden(overrides=overrides):
            for override in overrides:
                lead = f"override ({override.get('gate')}): "
                text = wrap(str(override.get("refused")), out.width, 2, lead=lead)
                out.print("\n".join(text), style="yellow", markup=False)
        case LockTaken():
            pass  # nothing to say: a wait, if any, was announced
