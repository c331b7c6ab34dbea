"""Expected fingerprints: the schema each revision produces, by replaying the migrations.

The project's migrations run, one revision at a time, through its own ``env.py`` into a
scratch database of the target's dialect (:mod:`abmigrate.db.scratch`: a fresh PostgreSQL
database on the same server, a scratch MariaDB schema, a temporary SQLite file), and the
schema is fingerprinted after each one. On a branched graph a revision whose ancestors are
not exactly what the replay has applied so far is replayed on its own.

Results are cached on disk, keyed by the content of the revision's script and of all its
ancestors (plus env.py, the dialect and the server's version), so a second call replays
nothing and an edited script invalidates only itself and its descendants. The cache lives in
``.abmigrate/fingerprints/`` next to the configuration file (or alembic.ini), or in
``$ABMIGRATE_CACHE_DIR``.

Usage::

    from abmigrate.state.replay import expected_fingerprints, expected_fingerprint
    replayed = expected_fingerprints(workspace)       # every revision
    replayed.fingerprints["4f2a9c1e7b30"].digest
    replayed.errors                                   # {revision: "why it failed to replay"}
    expected_fingerprint(workspace, "head")           # one revision (raises if it cannot)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.db.dialects import dialect_for
from abmigrate.db.fingerprint import FORMAT_VERSION, Fingerprint, fingerprint_url
from abmigrate.errors import AbmigrateError, MigrationFailed, RevisionError
from abmigrate.isolation import run_scratch_job

if TYPE_CHECKING:
    from abmigrate.bridge.project import AlembicProject
    from abmigrate.bridge.types import MigrationContext, Script
    from abmigrate.config.baseline import Baseline
    from abmigrate.config.workspace import Workspace
    from abmigrate.db.scratch import ScratchDatabase
    from abmigrate.isolation import Emit

__all__ = [
    "Replayed",
    "base_fingerprint",
    "cache_dir",
    "expected_fingerprint",
    "expected_fingerprints",
    "expected_state_fingerprint",
    "isolated_scratch",
    "replayed_state",
    "resolve_revision",
    "state_key",
]

BASE = "base"

ReplayProgress = Callable[[str], None]


@dataclass
class Replayed:
    """Expected fingerprints per revision and replay failures. "base" is the schema before
    the first revision: empty, or the project's declared baseline (:mod:`abmigrate.config.baseline`)."""

    dialect: str
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    replayed: list[str] = field(default_factory=list)  # migration steps run this time
    computed: list[str] = field(default_factory=list)  # fingerprints not found in the cache
    cached: int = 0


@contextlib.contextmanager
def isolated_scratch(
    url: str, label: str, baseline: Baseline | None = None
) -> Iterator[ScratchDatabase]:
    """A scratch database next to ``url`` that every ``env.py`` run inside the block uses;
    with ``baseline``, it starts (and restarts) at the project's baseline instead of empty.

    The scratch URL goes to ``sqlalchemy.url`` (by the caller's AlembicProject), to
    ``$DATABASE_URL`` and to every environment variable that names ``url``'s database, which
    some env.py files read instead; an env.py that still reaches another database is refused
    before anything runs (:class:`abmigrate.bridge.env_run.WrongDatabase`).
    """
    from abmigrate.bridge.env_run import pointing_env_at
    from abmigrate.db.scratch import scratch_database

    prepare = baseline.apply if baseline is not None else None
    with (
        scratch_database(url, label=label, prepare=prepare) as scratch,
        pointing_env_at(scratch.url, url),
    ):
        yield scratch


def cache_dir(workspace: Workspace) -> Path:
    override = os.environ.get("ABMIGRATE_CACHE_DIR")
    if override:
        return Path(override)
    settings = workspace.settings
    anchor = settings.config_path.parent if settings.config_path else settings.alembic_ini.parent
    return anchor / ".abmigrate" / "fingerprints"


