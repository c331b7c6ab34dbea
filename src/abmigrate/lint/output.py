"""Renderings of lint findings: human, JSON (a list), SARIF 2.1.0 and GitHub annotations."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.lint.model import Finding

if TYPE_CHECKING:
    from rich.console import Console

    from abmigrate.lint.engine import LintResult

__all__ = ["render_github", "render_human", "render_json", "render_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _relative(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path


def render_json(result: LintResult) -> str:
    records = []
    for finding in result.findings:
        record = finding.to_record()
        record["path"] = _relative(finding.path)
        record["location"] = (
            f"{record['path']}:{finding.line}"
            if record["path"] and finding.line
            else record["path"]
        )
        records.append(record)
    return json.dumps(records, indent=2)


def render_human(result: LintResult, out: Console) -> None:
    from rich.markup import escape

    for finding in result.findings:
        colour = "red" if finding.severity == "error" else "yellow"
        where = _relative(finding.path) or "(project)"
        if finding.line:
            where += f":{finding.line}"
        out.print(
            f"{escape(where)}: [{colour}]{finding.code} {finding.severity}[/]"
            f" {escape('[' + (finding.revision or '-') + ']')} {escape(finding.message)}"
            + (" [red](destructive)[/]" if finding.destructive else "")
        )
        out.print(f"    hint: {escape(finding.hint)}")
    errors = len(result.errors)
    warnings = len(result.findings) - errors
    summary = f"{errors} error(s), {warnings} warning(s) in {len(result.revisions)} revision(s)"
    if result.suppressed:
        summary += f"; {len(result.suppressed)} suppressed"
    out.print(f"[{'red' if errors else 'green'}]{summary}[/]")


def render_github(result: LintResult) -> str:
    lines = []
    for finding in result.findings:
        properties = [f"title={finding.code} {finding.name}"]
        path = _relative(finding.path)
        if path:
            properties.insert(0, f"file={path}")
            if finding.line:
                properties.insert(1, f"line={finding.line}")
        level = "error" if finding.severity == "error" else "warning"
        message = f"{finding.message} (hint: {finding.hint})"
        lines.append(f"::{level} {_escape_property(','.join(properties))}::{_escape(message)}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # commas separate properties, so only the values' own characters are escaped
    return _escape(text).replace(":", "%3A")


def render_sarif(result: LintResult, rules: list[Any]) -> str:
    from importlib.metadata import version

    used = sorted({finding.code for finding in result.findings})
    by_code = {rule.code: rule for rule in rules}
    index = {code: position for position, code in enumerate(used)}
    sarif_rules = [
        {
            "id": code,
            "name": by_code[code].name,
            "shortDescription": {"text": by_code[code].name},
            "help": {"text": by_code[code].hint},
            "defaultConfiguration": {
                "level": "error" if by_code[code].severity == "error" else "warning"
            },
            "properties": {"destructive": by_code[code].destructive},
        }
        for code in used
        if code in by_code
    ]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "abmigrate",
                        "version": version("abmigrate"),
                        "rules": sarif_rules,
                    }
                },
                "results": [_sarif_result(finding, index) for finding in result.findings],
            }
        ],
    }
    return json.dumps(document, indent=2)


def _sarif_result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": index[finding.code],
        "level": "error" if finding.severity == "error" else "warning",
        "message": {"text": f"{finding.message} (hint: {finding.hint})"},
        "properties": {"revision": finding.revision, "destructive": finding.destructive},
    }
    path = _relative(finding.path)
    if path:
        location: dict[str, Any] = {"artifactLocation": {"uri": Path(path).as_posix()}}
        if finding.line:
            location["region"] = {"startLine": finding.line}
        record["locations"] = [{"physicalLocation": location}]
    return record
