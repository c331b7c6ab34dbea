"""A revision that captures changes made by hand: the way back from "stamped blind".

When a database recorded at head carries objects the migrations never made (a column, an
index, a table added by hand), the fix is a revision that makes them, recorded on that
database without running (its objects already exist) and applied everywhere else.

Alembic's autogenerate writes that revision: the *live* schema, reflected, is the target
metadata, and a scratch database replayed to head is the database it is compared with, so
the operations are exactly "head → live". The file is written like ``alembic revision``
writes one (the project's ``script.py.mako``), as a child of head. The guarded ``stamp``
then proves it: it replays the new revision and accepts only if the result matches the live
schema.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

from abmigrate.db.dialects import dialect_for
from abmigrate.db.fingerprint import diff, excluded_table, fingerprint_url
from abmigrate.errors import GraphError, GuardRefused, RevisionError

if TYPE_CHECKING:
    from abmigrate.config.workspace import Workspace
    from abmigrate.results import RevisionCreated

__all__ = ["write_capture_revision"]

_DIALECT_MODULES = re.compile(r"\b(postgresql|mysql|sqlite|mssql|oracle)\.")


def write_capture_revision(workspace: Workspace, message: str) -> RevisionCreated:
    """Write a revision (child of head) that turns head's schema into the live schema."""
    from sqlalchemy import MetaData
    from sqlalchemy.exc import SAWarning

    from abmigrate.bridge.autogenerate import render_operations, write_revision
    from abmigrate.db.database import connect, read_version_rows
    from abmigrate.state.replay import expected_fingerprint, isolated_scratch

    project = workspace.project
    heads = project.heads()
    if len(heads) != 1:
        if project.labelled_heads():
            raise GraphError(
                f"several heads, one per labelled branch ({', '.join(heads)}): capture"
                " writes a revision after the one head",
                hint='write it on its branch: alembic revision --head <label>@head -m "..."',
                heads=heads,
            )
        raise GraphError(
            f"several heads ({', '.join(heads)}): merge them before capturing changes",
            hint="run `abmigrate merge`",
            heads=heads,
        )
    head = heads[0]
    recorded = read_version_rows(workspace.url, workspace.project.version_table) or []
    if recorded != [head]:
        raise GuardRefused(
            f"capturing hand-made changes needs the database recorded at head ({head});"
            f" it records {', '.join(recorded) or 'nothing'}",
            hint="run `abmigrate diagnose` and follow its recommendation first",
            reasons=[f"recorded: {', '.join(recorded) or 'nothing'}"],
        )
    if not diff(
        expected_fingerprint(workspace, head),
        fingerprint_url(workspace.url, schema=workspace.project.version_table.schema),
    ):
        raise RevisionError(f"nothing to capture: the schema matches {head} exactly")

    live = MetaData()
    with connect(workspace.url) as connection, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        live.reflect(connection, only=lambda name, _: not excluded_table(name))

    dialect = dialect_for(workspace.environment.dialect)
    with isolated_scratch(workspace.url, "capture", workspace.settings.baseline) as scratch:
        replay = project.for_url(scratch.url)
        for step in replay.upgrade_steps(head, []):
            replay.run_steps([step])
        with connect(scratch.url) as connection, warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)
            upgrades, downgrades = render_operations(
                connection,
                live,
                include_name=lambda name, type_, parents: (
                    not (type_ == "table" and name is not None and excluded_table(name))
                ),
                batch=dialect.batch_alter,
            )
    modules = sorted(set(_DIALECT_MODULES.findall(upgrades + downgrades)))
    imports = "\n".join(f"from sqlalchemy.dialects import {module}" for module in modules)
    return write_revision(
        project,
        message,
        head=head,
        upgrades=upgrades,
        downgrades=downgrades,
        imports=imports,
    )
