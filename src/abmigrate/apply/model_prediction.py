"""Before a run: will the schema at the plan's target match the models?

``plan`` and the pipeline's plan step answer it without touching the target database: the
models are compared with the schema the revisions produce at the target, replayed on a
scratch database (:func:`abmigrate.state.replay.replayed_state`), by the very comparison the
verification after a run makes (:func:`abmigrate.state.drift.compare_to_models`, Alembic's
autogenerate with type and server-default comparison, spellings a database reports
differently set aside). So what ``plan`` predicts is what ``verify_models`` will find once
the revisions are in, difference for difference.

Autogenerate compares metadata with a live schema, not with a fingerprint, so what is cached
is the comparison itself: in the analysis cache (kind ``models``), keyed by the replayed
state's key (every script up to the target, env.py, dialect, server version; the same key
the replay's fingerprint is cached under) and by the models' DDL. Editing a revision or a
model invalidates it; the replay that refills it also caches the target's fingerprint, so
the verification after the run does not replay again.

A replay costs a scratch database and seconds on a long history, so it runs only when the
caller allows it (``replay=True``: ``plan --models``, and the pipeline in guarded
environments or with ``verify_models = "fail"``); otherwise a prediction that is not cached
says so and how to get it.

The record (``Plan.models``; None for a downgrade or an empty plan):

``status``
    ``match``, ``differ``, ``not_predicted`` (``reason`` says why: the replay failed, or
    it was not allowed and the cache lacks the answer, which sets ``not_cached``),
    ``no_models``, ``off`` (``verify_models = "off"``) or ``not_head`` (the models
    describe the head; the verification does not compare them at another target).
``target``, ``source``, ``differences`` (every one, as the verification words them),
``count``, ``cached``, ``command`` (the command that lists them all).
"""

from __future__ import annotations

import hashlib
import re
import sys
from typing import TYPE_CHECKING, Any

from abmigrate.errors import AbmigrateError

if TYPE_CHECKING:
    from abmigrate.bridge.models import ModelSource
    from abmigrate.config.workspace import Workspace
    from abmigrate.results import Plan

__all__ = ["LIST_COMMAND", "describe_for_people", "predict_models"]

# Lists every predicted difference (from the cache once a prediction was made).
LIST_COMMAND = "abmigrate plan --models --format json"

# Bump when the shape of a cached record changes.
_FORMAT = "1"


def predict_models(workspace: Workspace, plan: Plan, *, replay: bool) -> dict[str, Any] | None:
    """The models against the schema at ``plan``'s target (see the module's docstring)."""
    if plan.direction != "upgrade" or not plan.steps:
        return None
    target = list(plan.target_revisions)
    if workspace.environment.policy.verify_models == "off":
        return _record("off", target, reason='verify_models = "off"')
    if sorted(target) != sorted(workspace.project.heads()):
        return _record(
            "not_head",
            target,
            reason="the models describe the head; the target is not the head",
        )
    memo = _Memo.open(workspace, target, replay=replay)
    remembered = memo.recall() if memo is not None else None
    if remembered is not None:
        return remembered
    loaded_before = set(sys.modules)
    record = _load_and_predict(workspace, target, replay=replay)
    if memo is not None and record["status"] in _SETTLED:
        memo.keep(record, loaded_before)
    return record


def _load_and_predict(workspace: Workspace, target: list[str], *, replay: bool) -> dict[str, Any]:
    from abmigrate.bridge.models import load_models, why_no_models

    try:
        source = load_models(workspace)
    except AbmigrateError as exc:
        return _record("not_predicted", target, reason=f"cannot load the models: {exc.message}")
    if source is None:
        return _record(
            "no_models",
            target,
            reason=f"no models declared ({why_no_models(workspace)} and no `models` is configured)",
        )
    try:
        return _predict(workspace, target, source, replay=replay)
    except AbmigrateError as exc:
        # The replay could not run (a migration fails on an empty database, no scratch
        # database can be created, env.py reaches another database): the plan still stands.
        return _record("not_predicted", target, reason=exc.message, source=source.origin)
    except Exception as exc:
        from abmigrate.db.database import scrub

        lines = str(exc).strip().splitlines()
        reason = scrub(f"{type(exc).__name__}: {lines[0] if lines else ''}", workspace.url)
        return _record("not_predicted", target, reason=reason, source=source.origin)


def _predict(
    workspace: Workspace, target: list[str], source: ModelSource, *, replay: bool
) -> dict[str, Any]:
    from abmigrate.analysis_cache import AnalysisCache
    from abmigrate.state.drift import compare_url_to_models
    from abmigrate.state.replay import replayed_state, state_key

    cache = AnalysisCache.for_workspace(workspace)
    key = cache.key(
        "models", _FORMAT, state_key(workspace, target), models_digest(workspace, source)
    )
    cached = cache.get("models", key)
    if isinstance(cached, dict) and isinstance(cached.get("differences"), list):
        differences = [str(item) for item in cached["differences"]]
        return _compared(target, source, differences, cached=True)
    if not replay:
        record = _record(
            "not_predicted",
            target,
            reason=f"the schema at {', '.join(target)} is not in the cache;"
            " `abmigrate plan --models` replays the revisions on a scratch database"
            " to compare",
            source=source.origin,
        )
        record["not_cached"] = True
        return record
    with replayed_state(workspace, target) as replayed:
        differences = [
            difference.describe()
            for difference in compare_url_to_models(
                replayed.url,
                source.metadata,
                include_object=source.include_object,
                include_name=source.include_name,
            )
        ]
    cache.put("models", key, {"differences": differences})
    cache.flush()
    return _compared(target, source, differences, cached=False)


