"""Retention: keep the newest ``keep_backups`` backups per environment.

Two backups are never deleted even beyond the limit: the newest backup that passed a restore
test when none of the kept ones did, and the newest verified backup when none of the kept ones
is verified. Every deletion is logged (``<backup_dir>/<environment>/retention.log``) and
returned to the caller.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from abmigrate.backup.base import FILE_MODE
from abmigrate.backup.manifest import Manifest, now_iso

__all__ = ["apply_retention", "choose_deletions"]


def choose_deletions(manifests: Sequence[Manifest], keep: int) -> list[Manifest]:
    """The backups to delete from ``manifests`` (newest first), keeping ``keep`` of them."""
    kept = list(manifests[:keep])
    candidates = list(manifests[keep:])
    for attribute in ("restore_tested", "verified"):
        if not any(getattr(m, attribute) for m in kept):
            protected = next((m for m in candidates if getattr(m, attribute)), None)
            if protected is not None:
                candidates.remove(protected)
                kept.append(protected)
    return candidates


def apply_retention(env_dir: Path, manifests: Sequence[Manifest], keep: int) -> list[str]:
    """Delete what :func:`choose_deletions` picks; return the deleted ids."""
    deleted: list[str] = []
    for manifest in choose_deletions(manifests, keep):
        if manifest.folder is None:
            continue
        shutil.rmtree(manifest.folder, ignore_errors=True)
        deleted.append(manifest.id)
        _log(
            env_dir,
            {
                "at": now_iso(),
                "event": "deleted",
                "id": manifest.id,
                "created_at": manifest.created_at,
                "revisions": manifest.revisions,
                "reason": f"retention: keep_backups={keep}",
            },
        )
    return deleted


def _log(env_dir: Path, entry: dict[str, object]) -> None:
    path = env_dir / "retention.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    with os.fdopen(fd, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
