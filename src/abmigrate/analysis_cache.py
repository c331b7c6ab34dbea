"""Per-revision analysis cached on disk: nothing is analysed twice.

What abmigrate works out about a revision without a database depends only on files and
versions, so it is stored once and reused until one of its inputs changes:

========== ============================================ =====================================
kind       what                                         keyed by (besides the common keys)
========== ============================================ =====================================
capture    lint: what the revision's ``upgrade()`` does  the PostgreSQL types earlier
           (schema effects, data-preflight checks, the  revisions of the walk created
           tables it creates, fills, renames, drops)    (Alembic's DDL memo)
findings   lint: the findings and suppressions           the schema state earlier revisions
                                                        left, the lint configuration
checks     preflight checks of a ``downgrade()``         the DDL memo, the direction
sql        a plan step's offline SQL (``env.py`` run     every earlier step of the same
           offline)                                     offline run, the starting
                                                        revisions, the dialect, the
                                                        ``[alembic]`` options
locks      the tables a step's SQL locks, and how        the SQL text itself
========== ============================================ =====================================

Common keys: the revision file's bytes (sha256) and path; ``env.py``'s bytes, the values of
the environment variables ``env.py`` names and the ``-x`` arguments; abmigrate's version and
its source files (size and modification time of each, so an edited checkout invalidates
too); the version of Python and the package files of Alembic, SQLAlchemy and pglast (a new
version changes their size or modification time). Modules a revision file
imports are not part of the key: a revision whose output depends on them is re-analysed when
the revision file (or ``env.py``) changes, not when only they do.

What depends on the live database (judging findings by table sizes, data preflight counts,
the guards) is never cached. Records are kept in one JSON file per kind,
``.abmigrate/analysis/<kind>.json`` next to the configuration file (or alembic.ini), or
``$ABMIGRATE_CACHE_DIR/analysis/<kind>.json``: read once per process, written once per
batch (:class:`_Store`), always through a temporary file renamed into place, so a reader
never sees half a file; a read-only checkout only loses the cache. Deleting the folder is
always safe.

``stats`` counts hits, misses and writes per kind in this process.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import os
import re
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from abmigrate.bridge.graph import CachedRevision
    from abmigrate.bridge.project import AlembicProject
    from abmigrate.bridge.types import Script
    from abmigrate.config.workspace import Workspace

__all__ = [
    "AnalysisCache",
    "GraphStore",
    "cache_folder",
    "digest",
    "file_digest",
    "flush",
    "folder_for",
    "forget",
    "remember_digest",
    "stats",
]

# Bump when the shape of a cached record changes.
FORMAT = 1

stats: Counter[str] = Counter()  # "<kind>.hit", "<kind>.miss", "<kind>.write"

_ENV_NAMES = re.compile(
    r"""(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
)


def cache_folder(workspace: Workspace) -> Path:
    """``.abmigrate/analysis`` next to the configuration (or alembic.ini), or
    ``$ABMIGRATE_CACHE_DIR/analysis``."""
    settings = workspace.settings
    return folder_for(settings.config_path or settings.alembic_ini)


def folder_for(config_file: Path) -> Path:
    """:func:`cache_folder` for the configuration file (or alembic.ini) ``config_file``."""
    override = os.environ.get("ABMIGRATE_CACHE_DIR")
    if override:
        return Path(override) / "analysis"
    return config_file.parent / ".abmigrate" / "analysis"


