"""Everything abmigrate raises, and the exit code each maps to.

Exception tree::

    AbmigrateError                  exit 2 unless a subclass says otherwise
    ├── ConfigError                 malformed TOML, unknown key, unknown environment, missing variable
    ├── ConnectionFailed            database unreachable, wrong password, missing driver
    ├── RevisionError               unknown revision, ambiguous prefix, bad relative target
    ├── BackupError                 a backup could not be taken, verified or restored     (exit 1)
    ├── GraphError                  heads to merge, dangling parents ... (carries .heads) (exit 1)
    ├── GuardRefused                a safety guard said no (carries .reasons)             (exit 1)
    ├── LintFailed                  error findings (carries .findings)                    (exit 1)
    ├── DriftDetected               schema differs (carries .diffs)                       (exit 1)
    └── MigrationFailed             a revision raised (carries .revision, .incident_path) (exit 1)

Every error carries a one-line ``message`` and an optional ``hint``; the CLI prints both and
never a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_ERROR = 2

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAIL",
    "EXIT_OK",
    "AbmigrateError",
    "BackupError",
    "ConfigError",
    "ConnectionFailed",
    "DriftDetected",
    "GraphError",
    "GuardRefused",
    "LintFailed",
    "MigrationFailed",
    "RevisionError",
]


class AbmigrateError(Exception):
    """Base of every error abmigrate reports to a user."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_record(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


class ConfigError(AbmigrateError):
    """The configuration cannot be used as written."""


class ConnectionFailed(AbmigrateError):
    """The database could not be reached or refused the credentials."""


class RevisionError(AbmigrateError):
    """A revision or target could not be resolved."""


class BackupError(AbmigrateError):
    """A backup could not be taken, verified or restored."""

    exit_code = EXIT_FAIL


class GraphError(AbmigrateError):
    """The revision graph is in a state the command cannot work with."""

    exit_code = EXIT_FAIL

    def __init__(self, message: str, hint: str | None = None, heads: Sequence[str] = ()) -> None:
        super().__init__(message, hint)
        self.heads = list(heads)

    def to_record(self) -> dict[str, Any]:
        return {**super().to_record(), "heads": self.heads}


class GuardRefused(AbmigrateError):
    """A safety guard refused to go on."""

    exit_code = EXIT_FAIL

    def __init__(self, message: str, hint: str | None = None, reasons: Sequence[str] = ()) -> None:
        super().__init__(message, hint)
        self.reasons = list(reasons)

    def to_record(self) -> dict[str, Any]:
        return {**super().to_record(), "reasons": self.reasons}


class LintFailed(AbmigrateError):
    """Lint found error-level findings."""

    exit_code = EXIT_FAIL

    def __init__(self, message: str, hint: str | None = None, findings: Sequence[Any] = ()) -> None:
        super().__init__(message, hint)
        self.findings = list(findings)


class DriftDetected(AbmigrateError):
    """The live schema differs from what was expected."""

    exit_code = EXIT_FAIL

    def __init__(self, message: str, hint: str | None = None, diffs: Sequence[Any] = ()) -> None:
        super().__init__(message, hint)
        self.diffs = list(diffs)


class MigrationFailed(AbmigrateError):
    """A migration script raised; the database stands where ``current`` says."""

    exit_code = EXIT_FAIL

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        revision: str | None = None,
        current: Sequence[str] = (),
        incident_path: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.revision = revision
        self.current = list(current)
        self.incident_path = incident_path

    def to_record(self) -> dict[str, Any]:
        return {
            **super().to_record(),
            "revision": self.revision,
            "current": self.current,
            "incident_path": self.incident_path,
        }