def expected_fingerprint(workspace: Workspace, revision: str) -> Fingerprint:
    """The schema the migrations produce at ``revision`` (an id, prefix, ``head`` or ``base``)."""
    resolved = resolve_revision(workspace, revision)
    if resolved == BASE:
        return base_fingerprint(workspace)
    replayed = expected_fingerprints(workspace, [resolved])
    if resolved in replayed.errors:
        raise MigrationFailed(
            f"cannot replay the migrations up to {resolved}: {replayed.errors[resolved]}",
            hint=_replay_hint(workspace),
            revision=resolved,
        )
    return replayed.fingerprints[resolved]


def _replay_hint(workspace: Workspace) -> str:
    from abmigrate.config.baseline import BASELINE_ENV

    baseline = workspace.settings.baseline
    if baseline is not None:
        return f"the migrations fail on a database at the declared {baseline.describe()}"
    return (
        "the migrations fail on an empty database: fix them, or, if the history starts from"
        " tables made outside it (metadata.create_all, an older tool), declare how with"
        f" baseline = 'package.module:Base.metadata' in [tool.abmigrate] (or ${BASELINE_ENV})"
    )


def base_fingerprint(workspace: Workspace) -> Fingerprint:
    """The schema before the first revision: empty, or the declared baseline's (built once
    on a scratch database, then cached like the revisions' fingerprints)."""
    dialect = _dialect_name(workspace.url)
    baseline = workspace.settings.baseline
    if baseline is None:
        return Fingerprint(dialect, {})
    key = hashlib.sha256(f"base:{_environment_key(workspace)}".encode()).hexdigest()
    path = cache_dir(workspace) / dialect / f"{key}.json"
    cached = _read_cache(path)
    if cached is not None:
        return cached
    with isolated_scratch(workspace.url, "baseline", baseline) as scratch:
        fingerprint = fingerprint_url(scratch.url, schema=workspace.project.version_table.schema)
    _write_cache(path, fingerprint)
    return fingerprint


def expected_state_fingerprint(workspace: Workspace, heads: list[str]) -> Fingerprint:
    """The schema when exactly ``heads`` (and their ancestors) are applied: several rows of
    ``alembic_version``, as after upgrading two branches that are not merged yet."""
    resolved = sorted({resolve_revision(workspace, head) for head in heads} - {BASE})
    if len(resolved) <= 1:
        return expected_fingerprint(workspace, resolved[0] if resolved else BASE)
    cached = _read_cache(_state_path(workspace, state_key(workspace, resolved)))
    if cached is not None:
        return cached
    with replayed_state(workspace, resolved) as replayed:
        return replayed.fingerprint


def state_key(workspace: Workspace, heads: list[str]) -> str:
    """The cache key of the schema when exactly ``heads`` are applied: the revision's own
    key for one head (content of its script and of every ancestor, env.py, dialect, server
    version), a digest of the heads' keys for several."""
    resolved = sorted({resolve_revision(workspace, head) for head in heads} - {BASE})
    environment_key = _environment_key(workspace)
    if not resolved:
        return hashlib.sha256(f"{environment_key}:base".encode()).hexdigest()
    keys = _merkle_keys(list(reversed(workspace.project.revisions())), environment_key)
    if len(resolved) == 1:
        return keys[resolved[0]]
    return hashlib.sha256("+".join(keys[head] for head in resolved).encode()).hexdigest()


def _state_path(workspace: Workspace, key: str) -> Path:
    return cache_dir(workspace) / _dialect_name(workspace.url) / f"{key}.json"


@dataclass
class ReplayedState:
    """A scratch database the revisions were replayed into, up to a state (see
    :func:`replayed_state`), and its fingerprint."""

    url: str
    fingerprint: Fingerprint