# Predictions that stay true while the code they came from is unchanged (not a prediction
# that was missing from the cache, nor one that failed).
_SETTLED = ("match", "differ", "no_models")
# Code the memo's key covers already (the analysis cache's code salt: their versions).
_LIBRARIES = frozenset({"abmigrate", "alembic", "sqlalchemy"})


class _Memo:
    """The last prediction, kept with the digest of every source file that loading the
    models ran (the models' modules, env.py's imports, what they import in turn): while
    none of them changed, the prediction is the same, and a warm ``plan`` need not import
    SQLAlchemy, Alembic and the models again to learn it. Keyed by the target, every
    revision file, env.py (and the variables it reads), the configuration's ``models``,
    the URL's dialect and driver, and abmigrate's code and libraries.

    What it cannot see: models whose tables depend on environment variables env.py does
    not name, or on a database server upgraded in place; the verification after a run
    compares the models with the live schema either way."""

    def __init__(self, cache: Any, key: str) -> None:
        self.cache = cache
        self.key = key

    @classmethod
    def open(cls, workspace: Workspace, target: list[str], *, replay: bool) -> _Memo | None:
        from abmigrate.analysis_cache import AnalysisCache

        graph = workspace.project.graph
        cache = AnalysisCache.for_workspace(workspace)
        if graph is None or cache.folder is None:
            return None
        key = cache.key(
            "models-memo",
            _FORMAT,
            workspace.settings.models or "",
            workspace.url.partition("://")[0],  # the dialect and driver, not the database
            ",".join(sorted(target)),
            "replay" if replay else "cache only",
            *(cache.script_key(revision) for revision in graph.revisions.values()),
        )
        return cls(cache, key)

    def recall(self) -> dict[str, Any] | None:
        from abmigrate.analysis_cache import file_digest

        kept = self.cache.get("models-memo", self.key)
        if not isinstance(kept, dict) or not isinstance(kept.get("record"), dict):
            return None
        files = kept.get("files")
        if not isinstance(files, dict) or any(
            file_digest(path) != digest for path, digest in files.items()
        ):
            return None
        return dict(kept["record"])

    def keep(self, record: dict[str, Any], loaded_before: set[str]) -> None:
        from abmigrate.analysis_cache import file_digest

        files: dict[str, str] = {}
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if not path or name.partition(".")[0] in _LIBRARIES:
                continue
            # What loading the models imported, and the project's own modules imported
            # before (a process that had imported them already, such as the Python API).
            if _standard_library(path):
                continue
            if name not in loaded_before or not _installed(path):
                files[path] = file_digest(path)
        self.cache.put("models-memo", self.key, {"record": record, "files": files})
        self.cache.flush()


def _installed(path: str) -> bool:
    """A file of an installed package (not the project's own code)."""
    return "site-packages" in path or "dist-packages" in path or path.startswith(sys.prefix)


def _standard_library(path: str) -> bool:
    return path.startswith(sys.base_prefix) and not _installed(path)


def _compared(
    target: list[str], source: ModelSource, differences: list[str], *, cached: bool
) -> dict[str, Any]:
    record = _record("differ" if differences else "match", target, source=source.origin)
    record.update(differences=differences, count=len(differences), cached=cached)
    if differences:
        record["command"] = LIST_COMMAND
    return record


def _record(
    status: str, target: list[str], *, reason: str | None = None, source: str | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {"status": status, "target": target}
    if reason is not None:
        record["reason"] = reason
    if source is not None:
        record["source"] = source
    return record


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def models_digest(workspace: Workspace, source: ModelSource) -> str:
    """What the models say, as the target's dialect would create them: each table's and
    index's DDL, comments and enum values (a model change that DDL does not show, such as
    a Python-side default, cannot change the comparison either)."""
    from sqlalchemy import Enum
    from sqlalchemy.engine import make_url
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = make_url(workspace.url).get_dialect()()
    digest = hashlib.sha256(source.origin.encode())
    for metadata in source.metadata:
        for table in sorted(metadata.tables.values(), key=lambda t: t.fullname):
            parts = [table.fullname, str(table.comment)]
            try:
                parts.append(str(CreateTable(table).compile(dialect=dialect)))
                parts.extend(
                    str(CreateIndex(index).compile(dialect=dialect))
                    for index in sorted(table.indexes, key=lambda i: str(i.name))
                )
            except Exception:
                # A type this dialect cannot compile: the table's repr still changes with
                # the model (object addresses aside).
                parts.append(_ADDRESS.sub("", repr(table)))
            for column in table.columns:
                parts.append(f"{column.name}:{column.comment}")
                if isinstance(column.type, Enum):
                    parts.append(f"{column.type.name}:{','.join(column.type.enums)}")
            digest.update("\x00".join(parts).encode())
    return digest.hexdigest()


def describe_for_people(difference: str) -> str:
    """A predicted difference worded for the schema the revisions will produce (the
    verification words it for a database that exists)."""
    if difference.startswith("changed "):
        return difference + " (models → revisions)"
    return difference.replace(
        " (in the database only)", " (the revisions create it, the models lack it)"
    ).replace(" (not in the database)", " (in the models, no revision creates it)")
