"""Human (Rich) and JSON renderings of result records.

Every reporting command renders the same record two ways: ``to_record()`` for JSON, and a
Rich table or line for people. Colour is used only when the output is a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from abmigrate.results import (
    BackupList,
    BackupRecord,
    BackupVerification,
    CheckFailure,
    CheckReport,
    CurrentResult,
    HeadsResult,
    HistoryResult,
    JournalResult,
    JournalRun,
    Plan,
    Record,
    RestoreResult,
    RevisionCreated,
    RunResult,
    StampResult,
    Status,
)

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console
    from rich.text import Text

__all__ = [
    "console",
    "github_annotation",
    "render",
    "render_check_report",
    "render_json",
]

_STATE_STYLE = {
    "up_to_date": "green",
    "behind": "yellow",
    "uninitialized": "yellow",
    "unknown_revision": "red",
}


def console(stderr: bool = False, file: IO[str] | None = None) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, file=file, highlight=False, soft_wrap=True)


def render_json(record: Record | dict[str, Any] | list[Any]) -> str:
    data = record.to_record() if isinstance(record, Record) else record
    return json.dumps(data, indent=2, default=str)


def render(result: Record, out: Console) -> None:
    renderer: Callable[[Any, Console], None] | None = _RENDERERS.get(type(result))
    if renderer is None:
        # diagnose, drift and rehearse results: rendered by abmigrate.render.state, loaded
        # when one of them is shown (the domain modules know nothing of their rendering).
        from abmigrate.render.state import renderer_for

        renderer = renderer_for(result)
    if renderer is None:
        out.print(render_json(result))
        return
    renderer(result, out)


def _revs(revisions: list[str]) -> str:
    return ", ".join(revisions) if revisions else "(none)"


def _current(result: Any, out: Console) -> None:
    assert isinstance(result, CurrentResult)
    out.print(f"[bold]{result.environment}[/] {result.database}")
    if not result.initialized:
        out.print("current: (none) — the database records no revision")
    else:
        out.print(f"current: {_revs(result.current)}")
    for revision in result.unknown:
        out.print(f"[red]unknown revision {revision}: no script defines it[/]")


def _status(result: Any, out: Console) -> None:
    from rich.text import Text

    from abmigrate.render.journal import short_run_id
    from abmigrate.render.text import field_lines

    assert isinstance(result, Status)
    fields = [
        ("environment", result.environment),
        ("database", f"{result.database} ({result.dialect})"),
        ("current", _revs(result.current)),
        ("heads", _heads_field(result.heads, result.branches)),
        ("state", result.state),
    ]
    if result.last_run:
        fields.append(("last run", last_run_summary(result.last_run)))
        if result.last_run.get("error"):
            fields.append(("", f"error: {result.last_run['error']}"))
        if result.last_run.get("run_id"):
            run_id = short_run_id(str(result.last_run["run_id"]))
            fields.append(("", f"details: abmigrate journal {run_id}"))
    if result.last_backup:
        fields.append(("last backup", last_backup_summary(result.last_backup)))
    for line in field_lines(fields, out.width):
        text = Text(line)
        if line.startswith("state "):
            text.stylize(_STATE_STYLE.get(result.state, "white"), len(line) - len(result.state))
        out.print(text)
    if result.unknown:
        out.print(
            f"[red]the database records {_revs(result.unknown)}, which no script defines[/]"
            " — run `abmigrate diagnose`"
        )
    if result.pending:
        out.print(f"\n{len(result.pending)} pending revision(s):")
        for pending in result.pending:
            out.print(f"  {pending.revision}  {pending.message}", markup=False)
    for problem in result.graph_problems:
        out.print(f"[yellow]graph: {problem['message']}[/]")
    for warning in result.warnings:
        _warning(warning, out)


def _heads_field(heads: list[str], branches: dict[str, list[str]]) -> str:
    """The heads, each after its branch labels when they are several by design."""
    if not branches:
        return _revs(heads)
    return ", ".join(f"{'/'.join(branches[head])} {head}" for head in heads)


def _warning(text: str, out: Console) -> None:
    """``warning: …``, wrapped under its text."""
    from abmigrate.render.text import wrap

    out.print("\n".join(wrap(text, out.width, 9, lead="warning: ")), style="yellow", markup=False)


def last_run_summary(run: dict[str, Any], now: datetime | None = None) -> str:
    """``upgrade succeeded 2 min ago, 3 revisions, 1.2 s, by alice``."""
    from abmigrate.render.text import ago, duration, elapsed_between, parse_time, plural

    outcome = str(run.get("outcome") or "?")
    applied = int(run.get("revisions") or 0)
    planned = int(run.get("planned") or 0)
    if outcome == "running":
        moment = ago(parse_time(run.get("started_at")), now)
        what = f"{run.get('direction')} running (or interrupted), started {moment}"
    else:
        moment = ago(parse_time(run.get("finished_at") or run.get("started_at")), now)
        what = f"{run.get('direction')} {outcome} {moment}"
    if run.get("in_flight"):
        what += f" in {run['in_flight']}"
    count = plural(applied, "revision")
    if outcome != "succeeded" and planned:
        count = f"{applied} of {plural(planned, 'revision')}"
    parts = [what, count]
    seconds = elapsed_between(run.get("started_at"), run.get("finished_at"))
    if seconds is not None:
        parts.append(duration(seconds))
    if run.get("by"):
        parts.append(f"by {run['by']}")
    return ", ".join(parts)


def last_backup_summary(backup: dict[str, Any], now: datetime | None = None) -> str:
    """``20261128T032700Z-ab12 5 min ago, 12.0 MiB, revision r3, verified``."""
    from abmigrate.render.text import ago, parse_time

    moment = ago(parse_time(backup.get("created_at")), now)
    parts = [f"{backup.get('id')} {moment}"]
    if backup.get("size") is not None:
        parts.append(_size(int(backup["size"])))
    revisions = backup.get("revisions")
    if isinstance(revisions, list):
        revisions = _revs(revisions)
    if revisions:
        parts.append(f"revision {revisions}")
    if backup.get("restore_tested"):
        parts.append("restore-tested")
    else:
        parts.append("verified" if backup.get("verified") else "NOT verified")
    return ", ".join(parts)


def _history(result: Any, out: Console) -> None:
    from rich.cells import cell_len
    from rich.text import Text

    assert isinstance(result, HistoryResult)
    # Aligned by hand, not with a rich Table: measuring and drawing every cell of a
    # 300-revision table cost more than everything else the command does (bench/cli_latency).
    rows = [
        (
            {True: "✓", False: "·", None: " "}[entry.applied],
            entry.revision,
            _revs(entry.down_revisions),
            entry.message,
            " ".join(
                tag for tag, on in (("(head)", entry.is_head), ("(merge)", entry.is_merge)) if on
            ),
            entry.applied,
        )
        for entry in result.entries
    ]
    revision_width = max([cell_len("revision"), *(cell_len(row[1]) for row in rows)])
    parents_width = max([cell_len("parents"), *(cell_len(row[2]) for row in rows)])
    text = Text(no_wrap=False)
    header = f"  {'revision'.ljust(revision_width)}  {'parents'.ljust(parents_width)}  message"
    text.append(header + "\n", style="bold")
    for mark, revision, parents, message, tags, applied in rows:
        text.append(mark, style="green" if applied else "")
        text.append(
            f" {revision.ljust(revision_width)}  {parents.ljust(parents_width)}  {message}"
            + (f"  {tags}" if tags else "")
            + "\n"
        )
    text.rstrip()
    if result.environment:
        out.print(f"[bold]{result.environment}[/] {result.database}  (✓ = applied)")
    out.print(text)


def _heads(result: Any, out: Console) -> None:
    assert isinstance(result, HeadsResult)
    for head in result.heads:
        labels = result.branches.get(head.revision)
        branch = f" (head of {'/'.join(labels)})" if labels else " (head)"
        out.print(f"{head.revision}{branch}  {head.message}", markup=False)
    if result.branches:
        out.print(
            f"{len(result.heads)} heads, one per labelled branch:"
            " `abmigrate upgrade` applies them all"
        )
    elif result.multiple:
        out.print(
            f'[yellow]{len(result.heads)} heads: run `abmigrate merge -m "merge heads"`'
            " to join them[/]"
        )


def _plan(result: Any, out: Console) -> None:
    assert isinstance(result, Plan)
    out.print(
        f"[bold]plan[/] {result.direction} {result.environment} {result.database}:"
        f" {_revs(result.current)} → {_revs(result.target_revisions)}"
    )
    if not result.steps:
        out.print("nothing to do: the database is already there")
        return
    # The lines are printed at once: a print per line cost more than rendering the SQL
    # (~900 prints for 300 revisions with --sql). Same text, same markup.
    lines: list[Text] = []

    def line(text: str, *, markup: bool = True) -> None:
        lines.append(out.render_str(text, markup=markup))

    for number, step in enumerate(result.steps, 1):
        line(f"  {number}. {step.direction} {step.revision}  {step.message}")
        for finding in step.findings:
            line(f"     [yellow]{finding.code} {finding.severity}: {finding.message}[/]")
            judged = finding.judged
            if judged is not None and judged.decision == "downgraded":
                before = judged.before
                was = f"{before.get('severity')}{', destructive' if before.get('destructive') else ''}"
                line(f"       downgraded from {was}: {judged.reason}", markup=False)
            elif judged is not None and judged.tables:
                line(f"       kept: {judged.reason}", markup=False)
        for check in step.preflight:
            line(f"     preflight: {check.message}")
    for loss in result.data_loss:
        line(f"[red]data loss: {loss.message}[/]")
    models_lines = model_prediction_lines(result.models, out.width)
    if models_lines:
        style = {"match": "green", "differ": "yellow"}.get(str((result.models or {}).get("status")))
        for text in models_lines:
            lines.append(out.render_str(text, markup=False, style=style or ""))
    if any(step.sql is not None or step.sql_error for step in result.steps):
        for step in result.steps:
            line(f"\n-- ===== {step.direction} {step.revision}: {step.message} =====")
            if step.sql_error:
                line(f"-- cannot render offline: {step.sql_error}")
            elif step.sql:
                line(step.sql, markup=False)
    out.print(*lines, sep="\n")


def model_prediction_lines(prediction: dict[str, Any] | None, width: int) -> list[str]:
    """The prediction of ``plan`` and the pipeline's plan step, wrapped at ``width``: a
    line for a match or for why there is none, the count and the first three differences
    otherwise. Nothing when there is nothing to say (no models, ``verify_models = "off"``,
    a target that is not the head)."""
    from abmigrate.apply.model_prediction import describe_for_people
    from abmigrate.render.text import wrap

    if not prediction:
        return []
    status = prediction.get("status")
    at = ", ".join(prediction.get("target") or []) or "base"
    lead = "models: "
    if status == "match":
        text = f"the schema at {at} will match the models ({prediction.get('source')})"
    elif status == "not_predicted":
        text = f"not predicted: {prediction.get('reason')}"
    elif status == "differ":
        differences = [str(item) for item in prediction.get("differences") or []]
        lines = wrap(
            f"the schema at {at} will differ from the models ({prediction.get('source')})"
            f" in {len(differences)} place(s):",
            width,
            len(lead),
            lead=lead,
        )
        for difference in differences[:3]:
            lines.extend(wrap(describe_for_people(difference), width, 4, lead="  - "))
        if len(differences) > 3:
            lines.extend(
                wrap(
                    f"and {len(differences) - 3} more: `{prediction.get('command')}` lists"
                    " them all",
                    width,
                    2,
                    lead="  ",
                )
            )
        return lines
    else:
        return []
    return wrap(text, width, len(lead), lead=lead)


def _run(result: Any, out: Console) -> None:
    from abmigrate.render.text import wrap

    assert isinstance(result, RunResult)
    for warning in result.warnings:
        _warning(warning, out)
    for override in result.overrides:
        text = f"{override.get('refused')} — reason: {override.get('reason')}"
        lead = f"override ({override.get('gate')}): "
        out.print("\n".join(wrap(text, out.width, 2, lead=lead)), style="yellow", markup=False)
    for loss in result.data_loss:
        out.print(f"[red]data loss: {loss.message}[/]")
    if not result.applied:
        out.print(f"nothing to do: {result.environment} is at {_revs(result.to_revisions)}")
        return
    if result.dry_run:
        for skipped in result.skipped:
            out.print(
                f"[yellow]not run in the dry run (cannot run inside a transaction):"
                f" {skipped.get('revision')}: {skipped.get('sql')}[/]",
                markup=True,
            )
        out.print(
            f"[bold]dry run[/]: {result.direction} of {len(result.applied)} revision(s)"
            f" ({', '.join(step.revision for step in result.applied)}) succeeded in"
            f" {result.elapsed_s:.2f}s and was undone ({result.dry_run_method});"
            f" {result.environment} stays at {_revs(result.from_revisions)}, a real run takes"
            f" it to {_revs(result.to_revisions)}"
        )
        return
    out.print(
        f"[green]applied {len(result.applied)} revision(s)[/] ({result.direction}) in"
        f" {result.elapsed_s:.2f}s; {result.environment} is now at {_revs(result.to_revisions)}"
    )
    if result.backup:
        out.print(f"backup: {result.backup.get('id')} {result.backup.get('path', '')}")
    health = result.verification.health if result.verification else {}
    for check in health.get("checks", []):
        out.print(f"health {check.get('kind')} {check.get('target')}: ok")
    if result.run_id:
        out.print(f"run {result.run_id} recorded in the journal")


def _journal(result: Any, out: Console) -> None:
    from abmigrate.render.journal import render_journal

    assert isinstance(result, JournalResult)
    render_journal(result, out)


def _journal_run(result: Any, out: Console) -> None:
    from abmigrate.render.journal import render_journal_run

    assert isinstance(result, JournalRun)
    render_journal_run(result, out)


def _created(result: Any, out: Console) -> None:
    assert isinstance(result, RevisionCreated)
    out.print(f"created {result.revision} ({result.message}) at {result.path}")
    for finding in result.findings:
        out.print(f"  [yellow]{finding.code} {finding.severity}: {finding.message}[/]")


def _stamp(result: Any, out: Console) -> None:
    assert isinstance(result, StampResult)
    forced = f" (forced: {result.reason})" if result.forced else ""
    out.print(
        f"stamped {result.environment}: {_revs(result.before)} → {_revs(result.after)}{forced}"
    )
    if result.forced and result.differences:
        out.print(f"[yellow]the schema differs from it in {len(result.differences)} place(s):[/]")
        for difference in result.differences:
            out.print(f"  - {difference}", markup=False)
    elif not result.forced:
        out.print("the live schema matches it exactly")


def _check_report(result: Any, out: Console) -> None:
    assert isinstance(result, CheckReport)
    render_check_report(result, out)


def render_check_report(
    report: CheckReport, out: Console, *, github: bool = False, note: str = ""
) -> None:
    """The checks one per line, then every failure with its evidence (or, for ``github``,
    workflow annotations GitHub shows on the revision's file)."""
    if github:
        for failure in report.failures:
            out.print(github_annotation(failure), markup=False, highlight=False)
    from rich.text import Text

    from abmigrate.render.text import plural, wrap

    out.print(f"[bold]abmigrate check[/] {report.project}", markup=True)
    out.print(f"scratch databases: {report.scratch_server}", markup=False)
    if note:
        out.print(f"[yellow]note: {note}[/]")
    width = max((len(outcome.name) for outcome in report.outcomes), default=0)
    for outcome in report.outcomes:
        mark, style = {"passed": ("✓", "green"), "failed": ("✗", "red")}.get(
            outcome.status, ("·", "")
        )
        summary = outcome.summary + ("  (skipped)" if outcome.status == "skipped" else "")
        lines = wrap(
            f"{summary}  {outcome.elapsed_s:.2f}s",
            out.width,
            4 + width + 2,
            lead=f"  {mark} {outcome.name}".ljust(4 + width + 2),
        )
        text = Text("\n".join(lines))
        if style:
            text.stylize(style, 2, 3)
        out.print(text)
    if not github:
        for failure in report.failures:
            _check_failure(failure, out)
    failed = [outcome.name for outcome in report.outcomes if outcome.status == "failed"]
    skipped = sum(outcome.status == "skipped" for outcome in report.outcomes)
    # Counted in checks, like the lines above; each check's line says what it counted.
    total = plural(len(report.outcomes), "check")
    if failed:
        out.print(f"\n[red]FAILED[/]: {len(failed)} of {total} ({', '.join(failed)})")
    else:
        passed = len(report.outcomes) - skipped
        out.print(
            f"\n[green]passed[/]: {passed} of {total}" + (f", {skipped} skipped" if skipped else "")
        )


def _check_failure(failure: CheckFailure, out: Console) -> None:
    from rich.text import Text

    from abmigrate.render.text import wrap

    def say(label: str, text: str, indent: int = 2, style: str = "") -> None:
        lead = " " * indent + label
        lines = Text("\n".join(wrap(text, out.width, len(lead) + 1, lead=lead + " ")))
        if style:
            lines.stylize(style, indent, len(lead))
        out.print(lines)

    out.print()
    say(f"{failure.check}:", failure.message, indent=0, style="red")
    if failure.path:
        say("file:", failure.path)
    if failure.detail:
        say("error:", failure.detail)
    if failure.differences:
        out.print("  differences:")
        for difference in failure.differences:
            say("-", difference, indent=4)
    if failure.sql:
        out.print("  SQL:")
        for line in failure.sql.splitlines():
            out.print(f"    {line}".rstrip(), markup=False)
    if failure.hint:
        say("hint:", failure.hint)


def github_annotation(failure: CheckFailure) -> str:
    """One ``::error`` workflow command (newlines escaped as GitHub requires)."""
    import os

    lines = [failure.message]
    if failure.detail:
        lines.append(f"error: {failure.detail}")
    lines.extend(f"- {difference}" for difference in failure.differences)
    if failure.sql:
        lines.extend(["SQL:", failure.sql])
    if failure.hint:
        lines.append(f"hint: {failure.hint}")
    properties = [f"title=abmigrate check {failure.check}"]
    if failure.path:
        path = os.path.relpath(failure.path) if os.path.isabs(failure.path) else failure.path
        properties.insert(0, f"file={_escape_property(path)}")
    return f"::error {','.join(properties)}::{_escape_data(chr(10).join(lines))}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _age(seconds: float | None) -> str:
    from datetime import UTC, datetime, timedelta

    from abmigrate.render.text import ago

    if seconds is None:
        return "?"
    now = datetime.now(UTC)
    return ago(now - timedelta(seconds=seconds), now)


def _backup(result: Any, out: Console) -> None:
    from rich.text import Text

    from abmigrate.render.text import wrap

    assert isinstance(result, BackupRecord)
    headline = Text(
        "\n".join(
            wrap(
                f"backup {result.id} of {result.environment} ({result.dialect}):"
                f" {_size(result.size)}, {result.tables} tables,"
                f" revision {_revs(result.revisions)}, {result.duration_s:.2f}s",
                out.width,
                2,
                lead="",
            )
        )
    )
    headline.stylize("green", 0, len(f"backup {result.id}"))
    out.print(headline)
    out.print(f"  path: {result.path}")
    if result.sha256:
        out.print(f"  sha256: {result.sha256}")
    out.print(f"  verified: {'yes' if result.verified else 'no'} ({result.compression})")
    for deleted in result.deleted:
        out.print(f"  retention: deleted {deleted}")


def _backup_list(result: Any, out: Console) -> None:
    from rich.text import Text

    from abmigrate.render.text import table_lines

    assert isinstance(result, BackupList)
    if not result.backups:
        out.print(f"no backups of {result.environment} in {result.backup_dir}", markup=False)
        return
    rows = [
        [
            item.id,
            _revs(item.revisions),
            _size(item.size),
            _age(item.age_s),
            "restore-tested" if item.restore_tested else ("yes" if item.verified else "NO"),
            item.reason,
        ]
        for item in result.backups
    ]
    header = ["id", "revision", "size", "age", "verified", "reason"]
    lines = table_lines(header, rows, out.width)
    out.print(f"[bold]{result.environment}[/] backups in {result.backup_dir} (newest first)")
    out.print(Text(lines[0], style="bold"))
    out.print("\n".join(lines[1:]), markup=False)


def _verification(result: Any, out: Console) -> None:
    assert isinstance(result, BackupVerification)
    out.print(f"[green]backup {result.id} verified[/] ({result.path})")
    for check in result.checks:
        out.print(f"  ✓ {check}")


def _restore(result: Any, out: Console) -> None:
    assert isinstance(result, RestoreResult)
    if result.pre_restore_backup:
        out.print(f"backed up the current state first: {result.pre_restore_backup.get('id')}")
    out.print(
        f"[green]restored {result.id}[/] into {result.target} in {result.elapsed_s:.2f}s;"
        f" it now records revision {_revs(result.revisions)}"
    )


_RENDERERS = {
    CurrentResult: _current,
    Status: _status,
    HistoryResult: _history,
    HeadsResult: _heads,
    Plan: _plan,
    RunResult: _run,
    JournalResult: _journal,
    JournalRun: _journal_run,
    RevisionCreated: _created,
    StampResult: _stamp,
    CheckReport: _check_report,
    BackupRecord: _backup,
    BackupList: _backup_list,
    BackupVerification: _verification,
    RestoreResult: _restore,
}
