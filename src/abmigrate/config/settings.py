"""Configuration: where the Alembic project is, which environments exist, their policies.

Configuration is read from ``abmigrate.toml`` (top-level keys) or ``[tool.abmigrate]`` in
``pyproject.toml``, found by walking up from the working directory, or from ``--config``.
With no configuration at all, ``--url`` and ``--alembic-ini`` are enough: the environment then
runs under the development policy, as plain ``alembic`` would.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from abmigrate.config.baseline import BASELINE_ENV, Baseline, parse_baseline
from abmigrate.db.url import mask_url
from abmigrate.errors import ConfigError

__all__ = [
    "Environment",
    "Policy",
    "Settings",
    "load_settings",
    "mask_url",
    "parse_duration_ms",
    "policy_of",
]

CONFIG_FILENAMES = ("abmigrate.toml", "pyproject.toml")
PROTECTED_ENVIRONMENTS = frozenset({"production", "staging"})

POLICY_KEYS = frozenset(
    {
        "require_backup",
        "require_confirmation",
        "allow_destructive",
        "lock_timeout",
        "statement_timeout",
        "lock_wait",
        "lock_retries",
        "maintenance_window",
        "health_url",
        "health_sql",
        "health_timeout",
        "small_table_rows",
        "verify_models",
        "verify_schema",
    }
)
VERIFY_MODELS = ("off", "warn", "fail")
VERIFY_SCHEMA = ("off", "replay")
ENVIRONMENT_KEYS = frozenset({"url", "url_env", "flask_app"}) | POLICY_KEYS
TOP_LEVEL_KEYS = frozenset(
    {
        "alembic_ini",
        "default_env",
        "backup_dir",
        "keep_backups",
        "incident_dir",
        "journal_log",
        "models",
        "baseline",
        "flask_app",
        "lint",
        "environments",
        "fleets",
    }
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?\s*$")
_DURATION_FACTOR_MS = {"ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000}


def parse_duration_ms(value: str | int | float, *, key: str) -> int:
    """``"2s"`` → 2000, ``"15min"`` → 900000, a bare number means seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration such as '2s' or '15min', got {value!r}")
    if isinstance(value, int | float):
        return int(value * 1000)
    match = _DURATION.match(value)
    if match is None:
        raise ConfigError(
            f"{key}: cannot read duration {value!r}",
            hint="write it like '500ms', '2s', '15min' or '1h'",
        )
    number, unit = match.groups()
    return int(float(number) * _DURATION_FACTOR_MS[unit or "s"])


@dataclass(frozen=True)
class Policy:
    """What an environment demands before and during a migration."""

    require_backup: bool = False
    require_confirmation: bool = False
    allow_destructive: bool = True
    lock_timeout_ms: int | None = None
    statement_timeout_ms: int | None = None
    lock_wait_ms: int = 60_000
    lock_retries: int = 5
    maintenance_window: str | None = None
    health_url: str | None = None
    health_sql: str | None = None
    health_timeout_ms: int = 5_000
    # Lock and rewrite findings on a table with fewer rows than this (or one created earlier
    # in the plan) are downgraded to info when a plan is judged against the live database;
    # 0: only tables created earlier in the plan are (abmigrate.lint.judge).
    small_table_rows: int = 10_000
    # After a run, the models are a separate question from the run's correctness: a
    # difference is a warning ("warn"), fatal ("fail") or not looked at ("off").
    verify_models: str = "warn"
    # "replay": the schema after a run must equal what the revisions produce at the target
    # (replayed on a scratch database, cached); the default of guarded environments.
    verify_schema: str = "off"

    @classmethod
    def default_for(cls, environment_name: str) -> Policy:
        if environment_name in PROTECTED_ENVIRONMENTS:
            return cls(
                require_backup=True,
                require_confirmation=True,
                allow_destructive=False,
                verify_schema="replay",
            )
        return cls()

    def to_record(self) -> dict[str, Any]:
        return {
            "require_backup": self.require_backup,
            "require_confirmation": self.require_confirmation,
            "allow_destructive": self.allow_destructive,
            "lock_timeout_ms": self.lock_timeout_ms,
            "statement_timeout_ms": self.statement_timeout_ms,
            "lock_wait_ms": self.lock_wait_ms,
            "lock_retries": self.lock_retries,
            "maintenance_window": self.maintenance_window,
            "health_url": self.health_url,
            "health_sql": self.health_sql is not None,
            "small_table_rows": self.small_table_rows,
            "verify_models": self.verify_models,
            "verify_schema": self.verify_schema,
        }


