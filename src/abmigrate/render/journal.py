"""Human renderings of the journal (JSON: the records themselves, whole).

``abmigrate journal`` shows one row per run — when, direction, from → to, outcome, how many
revisions in how long, by whom — and ``abmigrate journal RUN`` one run with its steps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from abmigrate.render.text import (
    ago,
    clock,
    duration,
    elapsed_between,
    field_lines,
    parse_time,
    plural,
    shortener,
    wrap,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from abmigrate.results import JournalResult, JournalRun, RunRecord

__all__ = ["render_journal", "render_journal_run", "short_run_id"]

_OUTCOME_STYLE = {
    "succeeded": "green",
    "dry run succeeded": "green",
    "acknowledged": "green",
    "failed": "red",
    "dry run failed": "red",
    "running": "yellow",
    "forced_stamp": "yellow",
}
_GAP = "  "


def short_run_id(run_id: str) -> str:
    """``20261128T032421-5505b2ad`` → ``5505b2ad``: the random part, which `journal RUN`
    accepts like the whole id (or any unique prefix of either)."""
    return run_id.rpartition("-")[2] or run_id


def _revisions_of(run: RunRecord) -> list[str]:
    ids = [*run.from_revisions, *run.to_revisions, *(step.revision for step in run.applied)]
    ids += [*run.planned, *([run.in_flight] if run.in_flight else [])]
    ids += list((run.checksums or {}).keys())
    return ids


def _list(revisions: list[str], short: Callable[[str], str]) -> str:
    return ", ".join(short(revision) for revision in revisions) if revisions else "(none)"


def _outcome(run: RunRecord) -> str:
    return (run.outcome or "?").replace("_", " ")


def _change(run: RunRecord, short: Callable[[str], str]) -> str:
    """``from → to``: where the run started and where it left the database."""
    if run.direction == "acknowledge":
        return _list(list((run.checksums or {}).keys()), short)
    start = _list(run.from_revisions, short)
    if run.dry_run:
        return f"{start} → {run.target} (undone)"
    return f"{start} → {_list(run.to_revisions, short)}"


def _summary(run: RunRecord, environment: str) -> str:
    """``120 revisions, 12.1 s, by alice``; a failed run says how far it got."""
    parts: list[str] = []
    if run.direction == "acknowledge":
        parts.append(plural(len(run.checksums or {}), "script"))
    elif run.is_migration:
        applied, planned = len(run.applied), len(run.planned)
        if planned and applied != planned:
            parts.append(f"{applied} of {plural(planned, 'revision')}")
        else:
            parts.append(plural(applied, "revision"))
        seconds = elapsed_between(run.started_at, run.finished_at)
        if seconds is not None:
            parts.append(duration(seconds))
    user = run.actor.get("user")
    if user:
        parts.append(f"by {user}")
    if run.environment and run.environment != environment:
        parts.append(f"as {run.environment}")
    return ", ".join(parts)


def _note(run: RunRecord) -> str | None:
    if run.error:
        return f"error: {run.error}"
    if run.outcome == "running" and run.in_flight:
        return f"in flight: {run.in_flight} (still running, or the process died)"
    if run.reason:
        return f"reason: {run.reason}"
    return None


def render_journal(result: JournalResult, out: Console) -> None:
    """One row per run, newest first. The columns are aligned over all rows; when a row is
    wider than the console the summary goes on a second line, under the time."""
    from rich.text import Text

    heading = f"{result.environment} {result.database} — journal ({result.source}), newest first"
    out.print("\n".join(wrap(heading + ", times in UTC", out.width)), markup=False)
    if not result.runs:
        out.print("no runs recorded")
        return
    revisions = [revision for run in result.runs for revision in _revisions_of(run)]
    short = shortener(revisions)
    header = ["run", "started", "direction", "from → to", "outcome"]
    rows = []
    for run in result.runs:
        started = parse_time(run.started_at)
        rows.append(
            [
                short_run_id(run.run_id),
                clock(started).removesuffix(" UTC") if started else "?",
                run.direction or "?",
                _change(run, short),
                _outcome(run),
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    summaries = [_summary(run, result.environment) for run in result.runs]
    lead = len(_GAP.join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)))
    one_line = lead + len(_GAP) + max(len("summary"), *map(len, summaries)) <= out.width
    indent = widths[0] + len(_GAP)

    def line(cells: list[str], summary: str) -> list[str]:
        first = _GAP.join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        if one_line:
            return [f"{first}{_GAP}{summary}".rstrip()]
        return [first.rstrip(), *wrap(summary, out.width, indent)]

    out.print(Text("\n".join(line(header, "summary")), style="bold"))
    for run, cells, summary in zip(result.runs, rows, summaries, strict=True):
        text = Text("\n".join(line(cells, summary)))
        style = _OUTCOME_STYLE.get(run.outcome, "")
        if style:  # the outcome is the last column of the first line
            start = sum(widths[:-1]) + len(_GAP) * (len(widths) - 1)
            text.stylize(style, start, start + len(cells[-1]))
        out.print(text)
        note = _note(run)
        if note:
            out.print("\n".join(wrap(note, out.width, indent)), markup=False)
    out.print(
        f"\n{plural(len(result.runs), 'run')} shown; `abmigrate journal RUN` shows one with"
        " its steps",
        markup=False,
    )


def render_journal_run(result: JournalRun, out: Console, now: datetime | None = None) -> None:
    """One run: what, where, when, by whom, how it went, then every step."""
    run = result.run
    now = now or datetime.now(UTC)
    started, finished = parse_time(run.started_at), parse_time(run.finished_at)
    direction = run.direction or "?"
    title = f"run {run.run_id}: {direction} of {run.environment or '?'}"
    out.print(f"[bold]{title}[/]", end="")
    style = _OUTCOME_STYLE.get(run.outcome, "white")
    out.print(f", [{style}]{_outcome(run)}[/]")
    dialect = f" ({run.dialect})" if run.dialect else ""
    fields: list[tuple[str, str]] = [("database", f"{run.database or result.database}{dialect}")]
    if direction == "acknowledge":
        fields.append(("scripts", ", ".join((run.checksums or {}).keys()) or "(none)"))
    else:
        start = ", ".join(run.from_revisions) or "(none)"
        end = ", ".join(run.to_revisions) or "(none)"
        target = f" (target {run.target})" if run.target else ""
        if run.dry_run:  # it went to the target and back
            fields.append(("from → to", f"{start} → {run.target} (undone)"))
        else:
            fields.append(("from → to", f"{start} → {end}{target}"))
    fields.append(
        ("started", f"{clock(started, seconds=True)}, {ago(started, now)}" if started else "?")
    )
    if finished:
        seconds = elapsed_between(run.started_at, run.finished_at)
        fields.append(("finished", f"{clock(finished, seconds=True)}, after {duration(seconds)}"))
    actor = run.actor
    if actor:
        where = f" on {actor['host']}" if actor.get("host") else ""
        pid = f" (pid {actor['pid']})" if actor.get("pid") else ""
        fields.append(("by", f"{actor.get('user') or '?'}{where}{pid}"))
    if run.versions:
        fields.append(
            ("versions", ", ".join(f"{name} {version}" for name, version in run.versions.items()))
        )
    backup = run.backup or {}
    if backup:
        fields.append(("backup", f"{backup.get('id')} {backup.get('path') or ''}".strip()))
    if run.reason:
        fields.append(("reason", run.reason))
    if run.error:
        fields.append(("error", run.error))
    for override in run.overrides:
        fields.append(("override", f"{override.get('refused')} — reason: {override.get('reason')}"))
    for warning in run.warnings:
        fields.append(("warning", warning))
    for loss in run.data_loss:
        fields.append(("data loss", loss.message))
    for difference in run.differences or []:
        fields.append(("difference", difference))
    if run.incident_path:
        fields.append(("incident", run.incident_path))
    out.print("\n".join(field_lines(fields, out.width)), markup=False)
    if run.is_migration:
        _steps(run, out)


def _steps(run: RunRecord, out: Console) -> None:
    done = {step.revision for step in run.applied}
    rows: list[tuple[str, str, str, str]] = []
    for step in run.applied:
        notes = []
        if step.attempts > 1:
            notes.append(f"{step.attempts} attempts")
        if step.waited_s:
            notes.append(f"waited {duration(step.waited_s)} for locks")
        rows.append(
            (
                step.revision,
                duration(step.elapsed_s),
                step.message,
                f" ({', '.join(notes)})" if notes else "",
            )
        )
    for revision in run.planned:
        if revision in done:
            continue
        state = "(not run)"
        if revision == run.in_flight:
            state = "(failed here)" if run.outcome == "failed" else "(in flight)"
        rows.append((revision, "—", state, ""))
    applied, planned = len(run.applied), len(run.planned)
    count = plural(applied, "revision")
    if planned and planned != applied:
        count = f"{applied} of {plural(planned, 'revision')}"
    done_how = "undone" if run.direction == "downgrade" else "applied"
    if run.dry_run:
        done_how += " and rolled back (dry run)"
    out.print(f"\n[bold]steps[/]: {count} {done_how}")
    if not rows:
        return
    number_width = len(str(len(rows)))
    revision_width = max(len("revision"), *(len(row[0]) for row in rows))
    time_width = max(len("time"), *(len(row[1]) for row in rows))
    indent = 2 + number_width + 2 + revision_width + 2 + time_width + 2

    def lead(number: str, revision: str, time: str) -> str:
        return (
            f"  {number.rjust(number_width)}  {revision.ljust(revision_width)}"
            f"  {time.ljust(time_width)}"
        )

    lines = [f"{lead('#', 'revision', 'time')}  message"]
    for number, (revision, time, message, extra) in enumerate(rows, 1):
        lines.extend(
            wrap(message + extra, out.width, indent, lead=lead(str(number), revision, time) + "  ")
        )
    out.print("\n".join(lines), markup=False)