@contextlib.contextmanager
def replayed_state(workspace: Workspace, heads: list[str]) -> Iterator[ReplayedState]:
    """A scratch database upgraded from empty to exactly ``heads``, kept open for the
    block (to compare something else with it, such as the models); its fingerprint is
    cached on the way, where :func:`expected_state_fingerprint` looks for it.

    Raises :class:`MigrationFailed` when a revision fails on the empty database.
    """
    resolved = sorted({resolve_revision(workspace, head) for head in heads} - {BASE})
    key = state_key(workspace, resolved)
    result = Replayed(_dialect_name(workspace.url))
    with isolated_scratch(workspace.url, "replay", workspace.settings.baseline) as scratch:
        fingerprint = _replay_to(workspace, scratch, resolved, result)
        if fingerprint is None:
            failed = next((head for head in resolved if head in result.errors), resolved[0])
            raise MigrationFailed(
                f"cannot replay the migrations up to {', '.join(resolved)}:"
                f" {result.errors.get(failed, 'an ancestor failed to replay')}",
                hint=_replay_hint(workspace),
                revision=failed,
            )
        _write_cache(_state_path(workspace, key), fingerprint)
        yield ReplayedState(scratch.url, fingerprint)


def expected_fingerprints(
    workspace: Workspace,
    revisions: Iterable[str] | None = None,
    *,
    progress: ReplayProgress | None = None,
) -> Replayed:
    """Expected fingerprints for ``revisions`` (default: all), from the cache or a replay."""
    project = workspace.project
    scripts = list(reversed(project.revisions()))  # oldest first
    by_id = {script.revision: script for script in scripts}
    wanted = list(by_id) if revisions is None else [r for r in revisions if r != BASE]
    for revision in wanted:
        if revision not in by_id:
            raise RevisionError(f"unknown revision {revision!r}")
    environment_key = _environment_key(workspace)
    keys = _merkle_keys(scripts, environment_key)
    folder = cache_dir(workspace) / _dialect_name(workspace.url)
    result = Replayed(_dialect_name(workspace.url))
    result.fingerprints[BASE] = base_fingerprint(workspace)
    missing = []
    for revision in wanted:
        cached = _read_cache(folder / f"{keys[revision]}.json")
        if cached is None:
            missing.append(revision)
        else:
            result.fingerprints[revision] = cached
            result.cached += 1
    if missing:
        needed = _ancestry(by_id, missing)
        _replay(workspace, scripts, needed, keys, folder, result, progress)
    for revision in list(result.fingerprints):
        if revision != BASE and revision not in wanted:
            del result.fingerprints[revision]
    return result


# --------------------------------------------------------------------------- keys & cache


def _dialect_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name()


def _environment_key(workspace: Workspace) -> str:
    """What besides the scripts decides the replayed schema: dialect, server version, env.py."""
    from abmigrate.db.database import connect

    url = workspace.url
    dialect = _dialect_name(url)
    if dialect_for(dialect).file_based:
        import sqlite3

        version = sqlite3.sqlite_version
    else:
        with connect(url) as connection:
            info = connection.dialect.server_version_info or ()
            version = ".".join(str(part) for part in info)
    env_py = Path(workspace.project.script.dir) / "env.py"
    env_hash = hashlib.sha256(env_py.read_bytes()).hexdigest() if env_py.is_file() else ""
    x_args = ",".join(workspace.project.x_args)
    baseline = workspace.settings.baseline
    # Every replay starts from the baseline: another baseline, other fingerprints (no
    # baseline keeps the keys of before, so existing caches stay valid).
    start = f":baseline:{baseline.identity()}" if baseline is not None else ""
    # "tenant-schema": fingerprints of the schema env.py works in (cached ones from before
    # read the default schema only).
    return f"{FORMAT_VERSION}:tenant-schema:{dialect}:{version}:{env_hash}:{x_args}{start}"


def _merkle_keys(scripts: list[Script], environment_key: str) -> dict[str, str]:
    # A revision's key covers its own file and, through its parents' keys, all its ancestors.
    keys: dict[str, str] = {}
    for script in scripts:  # oldest first: parents come before children
        digest = hashlib.sha256(environment_key.encode())
        digest.update(script.revision.encode())
        digest.update(Path(script.path).read_bytes())
        for parent in sorted(script._normalized_down_revisions):
            digest.update(keys.get(parent, f"dangling:{parent}").encode())
        keys[script.revision] = digest.hexdigest()
    return keys


