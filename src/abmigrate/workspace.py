"""A workspace: the loaded settings, the chosen environment and its Alembic project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from abmigrate.alembic_bridge import AlembicProject
from abmigrate.settings import Environment, Settings, load_settings

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
    ) -> Workspace:
        settings = load_settings(config, alembic_ini=alembic_ini, url=url, cwd=cwd)
        environment = settings.environment(env)
        project = AlembicProject(settings.alembic_ini, environment.url)
        return cls(settings, environment, project)

    @property
    def url(self) -> str:
        return self.environment.url
