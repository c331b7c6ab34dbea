"""``[tool.abmigrate.lint]``: which rules run, at which severity. Validated strictly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from abmigrate.errors import ConfigError
from abmigrate.lint.model import Severity

__all__ = ["LINT_KEYS", "LintConfig"]

LINT_KEYS = frozenset({"select", "ignore", "severity", "exclude_revisions", "assume_lock_timeout"})


@dataclass(frozen=True)
class LintConfig:
    select: tuple[str, ...] = ()  # codes or code prefixes ("AM1"); empty means all
    ignore: tuple[str, ...] = ()
    severity: Mapping[str, Severity] = field(default_factory=dict)
    exclude_revisions: tuple[str, ...] = ()
    assume_lock_timeout: bool | None = None  # None: decided from the environments

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], known_codes: Sequence[str]) -> LintConfig:
        where = "[tool.abmigrate.lint]"
        for key in raw:
            if key not in LINT_KEYS:
                raise ConfigError(
                    f"{where}: unknown key {key!r}",
                    hint="known keys: " + ", ".join(sorted(LINT_KEYS)),
                )
        select = _codes(raw.get("select", []), f"{where} select", known_codes)
        ignore = _codes(raw.get("ignore", []), f"{where} ignore", known_codes)
        severity_raw = raw.get("severity", {})
        if not isinstance(severity_raw, Mapping):
            raise ConfigError(f'{where} severity: expected a table like {{AM106 = "error"}}')
        severity: dict[str, Severity] = {}
        for code, level in severity_raw.items():
            _codes([code], f"{where} severity", known_codes)
            if level not in ("error", "warning"):
                raise ConfigError(
                    f"{where} severity.{code}: expected 'error' or 'warning', got {level!r}"
                )
            severity[code.upper()] = level
        excluded = raw.get("exclude_revisions", [])
        if not isinstance(excluded, list) or not all(isinstance(r, str) for r in excluded):
            raise ConfigError(f"{where} exclude_revisions: expected a list of revision ids")
        assume = raw.get("assume_lock_timeout")
        if assume is not None and not isinstance(assume, bool):
            raise ConfigError(f"{where} assume_lock_timeout: expected true or false")
        return cls(tuple(select), tuple(ignore), severity, tuple(excluded), assume)

    def enabled(self, code: str) -> bool:
        if any(code.startswith(prefix) for prefix in self.ignore):
            return False
        return not self.select or any(code.startswith(prefix) for prefix in self.select)


def _codes(value: Any, where: str, known: Sequence[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f'{where}: expected a list of rule codes such as ["AM101"]')
    codes = [item.strip().upper() for item in value]
    for code in codes:
        if not any(known_code.startswith(code) for known_code in known):
            raise ConfigError(
                f"{where}: unknown rule code {code!r}",
                hint="valid codes: " + ", ".join(known),
            )
    return codes