@dataclass(frozen=True)
class Environment:
    """A named migration target: a database URL and the policy that guards it."""

    name: str
    url: str
    policy: Policy

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    @property
    def dialect(self) -> str:
        return self.url.split(":", 1)[0].split("+", 1)[0]

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "database": self.masked_url,
            "dialect": self.dialect,
            "policy": self.policy.to_record(),
        }


@dataclass(frozen=True)
class Settings:
    """The loaded configuration, before an environment is chosen."""

    alembic_ini: Path
    config_path: Path | None = None
    default_env: str | None = None
    backup_dir: Path = Path("backups")
    keep_backups: int = 10
    incident_dir: Path = Path("incidents")
    journal_log: Path = Path(".abmigrate/journal.jsonl")
    models: str | None = None
    # How an empty database reaches the history's starting point (None: it is empty).
    baseline: Baseline | None = None
    # The Flask application a Flask-Migrate env.py runs in (FLASK_APP's syntax); an
    # environment's own `flask_app` wins (see flask_app_for).
    flask_app: str | None = None
    lint: Mapping[str, Any] = field(default_factory=dict)
    environments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Fleets of targets (abmigrate.fleet.inventory reads and checks their tables).
    fleets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    url_override: str | None = None

    @property
    def base_dir(self) -> Path:
        return self.config_path.parent if self.config_path else Path.cwd()

    def environment_name(self, name: str | None = None) -> str:
        """The environment chosen: ``name``, ABMIGRATE_ENV, ENVIRONMENT, default_env, or
        development; unknown names are refused where environments are configured."""
        chosen = (
            name
            or os.environ.get("ABMIGRATE_ENV")
            or os.environ.get("ENVIRONMENT")
            or self.default_env
            or "development"
        )
        if self.environments and chosen not in self.environments:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(
                f"unknown environment {chosen!r} (known: {known})",
                hint="pick one with --env, or add [tool.abmigrate.environments."
                f"{chosen}] to the configuration",
            )
        return chosen

    def environment(self, name: str | None = None) -> Environment:
        """Resolve the environment (see :meth:`environment_name`) with its URL and policy."""
        chosen = self.environment_name(name)
        if not self.environments:
            if self.url_override is None:
                raise ConfigError(
                    "no database URL: no environments are configured",
                    hint="pass --url URL, or add [tool.abmigrate.environments.NAME]",
                )
            # Without configuration the policy follows the environment's name, so
            # ENVIRONMENT=production in a shell still gets production's guards.
            return Environment(chosen, self.url_override, Policy.default_for(chosen))
        table = self.environments[chosen]
        url = self.url_override or _environment_url(chosen, table)
        return Environment(chosen, self._anchor_sqlite(url), _policy(chosen, table))

    def flask_app_for(self, environment: str | None = None) -> str | None:
        """The ``flask_app`` of ``environment`` (else the top-level one), its path taken
        from the configuration file's folder; None: env.py's Flask application, if it needs
        one, is found as the ``flask`` command finds it ($FLASK_APP, wsgi.py, app.py)."""
        spec: Any = self.flask_app
        if environment is not None and environment in self.environments:
            spec = self.environments[environment].get("flask_app", spec)
        if not spec:
            return None
        if self.config_path is None:
            return str(spec)
        from abmigrate.bridge.flask_app import resolve_flask_app

        return resolve_flask_app(str(spec), self.base_dir)

    def _anchor_sqlite(self, url: str) -> str:
        # A relative SQLite path is taken from the configuration file's folder, so the same
        # command finds the same database whichever sub-folder it is run from.
        prefix = "sqlite:///"
        if not url.startswith(prefix) or self.config_path is None:
            return url
        path = url[len(prefix) :]
        if not path or path.startswith("/") or path.startswith(":memory:") or "?" in path:
            return url
        return prefix + str(self.base_dir / path)