class AnalysisCache:
    """Get and put JSON records by kind and key; ``folder=None`` caches nothing."""

    def __init__(self, folder: Path | None, project: AlembicProject) -> None:
        self.folder = folder
        self.project = project
        self._environment: str | None = None

    @classmethod
    def for_workspace(cls, workspace: Workspace) -> AnalysisCache:
        return cls(cache_folder(workspace), workspace.project)

    # -- keys ------------------------------------------------------------------------

    @property
    def environment(self) -> str:
        """abmigrate and its libraries, env.py (and the variables it names), the -x args."""
        if self._environment is None:
            env_py = Path(self.project.script_dir) / "env.py"
            try:
                source = env_py.read_bytes()
            except OSError:
                source = b""
            names = sorted(set(_ENV_NAMES.findall(source.decode("utf-8", "replace"))))
            variables = [
                f"{name}={hashlib.sha256(os.environ.get(name, '').encode()).hexdigest()}"
                if name in os.environ
                else f"{name} unset"
                for name in names
            ]
            self._environment = _digest(
                code_salt(),
                hashlib.sha256(source).hexdigest(),
                *variables,
                "-x",
                *self.project.x_args,
            )
        return self._environment

    def key(self, *parts: str) -> str:
        """A key covering ``parts``, env.py and abmigrate's code and libraries."""
        return _digest(self.environment, *parts)

    @staticmethod
    def code_key(*parts: str) -> str:
        """A key covering ``parts`` and abmigrate's code and libraries only (for what
        depends on nothing of the project, such as what a SQL text locks)."""
        return _digest(code_salt(), *parts)

    def script_key(self, script: Script | CachedRevision) -> str:
        """The revision file: id, path and content."""
        path = str(script.path or "")
        return _digest(script.revision, path, file_digest(path))

    # -- records ---------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Any | None:
        if self.folder is None:
            return None
        record = _store(self.folder, kind).get(key)
        stats[f"{kind}.{'miss' if record is None else 'hit'}"] += 1
        return record

    def has(self, kind: str, key: str) -> bool:
        """Whether a record is kept under ``key`` (not counted in ``stats``)."""
        return self.folder is not None and _store(self.folder, kind).get(key) is not None

    def put(self, kind: str, key: str, record: Any) -> None:
        """Keep ``record`` (written to disk by :meth:`flush`, or when the process ends)."""
        if self.folder is None:
            return
        try:
            text = json.dumps(record, separators=(",", ":"))
        except (TypeError, ValueError):
            return  # not plain data: not cached
        _store(self.folder, kind).put(key, json.loads(text))
        stats[f"{kind}.write"] += 1

    def flush(self) -> None:
        """Write what :meth:`put` kept to disk (every kind of this cache's folder)."""
        if self.folder is not None:
            flush(self.folder)


class GraphStore:
    """The revision graph's records (:mod:`abmigrate.bridge.graph`): ``graph.json`` (the
    derived graph, where the version files are) and ``graph-files.json`` (what each revision
    file declares, read only when the graph changed), in the same folder and through the
    same store; ``folder=None`` keeps nothing."""

    def __init__(self, folder: Path | None, kind: str = "graph") -> None:
        self.folder = folder
        self.kind = kind

    def get(self, key: str) -> Any | None:
        if self.folder is None:
            return None
        record = _store(self.folder, self.kind).get(key)
        stats[f"graph.{'miss' if record is None else 'hit'}"] += 1
        return record

    def put(self, key: str, record: Any) -> None:
        if self.folder is not None:
            _store(self.folder, self.kind).put(key, record)
            stats["graph.write"] += 1

    def flush(self) -> None:
        if self.folder is not None:
            _store(self.folder, self.kind).flush()

    def clear(self) -> None:
        """Forget what was read (a record of the wrong shape: the file is rewritten)."""
        if self.folder is not None:
            store = _store(self.folder, self.kind)
            store.records, store.used, store.new = {}, set(), {}
            store.rewrite = True


