"""Finding the project's model metadata (what ``drift --against models`` compares with).

Two sources, in order:

1. ``models = "app.models:Base.metadata"`` in the configuration: a module path and an
   attribute path, imported with the configuration's folder and the alembic.ini's folder
   put on ``sys.path`` (so ``app`` resolves the way it does for the project itself);
2. otherwise the ``target_metadata`` the project's own ``env.py`` passes to
   ``context.configure``: env.py is run in Alembic's offline mode with no revision to
   render, which connects to nothing, and the options it configured are kept — with them
   its ``include_object``/``include_name`` filters, so drift ignores what autogenerate does.

``load_models(workspace)`` returns a :class:`ModelSource`, or None when neither source
gives metadata.
"""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from abmigrate.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from abmigrate.config.workspace import Workspace

__all__ = [
    "ModelSource",
    "import_attribute",
    "load_models",
    "metadata_from_env_py",
    "why_no_models",
]


@dataclass
class ModelSource:
    """Model metadata, where it came from, and env.py's autogenerate filters (if any)."""

    metadata: list[MetaData]
    origin: str
    include_object: Callable[..., bool] | None = None
    include_name: Callable[..., bool] | None = None


def load_models(workspace: Workspace) -> ModelSource | None:
    """The configured ``models``, else env.py's ``target_metadata``, else None."""
    from sqlalchemy import MetaData

    spec = workspace.settings.models
    env_source = _quiet_env_capture(workspace)
    if spec:
        folders = [workspace.settings.base_dir, workspace.settings.alembic_ini.parent]
        found = import_attribute(spec, folders)
        metadata = _as_metadata_list(found, spec)
        return ModelSource(
            metadata,
            f"models = {spec!r}",
            include_object=env_source.include_object if env_source else None,
            include_name=env_source.include_name if env_source else None,
        )
    if env_source is not None and all(isinstance(m, MetaData) for m in env_source.metadata):
        return env_source
    return None


def import_attribute(spec: str, folders: Sequence[Any], *, key: str = "models") -> Any:
    """The object ``spec`` ('package.module:attribute.path') names, imported with
    ``folders`` on sys.path; ``key`` is the configuration key named in errors."""
    module_name, _, attribute_path = spec.partition(":")
    if not module_name or not attribute_path:
        raise ConfigError(
            f"{key} = {spec!r}: expected 'package.module:attribute'",
            hint=f"e.g. {key} = 'app.models:Base.metadata'",
        )
    for folder in folders:
        entry = str(folder)
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{key} = {spec!r}: cannot import {module_name}: {exc}",
            hint="the module path is taken from the configuration's folder",
        ) from None
    for part in attribute_path.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ConfigError(f"{key} = {spec!r}: {module_name} has no {attribute_path}") from None
    return found


def _as_metadata_list(found: Any, spec: str) -> list[MetaData]:
    from sqlalchemy import MetaData

    if isinstance(found, MetaData):
        return [found]
    if isinstance(getattr(found, "metadata", None), MetaData):
        return [found.metadata]  # a declarative Base
    if isinstance(found, list | tuple) and all(isinstance(m, MetaData) for m in found):
        return list(found)
    raise ConfigError(
        f"models = {spec!r} is a {type(found).__name__}, not SQLAlchemy MetaData",
        hint="point it at the MetaData, e.g. 'app.models:Base.metadata'",
    )


def _quiet_env_capture(workspace: Workspace) -> ModelSource | None:
    try:
        return metadata_from_env_py(workspace)
    except Exception:
        # An env.py that cannot run offline just gives no metadata; `models` in the
        # configuration is the documented way out.
        return None


def why_no_models(workspace: Workspace) -> str:
    """Why env.py gave no models, for a message that also says no `models` is configured.

    An env.py that runs only on a connection handed over in ``config.attributes`` (dagster's
    raises without one) does set a target_metadata: saying it sets none would send its
    user looking in the wrong place. Called only when :func:`load_models` found nothing.
    """
    try:
        metadata_from_env_py(workspace)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return (
            "env.py could not be run offline to read its target_metadata"
            f" ({type(exc).__name__}: {first})"
        )
    return "env.py sets no target_metadata"


def metadata_from_env_py(workspace: Workspace) -> ModelSource | None:
    """Run env.py offline with nothing to render and keep what it passed to configure()."""
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy import MetaData

    project = workspace.project
    config = project.config
    saved_buffer = config.output_buffer
    config.output_buffer = io.StringIO()
    # env.py files that honour it leave logging alone (ABParts does); others re-read
    # alembic.ini's logging, which project.env_run() keeps below warnings.
    added_flag = "configure_logger" not in config.attributes
    if added_flag:
        config.attributes["configure_logger"] = False
    try:
        with (
            project.env_run(offline=True),
            EnvironmentContext(
                config,
                project.script,
                fn=lambda heads, context: [],
                as_sql=True,
                starting_rev=None,
                destination_rev=None,
            ) as environment,
        ):
            project.script.run_env()
            options = dict(environment.context_opts)
    finally:
        config.output_buffer = saved_buffer
        if added_flag:
            config.attributes.pop("configure_logger", None)
    target = options.get("target_metadata")
    origin = "env.py target_metadata"
    if target is None and project.needs_flask_app:
        # A Flask-Migrate env.py that configures no target_metadata offline (pgAdmin's):
        # the models are Flask-Migrate's, what its template hands autogenerate.
        from abmigrate.bridge.flask_app import flask_migrate_metadata

        target = flask_migrate_metadata(project.flask_app)
        origin = "Flask-Migrate's db.metadata"
    if target is None:
        return None
    metadata = [target] if isinstance(target, MetaData) else list(target)
    return ModelSource(
        metadata,
        origin,
        include_object=options.get("include_object"),
        include_name=options.get("include_name"),
    )
