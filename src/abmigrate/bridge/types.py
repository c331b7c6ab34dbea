"""Alembic's types, for annotations outside the bridge (import them under ``TYPE_CHECKING``):
code elsewhere handles these objects only as the bridge hands them out."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import Script

__all__ = ["MigrationContext", "RevisionStep", "Script"]