def _read_cache(path: Path) -> Fingerprint | None:
    try:
        return Fingerprint.from_record(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, fingerprint: Fingerprint) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_text(json.dumps(fingerprint.to_record(), sort_keys=True))
        partial.replace(path)
    except OSError:
        pass  # a read-only checkout only loses the cache, never the answer


def _ancestry(by_id: dict[str, Script], revisions: Iterable[str]) -> set[str]:
    found: set[str] = set()
    pending = list(revisions)
    while pending:
        revision = pending.pop()
        if revision in found or revision not in by_id:
            continue
        found.add(revision)
        pending.extend(by_id[revision]._normalized_down_revisions)
    return found


# --------------------------------------------------------------------------- replaying


def _replay(
    workspace: Workspace,
    scripts: list[Script],
    needed: set[str],
    keys: dict[str, str],
    folder: Path,
    result: Replayed,
    progress: ReplayProgress | None,
) -> None:
    by_id = {script.revision: script for script in scripts}
    order = [script.revision for script in scripts if script.revision in needed]
    pending = [revision for revision in order if revision not in result.fingerprints]

    def take(revision: str, fingerprint: Fingerprint) -> None:
        result.fingerprints[revision] = fingerprint
        result.computed.append(revision)
        _write_cache(folder / f"{keys[revision]}.json", fingerprint)
        if progress:
            progress(revision)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "fingerprint":
            take(str(data["revision"]), Fingerprint.from_record(data["fingerprint"]))

    # One pass in topological order records every revision whose ancestry is exactly what
    # has been applied so far; on a branched graph the others are replayed on their own.
    with isolated_scratch(workspace.url, "replay", workspace.settings.baseline) as scratch:
        outcome = run_scratch_job(
            "replay_pass",
            {"order": order, "pending": pending},
            project=workspace.project,
            scratch=scratch,
            on_event=on_event,
        )
    result.replayed.extend(outcome["replayed"])
    result.errors.update(outcome["errors"])
    for revision in pending:
        if revision in result.fingerprints or revision in result.errors:
            continue
        if any(parent in result.errors for parent in _ancestry(by_id, [revision]) - {revision}):
            result.errors[revision] = "an ancestor failed to replay"
            continue
        with isolated_scratch(workspace.url, "replay", workspace.settings.baseline) as scratch:
            fingerprint = _replay_to(workspace, scratch, [revision], result)
        if fingerprint is not None:
            take(revision, fingerprint)


def _replay_to(
    workspace: Workspace, scratch: ScratchDatabase, revisions: list[str], result: Replayed
) -> Fingerprint | None:
    """Upgrade the empty ``scratch`` database to each of ``revisions`` in turn (several:
    unmerged heads) and fingerprint it; None when one fails (``result.errors`` says why)."""
    outcome = run_scratch_job(
        "replay_to",
        {"revisions": revisions},
        project=workspace.project,
        scratch=scratch,
    )
    result.replayed.extend(outcome["replayed"])
    result.errors.update(outcome["errors"])
    if outcome["fingerprint"] is None:
        return None
    return Fingerprint.from_record(outcome["fingerprint"])


def replay_pass_job(
    project: AlembicProject, scratch: ScratchDatabase, params: dict[str, Any], emit: Emit
) -> dict[str, Any]:
    """Replay ``order`` on the empty ``scratch`` database in one run of env.py, emitting the
    fingerprint of each revision of ``pending`` whose ancestry is exactly what was applied."""
    order: list[str] = params["order"]
    pending = set(params["pending"])
    on_scratch = project.for_url(scratch.url)
    by_id = {script.revision: script for script in on_scratch.revisions()}
    applied: set[str] = set()
    walking: list[str] = []
    outcome = Replayed(scratch.dialect)

    def stepper(heads: Any, context: MigrationContext) -> Iterator[Any]:
        # One env.py run for the whole pass, as `alembic upgrade head` runs it: a later
        # revision may rely on what the run remembers (an enum an earlier one created).
        for revision in order:
            walking[:] = [revision]
            yield from on_scratch.upgrade_steps(revision, sorted(_heads_of(by_id, applied)))
            outcome.replayed.append(revision)
            applied.add(revision)
            walking.clear()
            if revision in pending and _ancestry(by_id, [revision]) == applied:
                fingerprint = _fingerprint_scratch(on_scratch, context)
                emit("fingerprint", {"revision": revision, "fingerprint": fingerprint.to_record()})

    try:
        on_scratch.run_stepper(stepper)
    except Exception as exc:
        if not walking:
            raise
        _replay_failed(walking[0], exc, outcome)
    return {"replayed": outcome.replayed, "errors": outcome.errors}


