"""Backups you can trust: taken with each dialect's own tool, checksummed, read back,
restorable, kept under a retention limit, and taken automatically before guarded changes.

``backup_for_pipeline(workspace, reason="pre-upgrade")`` is what ``upgrade``/``downgrade``
call when the environment's policy requires a backup.
"""

from abmigrate.backup.operations import (
    RestoreConfirm,
    backend_for,
    backup_for_pipeline,
    last_backup,
    list_backups,
    restore,
    take_backup,
    verify_backup,
)

__all__ = [
    "RestoreConfirm",
    "backend_for",
    "backup_for_pipeline",
    "last_backup",
    "list_backups",
    "restore",
    "take_backup",
    "verify_backup",
]