class _Store:
    """Every record of one kind in one JSON file, ``<folder>/<kind>.json``: read once per
    process, written once per batch (creating a file per record costs more, on a cold run,
    than the analysis it saves). Writing re-reads the file and adds this process's records
    to what another process wrote meanwhile, then renames a complete temporary file into
    place: a reader sees the old or the new file, never half of one. The records this
    process used go last and the file keeps at most four times as many others (oldest
    first out), so it stays near the size of the history."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.records: dict[str, Any] | None = None
        self.used: set[str] = set()
        self.new: dict[str, Any] = {}
        # A fleet's threads share the store: one of them reads or writes it at a time.
        self.lock = threading.RLock()
        self.rewrite = False  # the file on disk is not to be merged (it was unusable)

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as file:
                records = json.load(file)
        except (OSError, ValueError):
            return {}
        return records if isinstance(records, dict) else {}

    def get(self, key: str) -> Any | None:
        with self.lock:
            if self.records is None:
                self.records = self._load()
            record = self.records.get(key)
            if record is not None:
                self.used.add(key)
            return record

    def put(self, key: str, record: Any) -> None:
        with self.lock:
            if self.records is None:
                self.records = self._load()
            self.records[key] = self.new[key] = record
            self.used.add(key)

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        if not self.new:
            return
        on_disk = {} if self.rewrite else self._load()
        self.rewrite = False
        on_disk.update(self.new)
        others = [key for key in on_disk if key not in self.used]
        keep = others[max(0, len(others) - max(4 * len(self.used), 1000)) :]
        records = {key: on_disk[key] for key in keep}
        records.update((key, on_disk[key]) for key in on_disk if key in self.used)
        folder = os.path.dirname(self.path)
        partial = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            os.makedirs(folder, exist_ok=True)
            with open(partial, "w", encoding="utf-8") as file:
                # dumps, not dump: only a one-shot encode uses the C encoder (dump streams
                # through the pure-Python one, several times slower on a long history).
                file.write(json.dumps(records, separators=(",", ":")))
            os.replace(partial, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            return  # a read-only checkout only loses the cache
        finally:
            self.new = {}
        self.records = records


_stores: dict[str, _Store] = {}


_stores_lock = threading.Lock()


def _store(folder: Path, kind: str) -> _Store:
    path = os.path.join(folder, f"{kind}.json")
    with _stores_lock:
        found = _stores.get(path)
        if found is None:
            if not _stores:
                atexit.register(flush)
            found = _stores[path] = _Store(path)
        return found


def flush(folder: Path | None = None) -> None:
    """Write the records kept by :meth:`AnalysisCache.put` (of ``folder``; default all)."""
    for path, store in list(_stores.items()):
        if folder is None or os.path.dirname(path) == os.fspath(folder):
            store.flush()


def forget() -> None:
    """Write what is pending, then drop what this process read: the stores and the file
    digests (as a new process would start; for tests)."""
    flush()
    _stores.clear()
    _files.clear()


def digest(*parts: str) -> str:
    """sha256 of ``parts``, each kept apart from the next."""
    return _digest(*parts)


def _digest(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


_files: dict[tuple[str, int, int], str] = {}


def remember_digest(path: str, size: int, mtime_ns: int, digest: str) -> None:
    """What :func:`file_digest` would compute for ``path`` at this size and modification
    time, computed by a caller that read the file anyway (the revision graph)."""
    _files[(path, size, mtime_ns)] = digest


def file_digest(path: str) -> str:
    """sha256 of a file's bytes (remembered per size and modification time in a process)."""
    try:
        status = os.stat(path)
    except OSError:
        return "missing"
    memo = (path, status.st_size, status.st_mtime_ns)
    found = _files.get(memo)
    if found is None:
        try:
            with open(path, "rb") as file:
                found = hashlib.sha256(file.read()).hexdigest()
        except OSError:
            return "missing"
        _files[memo] = found
    return found


@functools.cache
def code_salt() -> str:
    """abmigrate's version and source files, and the libraries that shape an analysis."""
    import importlib.util

    import abmigrate

    parts = [f"format {FORMAT}", abmigrate.__version__, sys.version.split()[0]]
    package = Path(abmigrate.__file__).parent
    for folder, _, names in sorted(os.walk(package)):
        for name in sorted(names):
            if name.endswith(".py"):
                status = os.stat(os.path.join(folder, name))
                relative = os.path.relpath(os.path.join(folder, name), package)
                parts.append(f"{relative}:{status.st_size}:{status.st_mtime_ns}")
    for library in ("alembic", "sqlalchemy", "pglast"):
        # Its package file, not its __version__: importing Alembic and SQLAlchemy would
        # cost a warm `lint` more than everything else it does.
        spec = importlib.util.find_spec(library)
        if spec is not None and spec.origin:
            status = os.stat(spec.origin)
            parts.append(f"{library} {status.st_size}:{status.st_mtime_ns}")
    return _digest(*parts)
