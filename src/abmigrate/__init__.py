"""abmigrate: safe, observable migrations for SQLAlchemy/Alembic projects.

The public API: open a :class:`Workspace` and call the functions of :mod:`abmigrate.api`;
every function returns a result record from :mod:`abmigrate.results`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from abmigrate import api
    from abmigrate.config.settings import Environment, Policy, Settings, load_settings
    from abmigrate.config.workspace import Workspace

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

# Loaded on first use: `import abmigrate` (which every `abmigrate` command does, --version
# and --help included) must not pay for SQLAlchemy and Alembic before a command needs them.
_LAZY = {
    "api": "abmigrate.api",
    "Environment": "abmigrate.config.settings",
    "Policy": "abmigrate.config.settings",
    "Settings": "abmigrate.config.settings",
    "load_settings": "abmigrate.config.settings",
    "Workspace": "abmigrate.config.workspace",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'abmigrate' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"abmigrate.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
