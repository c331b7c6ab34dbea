"""A fleet's targets: whole databases or schemas of one database, from the configuration.

``[tool.abmigrate.fleets.NAME]`` names where the targets come from — any of ``urls`` (a
list), ``targets_file`` (one target a line), ``schemas`` (schemas of the environment's
database), ``query`` (SQL run against a directory database, returning ``name`` and ``url``
and/or ``schema`` columns) and ``command`` (a program printing one target a line) — and the
environment whose policy every target inherits. ``--targets FILE`` needs no configuration.

A target line is ``name=VALUE`` or a bare ``VALUE``, where VALUE is a database URL or
``schema:NAME`` (that schema in the environment's database, found by env.py through
``-x tenant=NAME``: the ``schema_arg`` key). Blank lines and ``#`` comments are skipped.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from abmigrate.config.settings import Environment, Policy, Settings, policy_of
from abmigrate.config.workspace import Workspace
from abmigrate.db.database import scrub, sqlite_path
from abmigrate.db.url import mask_url
from abmigrate.errors import ConfigError

__all__ = [
    "Fleet",
    "Target",
    "load_fleet",
    "parse_target_lines",
    "target_workspace",
]

FLEET_KEYS = frozenset(
    {
        "environment",
        "urls",
        "targets_file",
        "schemas",
        "query",
        "query_url_env",
        "command",
        "schema_arg",
        "canary",
        "concurrency",
        "wave_size",
        "failure_budget",
        "continue_on_error",
    }
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SCHEMA_PREFIX = "schema:"


@dataclass(frozen=True)
class Target:
    """One member of a fleet: a database (``url``), or a schema of it (``schema``)."""

    name: str
    url: str
    schema: str | None = None

    @property
    def database(self) -> str:
        return mask_url(self.url)

    @property
    def database_key(self) -> str:
        """Targets sharing this key share a database, and its migration lock."""
        path = sqlite_path(self.url)
        return str(path.resolve()) if path is not None else mask_url(self.url)

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name, "database": self.database, "schema": self.schema}


@dataclass(frozen=True)
class Fleet:
    """The targets and how to roll out over them (the command line overrides these)."""

    name: str
    environment: Environment
    targets: list[Target]
    schema_arg: str = "tenant"
    canary: list[str] = field(default_factory=list)
    concurrency: int = 4
    wave_size: int = 0  # 0: every target after the canaries in one wave
    failure_budget: int = 0  # halt once more than this many targets failed
    continue_on_error: bool = False


def target_workspace(base: Workspace, fleet: Fleet, target: Target) -> Workspace:
    """The workspace of one target: its own database, Alembic project and connection; the
    fleet environment's name and policy; backups and incidents in a folder of its own (the
    retention of one target never deletes another's)."""
    from abmigrate.bridge.project import AlembicProject

    settings = replace(
        base.settings,
        backup_dir=base.settings.backup_dir / target.name,
        incident_dir=base.settings.incident_dir / target.name,
        url_override=target.url,
    )
    environment = replace(fleet.environment, url=target.url)
    x_args = base.project.x_args
    if target.schema is not None:
        x_args = (*x_args, f"{fleet.schema_arg}={target.schema}")
    return Workspace(
        settings,
        environment,
        AlembicProject(settings.alembic_ini, target.url, x_args, flask_app=base.project.flask_app),
    )


def parse_target_lines(
    lines: Iterable[str], *, origin: str, default_url: str | None
) -> list[Target]:
    """Targets from ``name=VALUE`` / ``VALUE`` lines (see the module's docstring)."""
    targets = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        targets.append(_target_of(line, f"{origin}:{number}", default_url))
    return targets


def _target_of(line: str, where: str, default_url: str | None) -> Target:
    name, value = None, line
    head, equals, tail = line.partition("=")
    if equals and "://" not in head and not head.startswith(_SCHEMA_PREFIX):
        name, value = head.strip(), tail.strip()
    if value.startswith(_SCHEMA_PREFIX):
        schema = value[len(_SCHEMA_PREFIX) :].strip()
        if default_url is None:
            raise ConfigError(
                f"{where}: schema {schema!r} needs the environment's database URL",
                hint="configure the environment's url/url_env, or pass --url",
            )
        return _checked(Target(name or schema, default_url, _schema_name(schema, where)), where)
    if "://" not in value:
        raise ConfigError(
            f"{where}: not a database URL or schema:NAME: {scrub(value, value)[:60]!r}",
            hint="one target a line: name=postgresql+psycopg://host/db, a URL, or schema:NAME",
        )
    return _checked(Target(name or _name_from_url(value, where), value), where)


