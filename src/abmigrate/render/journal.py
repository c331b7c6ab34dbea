"""Human renderings of the journal (JSON: the records themselves, whole).

``abmigrate journal`` shows one row per run — when, direction, from → to, outcome, how many
revisions in how long, by whom — and ``abmigrate journal RUN`` one run with its steps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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

    from abmigrate.results import JournalResult, JournalRun

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


def _revisions_of(run: dict[str, Any]) -> list[str]:
    ids = [*(run.get("from_revisions") or []), *(run.get("to_revisions") or [])]
    ids += [str(step.get("revision")) for step in run.get("applied") or []]
    ids += [*(run.get("planned") or []), *([run["in_flight"]] if run.get("in_flight") else [])]
    ids += list((run.get("checksums") or {}).keys())
    return [str(revision) for revision in ids]


def _list(revisions: list[str], short: Callable[[str], str]) -> str:
    return ", ".join(short(revision) for revision in revisions) if revisions else "(none)"


def _outcome(run: dict[str, Any]) -> str:
    return str(run.get("outcome") or "?").replace("_", " ")


def _change(run: dict[str, Any], short: Callable[[str], str]) -> str:
    """``from → to``: where the run started and where it left the database."""
    direction = run.get("direction")
    if direction == "acknowledge":
        return _list(list((run.get("checksums") or {}).keys()), short)
    start = _list(list(run.get("from_revisions") or []), short)
    if run.get("dry_run"):
        return f"{start} → {run.get('target')} (undone)"
    return f"{start} → {_list(list(run.get('to_revisions') or []), short)}"


def _summary(run: dict[str, Any], environment: str) -> str:
    """``120 revisions, 12.1 s, by alice``; a failed run says how far it got."""
    parts: list[str] = []
    direction = run.get("direction")
    if direction == "acknowledge":
        parts.append(plural(len(run.get("checksums") or {}), "script"))
    elif direction in ("upgrade", "downgrade"):
        applied = len(run.get("applied") or [])
        planned = len(run.get("planned") or [])
        if planned and applied != planned:
            parts.append(f"{applied} of {plural(planned, 'revision')}")
        else:
            parts.append(plural(applied, "revision"))
        seconds = elapsed_between(run.get("started_at"), run.get("finished_at"))
        if seconds is not None:
            parts.append(duration(seconds))
    user = (run.get("actor") or {}).get("user")
    if user:
        parts.append(f"by {user}")
    if run.get("environment") and run.get("environment") != environment:
        parts.append(f"as {run['environment']}")
    return ", ".join(parts)


def _note(run: dict[str, Any]) -> str | None:
    if run.get("error"):
        return f"error: {run['error']}"
    if run.get("outcome") == "running" and run.get("in_flight"):
        return f"in flight: {run['in_flight']} (still running, or the process died)"
    if run.get("reason"):
        return f"reason: {run['reason']}"
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
        started = parse_time(run.get("started_at"))
        rows.append(
            [
                short_run_id(str(run.get("run_id"))),
                clock(started).removesuffix(" UTC") if started else "?",
                str(run.get("direction") or "?"),
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
        style = _OUTCOME_STYLE.get(str(run.get("outcome")), "")
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
    started, finished = parse_time(run.get("started_at")), parse_time(run.get("finished_at"))
    direction = str(run.get("direction") or "?")
    title = f"run {run.get('run_id')}: {direction} of {run.get('environment') or '?'}"
    out.print(f"[bold]{title}[/]", end="")
    style = _OUTCOME_STYLE.get(str(run.get("outcome")), "white")
    out.print(f", [{style}]{_outcome(run)}[/]")
    dialect = f" ({run['dialect']})" if run.get("dialect") else ""
    fields: list[tuple[str, str]] = [
        ("database", f"{run.get('database') or result.database}{dialect}")
    ]
    if direction == "acknowledge":
        fields.append(("scripts", ", ".join((run.get("checksums") or {}).keys()) or "(none)"))
    else:
        start = ", ".join(run.get("from_revisions") or []) or "(none)"
        end = ", ".join(run.get("to_revisions") or []) or "(none)"
        target = f" (target {run['target']})" if run.get("target") else ""
        if run.get("dry_run"):  # it went to the target and back
            fields.append(("from → to", f"{start} → {run.get('target')} (undone)"))
        else:
            fields.append(("from → to", f"{start} → {end}{target}"))
    fields.append(
        ("started", f"{clock(started, seconds=True)}, {ago(started, now)}" if started else "?")
    )
    if finished:
        seconds = elapsed_between(run.get("started_at"), run.get("finished_at"))
        fields.append(("finished", f"{clock(finished, seconds=True)}, after {duration(seconds)}"))
    actor = run.get("actor") or {}
    if actor:
        where = f" on {actor['host']}" if actor.get("host") else ""
        pid = f" (pid {actor['pid']})" if actor.get("pid") else ""
        fields.append(("by", f"{actor.get('user') or '?'}{where}{pid}"))
    versions = run.get("versions") or {}
    if versions:
        fields.append(
            ("versions", ", ".join(f"{name} {version}" for name, version in versions.items()))
        )
    backup = run.get("backup") or {}
    if backup:
        fields.append(("backup", f"{backup.get('id')} {backup.get('path') or ''}".strip()))
    if run.get("reason"):
        fields.append(("reason", str(run["reason"])))
    if run.get("error"):
        fields.append(("error", str(run["error"])))
    for override in run.get("overrides") or []:
        fields.append(("override", f"{override.get('refused')} — reason: {override.get('reason')}"))
    for warning in run.get("warnings") or []:
        fields.append(("warning", str(warning)))
    for loss in run.get("data_loss") or []:
        fields.append(("data loss", str(loss.get("message"))))
    for difference in run.get("differences") or []:
        fields.append(("difference", str(difference)))
    if run.get("incident"):
        fields.append(("incident", str(run["incident"])))
    out.print("\n".join(field_lines(fields, out.width)), markup=False)
    if direction not in ("upgrade", "downgrade"):
        return
    _steps(run, out)


def _steps(run: dict[str, Any], out: Console) -> None:
    applied = list(run.get("applied") or [])
    planned = [str(revision) for revision in run.get("planned") or []]
    done = {str(step.get("revision")) for step in applied}
    rows: list[tuple[str, str, str, str]] = []
    for step in applied:
        notes = []
        if (step.get("attempts") or 1) > 1:
            notes.append(f"{step['attempts']} attempts")
        if step.get("waited_s"):
            notes.append(f"waited {duration(step['waited_s'])} for locks")
        rows.append(
            (
                str(step.get("revision")),
                duration(step.get("elapsed_s")),
                str(step.get("message") or ""),
                f" ({', '.join(notes)})" if notes else "",
            )
        )
    for revision in planned:
        if revision in done:
            continue
        state = "(not run)"
        if revision == run.get("in_flight"):
            state = "(failed here)" if run.get("outcome") == "failed" else "(in flight)"
        rows.append((revision, "—", state, ""))
    count = plural(len(applied), "revision")
    if planned and len(planned) != len(applied):
        count = f"{len(applied)} of {plural(len(planned), 'revision')}"
    done_how = "undone" if run.get("direction") == "downgrade" else "applied"
    if run.get("dry_run"):
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
