"""Corpus projects: their declarations (corpus/projects/<name>.toml) and virtual environments.

Each project gets its own virtual environment under the cache directory, holding the pinned
PyPI release, its extra requirements and abmigrate itself (``pip install -e`` this checkout),
so the project's env.py imports work for ``alembic`` and ``abmigrate`` alike.
"""

from __future__ import annotations

import configparser
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECTS_DIR = Path(__file__).resolve().parent / "projects"
# `mysql` is MariaDB (SQLAlchemy's and abmigrate's name for the dialect).
DIALECTS = ("postgresql", "sqlite", "mysql")

_KEYS = {
    "name",
    "homepage",
    "version",
    "requirements",
    "dialects",
    "alembic_ini",
    "script_location",
    "version_locations",
    "drivers",
    "ini_url",
    "env",
    "files",
    "prepare",
    "baseline",
    "notes",
    "known_findings",
    "alembic_command",
    "target",
}


class ProjectError(Exception):
    """A project declaration that cannot be used."""


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    requirements: list[str]
    dialects: list[str]
    alembic_ini: str
    homepage: str = ""
    script_location: str | None = None
    # Per dialect: one folder, or several (keystone's, one per release and branch), inside
    # site-packages.
    version_locations: dict[str, str | list[str]] = field(default_factory=dict)
    # The sync driver of the run's PostgreSQL or MariaDB URL (`{url}`, the written ini,
    # abmigrate's --url), for a project whose migrations need another than psycopg (3) or
    # pymysql.
    drivers: dict[str, str] = field(default_factory=dict)
    ini_url: bool = True
    env: dict[str, str] = field(default_factory=dict)
    # Files written into the commands' working directory before anything runs (name ->
    # text): a module there is importable by `prepare` and by abmigrate's `baseline`, as a
    # user's own module in the folder they run abmigrate from would be.
    files: dict[str, str] = field(default_factory=dict)
    prepare: str | None = None
    # abmigrate's `baseline` for this project ($ABMIGRATE_BASELINE of abmigrate's commands):
    # how an empty database reaches the history's first revision, when `prepare` does that.
    baseline: str | None = None
    notes: str = ""
    # Failures of `abmigrate check` that are the project's own (each with `check`, `revision`,
    # `why` and optionally `dialects`): the check step expects exactly these.
    known_findings: list[dict[str, Any]] = field(default_factory=list)
    # How plain alembic's CLI is started (the first item is a program of the venv); the
    # default is the venv's `alembic`. The arguments (-c INI COMMAND ...) follow.
    alembic_command: list[str] = field(default_factory=lambda: ["alembic"])
    # What the project upgrades to: `head`, or `heads` for a history with several heads by
    # design (keystone's expand and contract branches, as `keystone-manage db_sync` does).
    # Plain alembic's and abmigrate's upgrades both go there.
    target: str = "head"

    def expected_findings(self, dialect: str) -> dict[tuple[str, str], str]:
        return {
            (finding["check"], finding["revision"]): finding["why"]
            for finding in self.known_findings
            if dialect in finding.get("dialects", DIALECTS)
        }

    @property
    def distribution(self) -> str:
        """The PyPI distribution the version belongs to (the first requirement's name)."""
        match = re.match(r"[A-Za-z0-9._-]+", self.requirements[0])
        assert match is not None
        return match.group(0)


def load_project(path: Path) -> Project:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    unknown = set(data) - _KEYS
    if unknown:
        raise ProjectError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("name", "version", "requirements", "dialects", "alembic_ini"):
        if key not in data:
            raise ProjectError(f"{path}: missing key {key!r}")
    bad = [dialect for dialect in data["dialects"] if dialect not in DIALECTS]
    if bad:
        raise ProjectError(f"{path}: unknown dialect(s) {bad} (known: {', '.join(DIALECTS)})")
    for name in data.get("files", {}):
        if Path(name).name != name or name.startswith("alembic-"):
            raise ProjectError(
                f"{path}: files: {name!r} is not a plain name (nor may it be alembic-*)"
            )
    bad = [dialect for dialect in data.get("drivers", {}) if dialect not in ("postgresql", "mysql")]
    if bad:
        raise ProjectError(f"{path}: drivers: only postgresql's and mysql's, not {bad}")
    if data.get("target", "head") not in ("head", "heads"):
        raise ProjectError(f"{path}: target is head or heads, not {data['target']!r}")
    for finding in data.get("known_findings", []):
        if set(finding) - {"check", "revision", "why", "dialects"} or "why" not in finding:
            raise ProjectError(f"{path}: a known finding needs check, revision, why: {finding}")
    return Project(**data)


