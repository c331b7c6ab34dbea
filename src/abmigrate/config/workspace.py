"""A workspace: the loaded settings, the chosen environment and its Alembic project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from abmigrate.analysis_cache import folder_for
from abmigrate.bridge.project import AlembicProject
from abmigrate.config.settings import Environment, Policy, Settings, load_settings
from abmigrate.errors import ConfigError

__all__ = ["Workspace"]


@dataclass
class Workspace:
    settings: Settings
    environment: Environment
    project: AlembicProject

    @classmethod
    def open(
        cls,
        *,
        config: Path | None = None,
        alembic_ini: Path | None = None,
        url: str | None = None,
        env: str | None = None,
        cwd: Path | None = None,
        x_args: tuple[str, ...] = (),
        require_url: bool = True,
    ) -> Workspace:
        """The workspace of the configuration found (or named) and the chosen environment.
        ``require_url=False`` is for commands that need no database (lint, listing and
        checking backups): an environment whose URL cannot be resolved (none configured, an
        unset variable) becomes one named like it, with its default policy and no URL,
        instead of an error. An unknown environment name is an error either way."""
        settings = load_settings(config, alembic_ini=alembic_ini, url=url, cwd=cwd)
        try:
            environment = settings.environment(env)
        except ConfigError:
            if require_url:
                raise
            name = settings.environment_name(env)
            environment = Environment(name, "", Policy.default_for(name))
        project = AlembicProject(
            settings.alembic_ini,
            environment.url or None,
            x_args,
            cache_dir=folder_for(settings.config_path or settings.alembic_ini),
            flask_app=settings.flask_app_for(environment.name),
        )
        return cls(settings, environment, project)

    @property
    def url(self) -> str:
        return self.environment.url

    def read_ahead(self, *, journal: bool = False) -> None:
        """Start reading the version table (and, ``journal``, the journal's rows) while the
        command loads the rest: for the console's read-only commands, see
        :mod:`abmigrate.db.prefetch`."""
        from abmigrate.db import prefetch
        from abmigrate.db.database import journal_question, version_rows_question

        table = self.project.version_table
        questions: list[tuple[str, str | None]] = [version_rows_question(table)]
        if journal:
            questions.append(journal_question(table.schema))
        prefetch.start(self.url, questions)

    def journal_schema(self) -> str | None:
        """The schema of the journal table: the version table's (learned as
        :meth:`recorded_revisions` does)."""
        self.recorded_revisions()
        return self.project.version_table.schema

    def recorded_revisions(self) -> list[str] | None:
        """The revisions the database records, in the version table env.py uses.

        The default ``alembic_version`` is read first (no env.py run). When it is missing
        from an existing database, env.py is run once without executing anything
        (``dont_mutate``) to learn where it records revisions instead: a custom
        ``version_table``/``version_table_schema``, or a ``search_path`` it sets.
        """
        from abmigrate.db.database import DEFAULT_VERSION_TABLE, read_version_rows, sqlite_path

        project = self.project
        rows = read_version_rows(self.url, project.version_table)
        if rows is not None or project.facts is not None:
            return rows
        sqlite_file = sqlite_path(self.url)
        if sqlite_file is not None and not sqlite_file.exists():
            return rows
        from abmigrate.bridge.env_run import WrongDatabase  # not before: it imports asyncio

        try:
            project.probe()
        except WrongDatabase:
            raise
        except Exception:
            # An env.py that cannot run here (it wants settings of its own) records, as far
            # as abmigrate can tell, in the default table.
            return rows
        if project.version_table == DEFAULT_VERSION_TABLE:
            return rows
        return read_version_rows(self.url, project.version_table)
