"""Human (Rich) and JSON renderings of result records.

Every reporting command renders the same record two ways: ``to_record()`` for JSON, and a
Rich table or line for people. Colour is used only when the output is a terminal.
"""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

from abmigrate.results import (
    CurrentResult,
    HeadsResult,
    HistoryResult,
    Plan,
    Record,
    RevisionCreated,
    RunResult,
    StampResult,
    Status,
)

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["console", "render", "render_json"]

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
    renderer = _RENDERERS.get(type(result))
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
    from rich.table import Table

    assert isinstance(result, Status)
    style = _STATE_STYLE.get(result.state, "white")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("environment", result.environment)
    table.add_row("database", f"{result.database} ({result.dialect})")
    table.add_row("current", _revs(result.current))
    table.add_row("heads", _revs(result.heads))
    table.add_row("state", f"[{style}]{result.state}[/]")
    if result.last_run:
        table.add_row("last run", _summary(result.last_run))
    if result.last_backup:
        table.add_row("last backup", _summary(result.last_backup))
    out.print(table)
    if result.unknown:
        out.print(
            f"[red]the database records {_revs(result.unknown)}, which no script defines[/]"
            " — run `abmigrate diagnose`"
        )
    if result.pending:
        out.print(f"\n{len(result.pending)} pending revision(s):")
        for pending in result.pending:
            out.print(f"  {pending.revision}  {pending.message}")
    for problem in result.graph_problems:
        out.print(f"[yellow]graph: {problem['message']}[/]")
    for warning in result.warnings:
        out.print(f"[yellow]warning: {warning}[/]")


def _summary(record: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in record.items() if value is not None)


def _history(result: Any, out: Console) -> None:
    from rich.table import Table

    assert isinstance(result, HistoryResult)
    table = Table(box=None, pad_edge=False)
    for column in ("", "revision", "parents"):
        table.add_column(column, no_wrap=True)
    table.add_column("message", overflow="fold")
    table.add_column("", no_wrap=True)
    for entry in result.entries:
        mark = {True: "[green]✓[/]", False: "·", None: ""}[entry.applied]
        tags = " ".join(
            tag for tag, on in (("(head)", entry.is_head), ("(merge)", entry.is_merge)) if on
        )
        table.add_row(mark, entry.revision, _revs(entry.down_revisions), entry.message, tags)
    if result.environment:
        out.print(f"[bold]{result.environment}[/] {result.database}  (✓ = applied)")
    out.print(table)


def _heads(result: Any, out: Console) -> None:
    assert isinstance(result, HeadsResult)
    for head in result.heads:
        out.print(f"{head.revision} (head)  {head.message}")
    if result.multiple:
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
    for number, step in enumerate(result.steps, 1):
        out.print(f"  {number}. {step.direction} {step.revision}  {step.message}")
        for finding in step.findings:
            out.print(
                f"     [yellow]{finding.get('code')} {finding.get('severity')}:"
                f" {finding.get('message')}[/]"
            )
        for check in step.preflight:
            out.print(f"     preflight: {check.get('message')}")
    for loss in result.data_loss:
        out.print(f"[red]data loss: {loss.get('message')}[/]")
    if any(step.sql is not None or step.sql_error for step in result.steps):
        for step in result.steps:
            out.print(f"\n-- ===== {step.direction} {step.revision}: {step.message} =====")
            if step.sql_error:
                out.print(f"-- cannot render offline: {step.sql_error}")
            elif step.sql:
                out.print(step.sql, markup=False)


def _run(result: Any, out: Console) -> None:
    assert isinstance(result, RunResult)
    verb = "would apply" if result.dry_run else "applied"
    if not result.applied:
        out.print(f"nothing to do: {result.environment} is at {_revs(result.to_revisions)}")
        return
    out.print(
        f"[green]{verb} {len(result.applied)} revision(s)[/] ({result.direction}) in"
        f" {result.elapsed_s:.2f}s; {result.environment} is now at {_revs(result.to_revisions)}"
    )
    if result.backup:
        out.print(f"backup: {result.backup.get('id')} {result.backup.get('path', '')}")
    for warning in result.warnings:
        out.print(f"[yellow]warning: {warning}[/]")


def _created(result: Any, out: Console) -> None:
    assert isinstance(result, RevisionCreated)
    out.print(f"created {result.revision} ({result.message}) at {result.path}")
    for finding in result.findings:
        out.print(
            f"  [yellow]{finding.get('code')} {finding.get('severity')}:"
            f" {finding.get('message')}[/]"
        )


def _stamp(result: Any, out: Console) -> None:
    assert isinstance(result, StampResult)
    forced = f" (forced: {result.reason})" if result.forced else ""
    out.print(
        f"stamped {result.environment}: {_revs(result.before)} → {_revs(result.after)}{forced}"
    )


_RENDERERS = {
    CurrentResult: _current,
    Status: _status,
    HistoryResult: _history,
    HeadsResult: _heads,
    Plan: _plan,
    RunResult: _run,
    RevisionCreated: _created,
    StampResult: _stamp,
}