def all_projects() -> list[Project]:
    return [load_project(path) for path in sorted(PROJECTS_DIR.glob("*.toml"))]


@dataclass(frozen=True)
class Venv:
    """A project's virtual environment, ready to run its alembic and abmigrate."""

    path: Path
    site_packages: Path
    versions: dict[str, str]

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)


def _requirements_key(project: Project) -> str:
    digest = hashlib.sha256()
    digest.update("\n".join(project.requirements).encode())
    # abmigrate is installed editable: only its dependencies can change under the venv.
    digest.update((ROOT / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def ensure_venv(project: Project, cache: Path, *, reinstall: bool, log: Path) -> Venv:
    """Create (once) the project's venv and return it; ``log`` receives pip's output."""
    path = cache / "venvs" / f"{project.name}-{project.version}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{path.name}.lock").open("w") as lock:
        # Two runs at once (a test and ./scripts/corpus) must not install into one venv.
        fcntl.flock(lock, fcntl.LOCK_EX)
        _install(project, path, reinstall=reinstall, log=log)
    probe = (
        "import importlib.metadata as m, json, sqlite3, sysconfig\n"
        f"names = {[project.distribution, 'alembic', 'SQLAlchemy', 'abmigrate']!r}\n"
        "versions = {n: m.version(n) for n in names}\n"
        "versions['sqlite'] = sqlite3.sqlite_version\n"
        "print(json.dumps([sysconfig.get_paths()['purelib'], versions]))\n"
    )
    output = subprocess.run(
        [str(path / "bin" / "python"), "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    site_packages, versions = json.loads(output)
    return Venv(path=path, site_packages=Path(site_packages), versions=versions)


def _install(project: Project, path: Path, *, reinstall: bool, log: Path) -> None:
    stamp = path / ".corpus-installed"
    key = _requirements_key(project)
    python = path / "bin" / "python"
    if not reinstall and python.exists() and stamp.exists() and stamp.read_text() == key:
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        if not python.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(path)],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        command = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        command += [*project.requirements, "-e", str(ROOT)]
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise ProjectError(f"pip install failed ({log}): {' / '.join(tail)}")
    stamp.write_text(key)


# Alembic's names for the separator of `version_locations` (path_separator, or the older
# version_path_separator); with neither, Alembic splits on spaces and commas.
_SEPARATORS = {"os": os.pathsep, "space": " ", "newline": "\n", ":": ":", ";": ";", ",": ","}


def _path_separator(parser: configparser.RawConfigParser) -> str:
    for option in ("path_separator", "version_path_separator"):
        if parser.has_option("alembic", option):
            name = parser.get("alembic", option).strip()
            if name not in _SEPARATORS:
                raise ProjectError(f"unknown {option} {name!r} in the shipped alembic.ini")
            return _SEPARATORS[name]
    return " "


def write_alembic_ini(
    project: Project, venv: Venv, dialect: str, url: str | None, destination: Path
) -> Path:
    """Write the alembic.ini the run uses: the project's own, made usable from anywhere.

    ``%(here)s`` is replaced by the shipped ini's folder, ``script_location`` (and the
    dialect's ``version_locations``) become absolute, and ``sqlalchemy.url`` names the run's
    database (or is removed when the project reads its URL elsewhere).
    """
    source = venv.site_packages / project.alembic_ini
    if not source.is_file():
        raise ProjectError(f"{project.name}: no alembic.ini at {source}")
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(source)
    here = str(source.parent)
    for section in parser.sections():
        for key, value in parser.items(section):
            if "%(here)s" in value:
                parser.set(section, key, value.replace("%(here)s", here))
    if project.script_location is not None:
        parser.set("alembic", "script_location", str(venv.site_packages / project.script_location))
    location = project.version_locations.get(dialect)
    if location is not None:
        folders = [location] if isinstance(location, str) else location
        separator = _path_separator(parser)
        parser.set(
            "alembic",
            "version_locations",
            separator.join(str(venv.site_packages / folder) for folder in folders),
        )
    if project.ini_url and url is not None:
        # Alembic's ConfigParser interpolates '%': double it.
        parser.set("alembic", "sqlalchemy.url", url.replace("%", "%%"))
    elif parser.has_option("alembic", "sqlalchemy.url"):
        parser.remove_option("alembic", "sqlalchemy.url")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with destination.open("w") as handle:
        handle.write(f"# written by corpus/harness.py from {source}\n")
        parser.write(handle)
    return destination
