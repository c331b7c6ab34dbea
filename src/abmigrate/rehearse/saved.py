"""The last rehearsal of each environment, kept beside the journal's local log so that
``abmigrate report`` shows it without being handed a file.

``.abmigrate/rehearsals/<environment>.json`` (0600): the rehearsal's record (what
``rehearse --format json`` prints; URLs masked) and when it ran. A report names a rehearsal
that started from other revisions than the database records now as such.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.backup.manifest import write_private_json
from abmigrate.errors import AbmigrateError

if TYPE_CHECKING:
    from abmigrate.config.workspace import Workspace
    from abmigrate.rehearse.rehearsal import Rehearsal

__all__ = ["last_rehearsal", "save_rehearsal"]


def _path(workspace: Workspace) -> Path:
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in workspace.environment.name)
    return workspace.settings.journal_log.parent / "rehearsals" / f"{name}.json"


def save_rehearsal(workspace: Workspace, rehearsal: Rehearsal) -> str | None:
    """Keep ``rehearsal`` as the environment's last; returns a warning when it cannot."""
    path = _path(workspace)
    record = {
        **rehearsal.to_record(),
        "rehearsed_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_json(path, record)
    except (OSError, AbmigrateError) as exc:
        return f"the rehearsal was not kept for `abmigrate report`: {exc}"
    return None


def last_rehearsal(workspace: Workspace) -> dict[str, Any] | None:
    """The environment's last rehearsal record, or None (none kept, or unreadable)."""
    try:
        record = json.loads(_path(workspace).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("steps"), list):
        return None
    return record