def replay_to_job(
    project: AlembicProject, scratch: ScratchDatabase, params: dict[str, Any], emit: Emit
) -> dict[str, Any]:
    """Upgrade the empty ``scratch`` database to each of ``revisions`` in turn, then
    fingerprint it (see :func:`_replay_to`)."""
    on_scratch = project.for_url(scratch.url)
    by_id = {script.revision: script for script in on_scratch.revisions()}
    outcome = Replayed(scratch.dialect)
    current: list[str] = []
    for revision in params["revisions"]:
        if _run_to(on_scratch, revision, current, outcome):
            return {"replayed": outcome.replayed, "errors": outcome.errors, "fingerprint": None}
        current = sorted(_heads_of(by_id, _ancestry(by_id, [*current, revision])))
    fingerprint = _fingerprint_scratch(on_scratch, None)
    return {
        "replayed": outcome.replayed,
        "errors": outcome.errors,
        "fingerprint": fingerprint.to_record(),
    }


def _heads_of(by_id: dict[str, Script], applied: set[str]) -> set[str]:
    parents: set[str] = set()
    for revision in applied:
        parents |= set(by_id[revision]._normalized_down_revisions)
    return applied - parents


def _run_to(project: Any, revision: str, current: list[str], result: Replayed) -> bool:
    """Upgrade the scratch database from ``current`` to ``revision``; True if it failed."""
    from abmigrate.bridge.project import step_revision

    try:
        steps = project.upgrade_steps(revision, current)
        project.run_steps(steps)
    except Exception as exc:
        _replay_failed(revision, exc, result)
        return True
    result.replayed.extend(step_revision(step) for step in steps)
    return False


def _replay_failed(revision: str, exc: Exception, result: Replayed) -> None:
    """Record a revision that failed to replay; env.py reaching another database than the
    scratch one is no replay failure but a refusal of the whole command."""
    from abmigrate.bridge.env_run import WrongDatabase

    if isinstance(exc, WrongDatabase):
        raise exc
    if isinstance(exc, AbmigrateError):
        result.errors[revision] = exc.message
        return
    lines = str(exc).strip().splitlines()
    result.errors[revision] = f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _fingerprint_scratch(project: Any, context: MigrationContext | None) -> Fingerprint:
    """The schema env.py worked in (a tenant's, when it sets one) on the scratch database,
    between two steps of a run (``context``) or after it."""
    from abmigrate.bridge.project import end_lookup_transaction
    from abmigrate.db.fingerprint import fingerprint_connection

    connection = context.connection if context is not None else None
    if context is not None and connection is not None and context._in_external_transaction:
        # env.py began a transaction around the whole run (phoenix): nothing is committed
        # before the run ends, so only the run's own connection sees the revisions so far.
        fingerprint = fingerprint_connection(connection)
        end_lookup_transaction(context)
        return fingerprint
    return fingerprint_url(str(project.url), schema=project.version_table.schema)


def resolve_revision(workspace: Workspace, revision: str) -> str:
    """A full revision id (or ``base``) for an id, a unique prefix, ``head`` or ``base``."""
    if revision == BASE:
        return BASE
    project = workspace.project
    if revision in ("head", "heads"):
        heads = project.heads()
        if len(heads) != 1:
            from abmigrate.errors import GraphError

            raise GraphError(
                f"several head revisions: {', '.join(heads)}; `{revision}` is ambiguous here",
                hint="name one head by its id"
                + (" or by <label>@head" if project.labelled_heads() else ""),
                heads=heads,
            )
        return heads[0]
    return str(project.get(project.resolve_target(revision)).revision)
