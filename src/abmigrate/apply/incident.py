"""Incident reports: on any failure of a run, ``incidents/<timestamp>-<env>.md`` says what
was being done, what failed, where the database stands now, the backup, and the exact
commands to resume or roll back — the migration guide's "Recovery Steps" and "Document the
incident", written for the person on call.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from abmigrate.config.workspace import Workspace
    from abmigrate.results import RunRecord

__all__ = ["cli_prefix", "write_incident"]


def cli_prefix(workspace: Workspace) -> str:
    """``abmigrate [--config …] --env NAME``: how to reach the same database again."""
    settings = workspace.settings
    parts = ["abmigrate"]
    if settings.config_path is not None:
        parts += ["--config", shlex.quote(str(settings.config_path))]
    else:
        parts += ["--alembic-ini", shlex.quote(str(settings.alembic_ini))]
    if settings.url_override is not None:
        # Never the password: the reader puts it back from where it is kept.
        parts += ["--url", shlex.quote(workspace.environment.masked_url)]
    parts += ["--env", shlex.quote(workspace.environment.name)]
    return " ".join(parts)


def _bullet(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items) if items else "- (none)"


def write_incident(
    workspace: Workspace,
    run: RunRecord,
    *,
    error: str,
    failed_revision: str | None,
    current: list[str] | None,
    partial: str,
) -> Path:
    environment = workspace.environment
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = workspace.settings.incident_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}-{environment.name}.md"
    counter = 1
    while path.exists():
        counter += 1
        path = folder / f"{stamp}-{environment.name}-{counter}.md"
    cli = cli_prefix(workspace)
    direction = run.direction
    start = run.from_revisions
    target = run.target or "head"
    where = ", ".join(current) if current else ("unknown" if current is None else "no revision")
    backup = run.backup
    if backup:
        backup_text = (
            f"`{backup.get('id')}` at `{backup.get('path')}` (sha256 {backup.get('sha256')},"
            f" verified: {backup.get('verified')})"
        )
    else:
        backup_text = "none was taken in this run"
    start_text = " ".join(start) if start else "base"

    steps = [
        f"1. Look at the database's state: `{cli} status` (and `{cli} journal` for this run,"
        f" `{run.run_id}`).",
        "2. Read the error above; fix its cause — the migration script, or the data it"
        " tripped over (a `plan --sql` shows what runs).",
    ]
    if partial.startswith("partial"):
        steps.append(
            f"3. The failed revision may have left part of its changes: compare with"
            f" `{cli} diagnose`, undo or finish them by hand, then record the revision the"
            f" schema matches with `{cli} stamp REVISION`."
        )
    verification = run.verification
    if verification is not None and not verification.ok:
        # Every revision went through; what failed is the check afterwards.
        steps[1] = (
            "2. The migration itself completed; the verification failed: "
            + "; ".join(verification.problems)
            + ". Check the application (its health endpoint, its logs) before deciding."
        )
    else:
        steps.append(f"{len(steps) + 1}. Resume: `{cli} {direction} {shlex.quote(target)}`")
    steps += [
        f"{len(steps) + 1}. Or roll back to where this run started:"
        + (
            f" `{cli} downgrade {shlex.quote(start_text)}`"
            if direction == "upgrade"
            else f" `{cli} upgrade {shlex.quote(start_text)}`"
        ),
    ]
    if backup:
        steps.append(
            f"{len(steps) + 1}. Or restore the backup taken before the run:"
            f" `{cli} restore {backup.get('id')}`"
        )
    steps.append(
        f"{len(steps) + 1}. Document what happened and what you did below, and keep this file."
    )

    timeline = [
        f"{step.revision} {step.direction} in {step.elapsed_s}s"
        + (f" after {step.attempts} attempts" if step.attempts > 1 else "")
        for step in run.applied
    ]
    text = f"""# Migration incident: {direction} of {environment.name} failed

| | |
|---|---|
| when | {run.started_at} → {run.finished_at} |
| run id | `{run.run_id}` |
| environment | {environment.name} |
| database | `{environment.masked_url}` ({environment.dialect}) |
| who | {run.actor.get("user")} on {run.actor.get("host")} (pid {run.actor.get("pid")}) |
| versions | {", ".join(f"{k} {v}" for k, v in run.versions.items())} |

## What was being done

`{direction}` from {start_text} to `{target}` ({", ".join(run.planned) or "no steps"}).

Overrides used:
{_bullet([f"{o.get('gate')}: {o.get('reason')}" for o in run.overrides])}

## The error

Failed revision: `{failed_revision or "none (the failure was outside a revision)"}`

```
{error}
```

## Where the database stands now

- It records revision: **{where}**
- {partial}
- Revisions completed in this run:
{_bullet(timeline)}

## Backup

{backup_text}

## Recovery

{chr(10).join(steps)}

## Notes

(what was done to recover, and what to change so it does not happen again)
"""
    path.write_text(text, encoding="utf-8")
    return path