def _schema_name(schema: str, where: str) -> str:
    if not schema.isidentifier():
        raise ConfigError(f"{where}: not a schema name: {schema!r}", hint="e.g. schema:acme")
    return schema


def _name_from_url(url: str, where: str) -> str:
    path = sqlite_path(url)
    if path is not None:
        return path.stem
    database = url.rsplit("/", 1)[-1].split("?", 1)[0]
    if not database:
        raise ConfigError(
            f"{where}: cannot name the target of {mask_url(url)}", hint="write it as name=URL"
        )
    return database


def _checked(target: Target, where: str) -> Target:
    if not _NAME.match(target.name):
        raise ConfigError(
            f"{where}: target name {target.name!r} is not usable",
            hint="letters, digits, '_', '.' and '-' (it names the target's backup folder)",
        )
    return target


def load_fleet(
    settings: Settings,
    name: str | None = None,
    *,
    env: str | None = None,
    targets_file: Path | None = None,
) -> Fleet:
    """The fleet ``name`` of the configuration (the only one when there is one), or the
    one ``targets_file`` lists; its targets inherit the policy of ``env``, else of the
    fleet's ``environment``, else of the environment chosen as for any command."""
    fleets = settings.fleets
    table: Mapping[str, Any] = {}
    if targets_file is None or name is not None:
        name, table = _fleet_table(fleets, name)
        _validate(f"fleets.{name}", table)
    environment = _environment(settings, env or table.get("environment"))
    default_url = environment.url or None
    where = f"fleets.{name}" if name else "--targets"
    targets: list[Target] = []
    if targets_file is not None:
        targets += parse_target_lines(
            _read_lines(targets_file), origin=str(targets_file), default_url=default_url
        )
    else:
        targets += _configured_targets(settings, table, where, default_url)
    _unique(targets, where)
    if not targets:
        raise ConfigError(f"{where}: no targets", hint="list targets, or check the source")
    names = {target.name for target in targets}
    canary = [str(item) for item in table.get("canary", [])]
    unknown = [item for item in canary if item not in names]
    if unknown:
        raise ConfigError(f"{where}.canary names unknown targets: {', '.join(unknown)}")
    return Fleet(
        name=name or "targets",
        environment=environment,
        targets=targets,
        schema_arg=str(table.get("schema_arg", "tenant")),
        canary=canary,
        concurrency=_count(table, "concurrency", 4, where, minimum=1),
        wave_size=_count(table, "wave_size", 0, where),
        failure_budget=_count(table, "failure_budget", 0, where),
        continue_on_error=bool(table.get("continue_on_error", False)),
    )


def _environment(settings: Settings, name: str | None) -> Environment:
    """The environment whose policy the targets inherit. Its URL is needed only for schema
    targets (and a query's directory): a fleet of URLs runs without one."""
    try:
        return settings.environment(name)
    except ConfigError:
        chosen = name or settings.default_env or "development"
        if settings.environments and chosen not in settings.environments:
            raise
        if chosen in settings.environments:
            return Environment(chosen, "", policy_of(chosen, settings.environments[chosen]))
        return Environment(chosen, "", Policy.default_for(chosen))


def _fleet_table(
    fleets: Mapping[str, Mapping[str, Any]], name: str | None
) -> tuple[str, Mapping[str, Any]]:
    if name is None:
        if len(fleets) == 1:
            return next(iter(fleets.items()))
        raise ConfigError(
            "which fleet? "
            + (f"configured: {', '.join(sorted(fleets))}" if fleets else "none is configured"),
            hint="name it with --fleet NAME, or pass --targets FILE (one name=URL a line)",
        )
    if name not in fleets:
        known = ", ".join(sorted(fleets)) or "none configured"
        raise ConfigError(
            f"unknown fleet {name!r} (known: {known})",
            hint=f"add [tool.abmigrate.fleets.{name}], or pass --targets FILE",
        )
    return name, fleets[name]


