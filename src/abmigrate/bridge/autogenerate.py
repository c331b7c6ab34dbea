"""Alembic's autogenerate, as abmigrate uses it: compare a database with metadata, render the
operations that turn one into the other, write them as a revision.

The callers (:mod:`abmigrate.state.drift`, :mod:`abmigrate.state.capture`) decide what to
compare and what to make of it; Alembic's autogenerate API stays behind these functions.
Alembic is imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from abmigrate.errors import RevisionError

if TYPE_CHECKING:
    from sqlalchemy import Connection, MetaData

    from abmigrate.bridge.project import AlembicProject
    from abmigrate.results import RevisionCreated

__all__ = ["compare_schema", "render_operations", "write_revision"]


def compare_schema(
    connection: Connection,
    metadata_list: list[MetaData],
    *,
    include_name: Callable[..., bool],
    include_object: Callable[..., bool],
) -> list[Any]:
    """Autogenerate's raw differences between the schema behind ``connection`` and
    ``metadata_list`` (types and server defaults compared). Warnings are the caller's."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": include_name,
            "include_object": include_object,
            "target_metadata": metadata_list,
        },
    )
    # Autogenerate accepts a sequence of MetaData, as target_metadata does.
    return compare_metadata(  # type: ignore[no-any-return]
        context,
        metadata_list if len(metadata_list) > 1 else metadata_list[0],  # type: ignore[arg-type]
    )


def render_operations(
    connection: Connection,
    target: MetaData,
    *,
    include_name: Callable[..., bool],
    batch: bool,
) -> tuple[str, str]:
    """The Python code of ``upgrade()`` and ``downgrade()`` that turn the schema behind
    ``connection`` into ``target`` (and back), as ``alembic revision --autogenerate`` writes
    it (``op.batch_alter_table`` blocks with ``batch``)."""
    from alembic.autogenerate import produce_migrations, render_python_code
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "target_metadata": target,
            "include_name": include_name,
        },
    )
    script = produce_migrations(context, target)
    assert script.upgrade_ops is not None and script.downgrade_ops is not None
    upgrades = render_python_code(
        script.upgrade_ops, render_as_batch=batch, migration_context=context
    )
    downgrades = render_python_code(
        script.downgrade_ops, render_as_batch=batch, migration_context=context
    )
    return upgrades, downgrades


def write_revision(
    project: AlembicProject,
    message: str,
    *,
    head: str,
    upgrades: str,
    downgrades: str,
    imports: str,
) -> RevisionCreated:
    """Write a revision file (child of ``head``, a new revision id) with the project's
    ``script.py.mako``, as ``alembic revision`` writes one."""
    from alembic.util import rev_id

    from abmigrate.bridge.plan import message_of
    from abmigrate.bridge.project import _silenced_stdout
    from abmigrate.results import RevisionCreated

    with _silenced_stdout():  # alembic announces "Generating …" on stdout
        created = project.script.generate_revision(
            rev_id(),
            message,
            head=head,
            refresh=True,
            upgrades=upgrades,
            downgrades=downgrades,
            imports=imports,
        )
    project.reload()  # the graph has a new head
    if created is None:  # pragma: no cover - alembic returns the script it wrote
        raise RevisionError("alembic wrote no revision file")
    return RevisionCreated(
        revision=created.revision,
        message=message_of(created.doc),
        path=str(created.path),
        down_revisions=list(created._normalized_down_revisions),
    )