def _environment_url(name: str, table: Mapping[str, Any]) -> str:
    if "url" in table:
        return str(table["url"])
    variable = table.get("url_env")
    if variable is None:
        raise ConfigError(
            f"environment {name!r} has neither 'url' nor 'url_env'",
            hint="set url = '...' or url_env = 'NAME_OF_VARIABLE'",
        )
    value = os.environ.get(str(variable))
    if not value:
        raise ConfigError(
            f"environment {name!r} takes its URL from ${variable}, which is not set",
            hint=f"export {variable}=postgresql+psycopg://user@host/db, or pass --url",
        )
    return value


def _policy(name: str, table: Mapping[str, Any]) -> Policy:
    policy = Policy.default_for(name)
    changes: dict[str, Any] = {}
    for key in ("require_backup", "require_confirmation", "allow_destructive"):
        if key in table:
            changes[key] = _boolean(name, key, table[key])
    for key in ("lock_timeout", "statement_timeout", "lock_wait", "health_timeout"):
        if key in table:
            changes[f"{key}_ms"] = parse_duration_ms(table[key], key=f"{name}.{key}")
    if "lock_retries" in table:
        changes["lock_retries"] = int(table["lock_retries"])
    if "small_table_rows" in table:
        changes["small_table_rows"] = _row_count(
            name, "small_table_rows", table["small_table_rows"]
        )
    for key in ("maintenance_window", "health_url", "health_sql"):
        if key in table:
            changes[key] = str(table[key])
    for key, choices in (("verify_models", VERIFY_MODELS), ("verify_schema", VERIFY_SCHEMA)):
        if key in table:
            if table[key] not in choices:
                raise ConfigError(
                    f"{name}.{key}: expected one of {', '.join(map(repr, choices))},"
                    f" got {table[key]!r}",
                    hint=f'e.g. {key} = "{choices[-1]}"',
                )
            changes[key] = str(table[key])
    return replace(policy, **changes)


def policy_of(name: str, table: Mapping[str, Any]) -> Policy:
    """The policy an environment's table declares (its URL aside)."""
    return _policy(name, table)