def _validate(where: str, table: Mapping[str, Any]) -> None:
    """Fail on a typo before any connection: unknown keys, wrong types."""
    for key in table:
        if key not in FLEET_KEYS:
            raise ConfigError(
                f"unknown key {key!r} in {where}",
                hint="known keys: " + ", ".join(sorted(FLEET_KEYS)),
            )
    for key in ("urls", "schemas", "canary"):
        if key in table and not _strings(table[key]):
            raise ConfigError(f"{where}.{key} must be a list of strings")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _count(table: Mapping[str, Any], key: str, default: int, where: str, minimum: int = 0) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where}.{key}: expected a whole number ≥ {minimum}, got {value!r}")
    return value


def _configured_targets(
    settings: Settings, table: Mapping[str, Any], where: str, default_url: str | None
) -> list[Target]:
    targets: list[Target] = []
    targets += parse_target_lines(table.get("urls", []), origin=f"{where}.urls", default_url=None)
    targets += parse_target_lines(
        (_SCHEMA_PREFIX + schema for schema in table.get("schemas", [])),
        origin=f"{where}.schemas",
        default_url=default_url,
    )
    if "targets_file" in table:
        path = settings.base_dir / str(table["targets_file"])
        targets += parse_target_lines(_read_lines(path), origin=str(path), default_url=default_url)
    if "query" in table:
        targets += _query_targets(table, where, default_url)
    if "command" in table:
        targets += _command_targets(settings, table["command"], where, default_url)
    return targets


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the targets file {path}: {exc.strerror}") from None


def _query_targets(table: Mapping[str, Any], where: str, default_url: str | None) -> list[Target]:
    """Rows of the directory database: ``name``, and ``url`` and/or ``schema``."""
    import os

    from sqlalchemy import text

    from abmigrate.db.database import connect

    variable = table.get("query_url_env")
    directory = os.environ.get(str(variable)) if variable else default_url
    if not directory:
        raise ConfigError(
            f"{where}.query: no directory database"
            + (f" (${variable} is not set)" if variable else ""),
            hint="set query_url_env to the variable holding its URL",
        )
    with connect(directory) as connection:
        rows = connection.execute(text(str(table["query"]))).mappings().all()
    targets = []
    for number, row in enumerate(rows, 1):
        url, schema = row.get("url"), row.get("schema")
        if "name" not in row or not (url or schema):
            raise ConfigError(
                f"{where}.query: row {number} lacks a name, or both url and schema",
                hint="SELECT name, url[, schema] ... (or name, schema for schemas of the"
                " environment's database)",
            )
        value = str(url) if url else _SCHEMA_PREFIX + str(schema)
        target = _target_of(f"{row['name']}={value}", f"{where}.query row {number}", default_url)
        if url and schema:
            target = replace(target, schema=_schema_name(str(schema), where))
        targets.append(target)
    return targets


def _command_targets(
    settings: Settings, command: Any, where: str, default_url: str | None
) -> list[Target]:
    argv: Sequence[str] = shlex.split(command) if isinstance(command, str) else command
    if not argv or not _strings(list(argv)):
        raise ConfigError(f"{where}.command: expected a command line or a list of arguments")
    try:
        done = subprocess.run(
            list(argv),
            cwd=settings.base_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{where}.command: cannot run {argv[0]}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ConfigError(f"{where}.command: {argv[0]} exited with {done.returncode}: {last[:200]}")
    return parse_target_lines(
        done.stdout.splitlines(), origin=f"{where}.command", default_url=default_url
    )


def _unique(targets: list[Target], where: str) -> None:
    seen: dict[str, int] = {}
    for target in targets:
        seen[target.name] = seen.get(target.name, 0) + 1
    repeated = sorted(name for name, count in seen.items() if count > 1)
    if repeated:
        raise ConfigError(
            f"{where}: target names repeat: {', '.join(repeated[:10])}",
            hint="give each target its own name (name=URL)",
        )
