"""Backups you can trust: taken with each dialect's own tool, checksummed, read back,
restorable, kept under a retention limit, and taken automatically before guarded changes.

``operations.backup_for_pipeline(workspace, reason="pre-upgrade")`` is what
``upgrade``/``downgrade`` call when the environment's policy requires a backup.

Nothing is imported here: `status` reads the newest manifest (``manifest.last_backup``)
without the backup tools, the dialects' modules or SQLAlchemy.
"""