def _row_count(env: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(
            f"{env}.{key}: expected a number of rows (0 or more), got {value!r}",
            hint=f"e.g. {key} = 10000 (0: judge only tables the plan creates)",
        )
    return value


def _boolean(env: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{env}.{key}: expected true or false, got {value!r}")
    return value


def _find_config(start: Path) -> tuple[Path, dict[str, Any]] | None:
    for folder in (start, *start.parents):
        for filename in CONFIG_FILENAMES:
            candidate = folder / filename
            if not candidate.is_file():
                continue
            data = _read_toml(candidate)
            if filename == "abmigrate.toml":
                return candidate, data
            section = data.get("tool", {}).get("abmigrate")
            if section is not None:
                return candidate, section
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: malformed TOML: {exc}", hint="fix the syntax at the line shown"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _validate(path: Path, data: Mapping[str, Any]) -> None:
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(
                f"{path}: unknown key {key!r}",
                hint="known keys: " + ", ".join(sorted(TOP_LEVEL_KEYS)),
            )
    environments = data.get("environments", {})
    if not isinstance(environments, dict):
        raise ConfigError(f"{path}: 'environments' must be a table of tables")
    for env_name, table in environments.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: environments.{env_name} must be a table")
        for key in table:
            if key not in ENVIRONMENT_KEYS:
                raise ConfigError(
                    f"{path}: unknown key {key!r} in environments.{env_name}",
                    hint="known keys: " + ", ".join(sorted(ENVIRONMENT_KEYS)),
                )
        # Validate durations and booleans now, so a typo fails before any connection.
        _policy(env_name, table)
    for where, table in [("", data), *((f"environments.{n}.", t) for n, t in environments.items())]:
        spec = table.get("flask_app")
        if spec is not None and (not isinstance(spec, str) or not spec.strip()):
            raise ConfigError(
                f"{path}: {where}flask_app must name a Flask application, got {spec!r}",
                hint='flask_app = "module:create_app()" (the syntax of FLASK_APP)',
            )
    fleets = data.get("fleets", {})
    if not isinstance(fleets, dict) or not all(isinstance(t, dict) for t in fleets.values()):
        raise ConfigError(f"{path}: 'fleets' must be a table of tables ([fleets.NAME])")


def _baseline(
    path: Path | None, data: Mapping[str, Any] | None, alembic_ini: Path
) -> Baseline | None:
    """``$ABMIGRATE_BASELINE`` (relative to the working directory), else the file's
    ``baseline`` (relative to the file's folder); module paths also resolve from the
    alembic.ini's folder, as ``models`` does."""
    variable = os.environ.get(BASELINE_ENV)
    if variable:
        return parse_baseline(
            variable, origin=f"${BASELINE_ENV}", folders=[Path.cwd(), alembic_ini.parent]
        )
    if path is None or data is None or "baseline" not in data:
        return None
    return parse_baseline(
        data["baseline"], origin=str(path), folders=[path.parent, alembic_ini.parent]
    )


def load_settings(
    config: Path | None = None,
    *,
    alembic_ini: Path | None = None,
    url: str | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Load the configuration; command-line options override the file."""
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"configuration file not found: {config}")
        raw = _read_toml(config)
        if config.name == "pyproject.toml":
            raw = raw.get("tool", {}).get("abmigrate", {})
        found: tuple[Path, dict[str, Any]] | None = (config.resolve(), raw)
    else:
        found = _find_config((cwd or Path.cwd()).resolve())

    if found is None:
        if alembic_ini is None:
            alembic_ini = Path("alembic.ini")
        if not alembic_ini.is_file():
            raise ConfigError(
                f"no abmigrate configuration and no {alembic_ini} here",
                hint="add [tool.abmigrate] to pyproject.toml, or pass --alembic-ini PATH --url URL",
            )
        ini = alembic_ini.resolve()
        return Settings(alembic_ini=ini, baseline=_baseline(None, None, ini), url_override=url)

    path, data = found
    _validate(path, data)
    base = path.parent
    ini = alembic_ini or (base / str(data.get("alembic_ini", "alembic.ini")))
    if not ini.is_file():
        raise ConfigError(
            f"alembic.ini not found: {ini}",
            hint=f"set alembic_ini in {path.name}, or pass --alembic-ini",
        )
    keep = data.get("keep_backups", 10)
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise ConfigError(f"{path}: keep_backups must be a positive integer, got {keep!r}")
    return Settings(
        alembic_ini=ini.resolve(),
        config_path=path,
        default_env=data.get("default_env"),
        backup_dir=base / str(data.get("backup_dir", "backups")),
        keep_backups=keep,
        incident_dir=base / str(data.get("incident_dir", "incidents")),
        journal_log=base / str(data.get("journal_log", ".abmigrate/journal.jsonl")),
        models=data.get("models"),
        baseline=_baseline(path, data, ini.resolve()),
        flask_app=data.get("flask_app"),
        lint=data.get("lint", {}),
        environments=data.get("environments", {}),
        fleets=data.get("fleets", {}),
        url_override=url,
    )
