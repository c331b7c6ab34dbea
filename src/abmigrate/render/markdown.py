"""Markdown for pull requests: ``plan``, ``lint`` and ``check`` as a short comment or job
summary (GitHub's flavour), details folded in ``<details>``.

Each renders the record the command's ``--format json`` prints (``to_record()``). Text from
revisions and databases is escaped for table cells and inline HTML; SQL goes in fenced
blocks longer than any backtick run it holds. A comment stays well under GitHub's 65,536
characters: long lists and SQL are cut with a line saying what was left out and how to see it.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_markdown", "lint_markdown", "plan_markdown"]

# GitHub refuses comments over 65,536 characters; leave room for what a workflow adds.
_BUDGET = 50_000
_MAX_ROWS = 50
_MARK = {"error": "❌", "warning": "⚠️"}
_INFO = "\N{INFORMATION SOURCE}\ufe0f"
_NONE = "\N{EN DASH}"


def _cell(text: Any) -> str:
    """Text safe inside a table cell or inline: no row break, no pipe, no HTML."""
    value = "" if text is None else str(text)
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _code(text: Any) -> str:
    value = _cell(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _fenced(text: str, language: str = "") -> str:
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _details(summary: str, body: list[str], *, open_: bool = False) -> list[str]:
    return [
        f"<details{' open' if open_ else ''}><summary>{summary}</summary>",
        "",
        *body,
        "",
        "</details>",
        "",
    ]


def _finding_lines(findings: list[dict[str, Any]]) -> list[str]:
    lines = ["| | Rule | Revision | Finding | Hint |", "|---|---|---|---|---|"]
    for finding in findings[:_MAX_ROWS]:
        mark = _MARK.get(str(finding.get("severity")), _INFO)
        where = _code(finding.get("revision") or "-")
        if finding.get("location"):
            where += f" {_cell(finding['location'])}"
        lines.append(
            f"| {mark} {_cell(finding.get('severity'))} | {_code(finding.get('code'))}"
            f" {_cell(finding.get('rule'))} | {where} | {_cell(finding.get('message'))}"
            f"{' (destructive)' if finding.get('destructive') else ''}"
            f" | {_cell(finding.get('hint'))} |"
        )
    if len(findings) > _MAX_ROWS:
        lines += ["", f"… and {len(findings) - _MAX_ROWS} more (`abmigrate lint` lists them all)."]
    return lines


def _counts(findings: list[dict[str, Any]]) -> str:
    severities = [finding.get("severity") for finding in findings]
    text = f"{_plural(severities.count('error'), 'error')}, "
    text += _plural(severities.count("warning"), "warning")
    infos = len(severities) - severities.count("error") - severities.count("warning")
    return text + (f", {infos} info" if infos else "")


def plan_markdown(plan: dict[str, Any]) -> str:
    """``abmigrate plan --format markdown``."""
    steps = plan.get("steps") or []
    findings = [finding for step in steps for finding in step.get("findings") or []]
    preflight = [check for step in steps for check in step.get("preflight") or []]
    failing = [check for check in preflight if check.get("ok") is False]
    data_loss = plan.get("data_loss") or []
    current = ", ".join(plan.get("current") or []) or "base"
    target = ", ".join(plan.get("target_revisions") or []) or plan.get("target")
    lines = [
        f"### abmigrate plan: {_cell(plan.get('direction'))} {_cell(plan.get('environment'))}"
        f" to {_code(plan.get('target'))}",
        "",
        f"**{_plural(len(steps), 'revision')}** from {_code(current)} to {_code(target)}"
        f" · {_counts(findings)}"
        + (f" · preflight: **{_plural(len(failing), 'conflict')}**" if preflight else "")
        + (f" · data loss: **{_plural(len(data_loss), 'drop')}**" if data_loss else ""),
        "",
    ]
    if not steps:
        return "\n".join([*lines, "Nothing to apply: the database is at the target.", ""])
    table = ["| Revision | Message | Findings |", "|---|---|---|"]
    for step in steps[:_MAX_ROWS]:
        codes = ", ".join(
            _MARK.get(str(finding.get("severity")), _INFO) + " " + str(finding.get("code"))
            for finding in step.get("findings") or []
        )
        table.append(
            f"| {_code(step.get('revision'))} | {_cell(step.get('message'))} | {codes or _NONE} |"
        )
    if len(steps) > _MAX_ROWS:
        table.append(f"| … | {len(steps) - _MAX_ROWS} more | |")
    lines += _details(f"Revisions ({len(steps)})", table, open_=len(steps) <= 10)
    if findings:
        lines += _details(f"Lint findings ({_counts(findings)})", _finding_lines(findings))
    if preflight:
        rows = ["| Revision | Check | Where | Rows | Result |", "|---|---|---|---|---|"]
        for check in preflight[:_MAX_ROWS]:
            where = str(check.get("table") or "") + (
                f".{check['column']}" if check.get("column") else ""
            )
            rows.append(
                f"| {_code(check.get('revision'))} | {_cell(check.get('check'))}"
                f" | {_code(where)} | {_cell(check.get('count'))}"
                f" | {'❌ ' if check.get('ok') is False else ''}{_cell(check.get('message'))} |"
            )
        lines += _details(f"Data preflight ({_plural(len(failing), 'conflict')})", rows)
    if data_loss:
        rows = [f"- {_cell(loss.get('message'))}" for loss in data_loss]
        lines += _details(f"Data loss ({_plural(len(data_loss), 'drop')})", rows, open_=True)
    lines += _sql_details(steps)
    return "\n".join(lines)


def _sql_details(steps: list[dict[str, Any]]) -> list[str]:
    with_sql = [step for step in steps if step.get("sql") or step.get("sql_error")]
    if not with_sql:
        return []
    body: list[str] = []
    used = 0
    shown = 0
    for step in with_sql:
        block = [f"**{_code(step.get('revision'))}** {_cell(step.get('message'))}", ""]
        if step.get("sql_error"):
            block += [f"SQL could not be rendered: {_cell(step['sql_error'])}", ""]
        if step.get("sql"):
            block += [_fenced(str(step["sql"]), "sql"), ""]
        size = sum(len(line) + 1 for line in block)
        if used + size > _BUDGET:
            break
        body += block
        used += size
        shown += 1
    if shown < len(with_sql):
        body.append(
            f"SQL of {_plural(len(with_sql) - shown, 'more revision')} left out to keep this"
            " short: `abmigrate plan --sql` shows it."
        )
    return _details(f"SQL ({_plural(len(with_sql), 'revision')})", body)


def lint_markdown(result: dict[str, Any]) -> str:
    """``abmigrate lint --format markdown``."""
    findings = result.get("findings") or []
    revisions = result.get("revisions") or []
    mark = "❌" if result.get("errors") else ("⚠️" if findings else "✅")
    lines = [
        f"### {mark} abmigrate lint: {_counts(findings)} in {_plural(len(revisions), 'revision')}",
        "",
    ]
    suppressed = result.get("suppressed") or []
    if suppressed:
        lines += [f"{_plural(len(suppressed), 'finding')} suppressed in the files.", ""]
    if findings:
        lines += _details(
            f"Findings ({len(findings)})", _finding_lines(findings), open_=len(findings) <= 5
        )
    return "\n".join(lines)


def check_markdown(report: dict[str, Any]) -> str:
    """``abmigrate check --format markdown``."""
    checks = report.get("checks") or []
    passed = report.get("passed")
    failed = [check for check in checks if check.get("status") == "failed"]
    lines = [
        f"### {'✅' if passed else '❌'} abmigrate check: "
        + ("passed" if passed else f"{_plural(len(failed), 'check')} failed"),
        "",
        "| Check | Result | Summary | Time |",
        "|---|---|---|---|",
    ]
    icon = {"passed": "✅", "failed": "❌", "skipped": "⏭️"}
    for check in checks:
        status = str(check.get("status"))
        lines.append(
            f"| {_cell(check.get('name'))} | {icon.get(status, '')} {_cell(status)}"
            f" | {_cell(check.get('summary'))} | {float(check.get('elapsed_s') or 0):.1f} s |"
        )
    lines.append("")
    used = 0
    for check in failed:
        body: list[str] = []
        for failure in check.get("failures") or []:
            where = _code(failure["revision"]) + " " if failure.get("revision") else ""
            body.append(f"- {where}{_cell(failure.get('message'))}")
            if failure.get("detail"):
                body.append(f"  - {_cell(failure['detail'])}")
            body += [f"  - {_cell(difference)}" for difference in failure.get("differences") or []]
            if failure.get("hint"):
                body.append(f"  - hint: {_cell(failure['hint'])}")
            if failure.get("sql") and used < _BUDGET:
                sql = _fenced(str(failure["sql"]), "sql")
                used += len(sql)
                body += ["", "  " + sql.replace("\n", "\n  "), ""]
        lines += _details(
            f"{_cell(check.get('name'))}: {_plural(len(check.get('failures') or []), 'failure')}",
            body,
        )
    return "\n".join(lines)
