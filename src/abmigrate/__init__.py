"""abmigrate: safe, observable migrations for SQLAlchemy/Alembic projects.

The public API: open a :class:`Workspace` and call the functions of :mod:`abmigrate.api`;
every function returns a result record from :mod:`abmigrate.results`.
"""

from abmigrate import api
from abmigrate.errors import (
    AbmigrateError,
    ConfigError,
    ConnectionFailed,
    DriftDetected,
    GraphError,
    GuardRefused,
    LintFailed,
    MigrationFailed,
    RevisionError,
)
from abmigrate.settings import Environment, Policy, Settings, load_settings
from abmigrate.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "AbmigrateError",
    "ConfigError",
    "ConnectionFailed",
    "DriftDetected",
    "Environment",
    "GraphError",
    "GuardRefused",
    "LintFailed",
    "MigrationFailed",
    "Policy",
    "RevisionError",
    "Settings",
    "Workspace",
    "__version__",
    "api",
    "load_settings",
]
