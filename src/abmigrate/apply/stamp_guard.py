"""The guard in front of ``stamp``: the live schema must be the revision's schema.

``alembic stamp`` writes ``alembic_version`` on faith. Here the live fingerprint is compared
with the fingerprint the migrations produce at the target revision (replayed in a scratch
database, cached): a difference refuses the stamp with the list of differences. ``--force``
with a reason stamps anyway, and the reason, the differences and who did it are recorded in
the journal (the ``abmigrate_journal`` table and the local log; see :mod:`abmigrate.apply.journal`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from abmigrate.errors import AbmigrateError, GuardRefused
from abmigrate.results import RunRecord

if TYPE_CHECKING:
    from abmigrate.config.workspace import Workspace
    from abmigrate.results import StampResult

__all__ = ["check_stamp", "record_forced_stamp"]

_SHOWN = 20


def check_stamp(workspace: Workspace, revision: str, *, force: bool) -> list[str]:
    """The differences between the live schema and ``revision``'s; refuses unless ``force``."""
    from abmigrate.state.drift import compare_to_revision

    try:
        differences = [d.describe() for d in compare_to_revision(workspace, revision)]
    except AbmigrateError as exc:
        if not force:
            raise GuardRefused(
                f"cannot check that the schema matches {revision}: {exc.message}",
                hint="fix that first, or stamp with --force --reason TEXT",
                reasons=[exc.message],
            ) from None
        return [f"not compared: {exc.message}"]
    if differences and not force:
        shown = differences[:_SHOWN]
        if len(differences) > _SHOWN:
            shown.append(f"… and {len(differences) - _SHOWN} more")
        raise GuardRefused(
            f"refusing to stamp {revision}: the live schema differs from it in"
            f" {len(differences)} place(s)",
            hint="run `abmigrate diagnose` to find the revision the schema matches;"
            " to stamp anyway: --force --reason TEXT",
            reasons=shown,
        )
    return differences


def record_forced_stamp(workspace: Workspace, result: StampResult) -> None:
    """Write a forced stamp to the journal: its table in the database and the local log."""
    from abmigrate.apply.journal import Journal, new_run_id, now_iso
    from abmigrate.db.lock import actor

    moment = now_iso()
    record = RunRecord(
        run_id=new_run_id(),
        direction="stamp",
        environment=result.environment,
        database=result.database,
        started_at=moment,
        finished_at=moment,
        outcome="forced_stamp",
        actor=actor(),
        from_revisions=result.before,
        to_revisions=result.after,
        reason=result.reason,
        differences=result.differences,
    )
    # The journal keeps its own write failures to itself: a done stamp never fails here.
    journal = Journal(workspace)
    journal.start(record)
    journal.finish(record)
