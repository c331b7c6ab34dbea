"""The revision graph, read from the revision files without importing them, and cached.

Alembic learns the graph by importing every revision module (and, with them, Alembic,
SQLAlchemy and whatever each revision imports); on a long history that is most of what
``alembic current`` or ``heads`` costs. Here each file's ``revision``, ``down_revision``,
``branch_labels``, ``depends_on`` and docstring are read from its syntax tree where they are
literals (:func:`declared_in`); a file that computes them is imported the way Alembic imports
it. The graph itself (heads, bases, the order ``alembic history`` walks, each revision's
parents and children as Alembic normalises them, the graph's problems) is then computed once
by Alembic's own :class:`~alembic.script.revision.RevisionMap`, built from those values
without importing a revision, and kept.

Both are kept in the analysis cache's folder (``graph.json``, :mod:`abmigrate.analysis_cache`):

- per file, keyed by its real path, size, modification time and sha256: the declared values
  (not for a file that had to be imported: what it computes may depend on anything);
- per graph, keyed by every file's path and sha256 (in Alembic's load order), the version
  locations and the versions of abmigrate and Alembic: the derived graph.

Where the version locations are is itself kept, keyed by alembic.ini's path and bytes and
the working folder (a relative ``script_location`` is relative to it), so a warm run reads
alembic.ini only to hash it. A graph Alembic cannot build (a parent no script defines, a
cycle) is recorded as broken and callers go through Alembic, which raises what it raises.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate import analysis_cache

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "VERSION_NUM_LENGTH",
    "CachedRevision",
    "GraphProblem",
    "RevisionGraph",
    "alembic_options",
    "declared_in",
    "declared_problems",
    "describe_branches",
    "file_problems",
    "labelled_branches",
    "load_graph",
    "shape_problems",
]

# Bump when the shape of a cached graph record changes.
FORMAT = 1
KIND = "graph"
# alembic_version.version_num is VARCHAR(32): a longer id cannot be stored.
VERSION_NUM_LENGTH = 32
_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")
# Alembic's own patterns for what counts as a revision file (alembic/script/base.py).
_SOURCE_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
# Names whose presence at module level means the four values may be bound indirectly.
_INDIRECT = frozenset({"globals", "vars", "exec", "eval", "setattr", "__getattr__", "__dict__"})


@dataclass(frozen=True)
class GraphProblem:
    code: str
    message: str
    revisions: tuple[str, ...] = ()
    # Where it was found (not part of the record): the revision file, and for a
    # dangling_parent the id it names, so lint and check can word it their own way.
    path: str | None = field(default=None, compare=False)
    parent: str | None = field(default=None, compare=False)

    def to_record(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "revisions": list(self.revisions)}

    def to_cache(self) -> dict[str, Any]:
        return {**self.to_record(), "path": self.path, "parent": self.parent}

    @classmethod
    def from_cache(cls, record: dict[str, Any]) -> GraphProblem:
        return cls(
            record["code"],
            record["message"],
            tuple(record["revisions"]),
            path=record.get("path"),
            parent=record.get("parent"),
        )


@dataclass(frozen=True)
class CachedRevision:
    """One revision as the graph knows it: what its file declares, and its place in the
    graph as Alembic computes it (parents with dependencies, children, head, merge)."""

    revision: str
    down_revisions: tuple[str, ...]  # Alembic's _normalized_down_revisions
    doc: str  # Alembic's Script.doc: the docstring's first paragraph
    path: str
    branch_labels: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()  # depends_on, as written
    nextrev: frozenset[str] = frozenset()
    is_merge_point: bool = False

    @property
    def is_head(self) -> bool:
        return not self.nextrev


@dataclass
class RevisionGraph:
    """The derived graph of a healthy revision map (see :func:`load_graph`)."""

    revisions: dict[str, CachedRevision]  # in Alembic's load order
    heads: tuple[str, ...]
    bases: tuple[str, ...]
    walk: tuple[str, ...]  # newest first, as `alembic history`
    labels: dict[str, str]  # branch label -> its revision
    resolved_dependencies: dict[str, tuple[str, ...]]  # _normalized_resolved_dependencies
    versioned: dict[str, tuple[str, ...]]  # down_revision as written, as a tuple
    problems: list[GraphProblem]  # what graph_problems reports
    declared_problems: list[GraphProblem]
    declared: list[tuple[str, tuple[str, ...], str]]  # (id, parents as written, path)
    script_dir: str = ""  # the script_location folder (env.py's)

    def resolve(self, ident: str) -> str | None:
        """The revision an id, branch label or unique prefix (of four characters or more)
        names, as Alembic's ``get_revision`` finds it; None when none or several."""
        if ident in self.revisions:
            return ident
        if ident in self.labels:
            return self.labels[ident]
        matches = [
            key for key in (*self.revisions, *self.labels) if len(key) > 3 and key.startswith(ident)
        ]
        if len(matches) != 1:
            return None
        return self.labels.get(matches[0], matches[0])

    def ancestors(self, revisions: Iterable[str]) -> set[str]:
        """``revisions`` and every revision below them, dependencies included."""
        seen: set[str] = set()
        todo = list(revisions)
        while todo:
            revision = todo.pop()
            if revision in seen:
                continue
            seen.add(revision)
            todo.extend(self.revisions[revision].down_revisions)
        return seen

    def pending(self, current: Sequence[str]) -> list[str]:
        """The revisions ``alembic upgrade heads`` would apply from ``current``, in the
        order it applies them (Alembic's topological sort, replayed)."""
        needed = self.ancestors(self.heads) - self.ancestors(current)
        return list(reversed(self._topological_sort(needed, self.heads)))

    def _topological_sort(self, todo: set[str], heads: Sequence[str]) -> list[str]:
        # The same walk as alembic.script.revision.RevisionMap._topological_sort, so the
        # order (on branched histories too) is the one Alembic applies.
        todo = set(todo)
        order = {revision: index for index, revision in enumerate(self.revisions)}
        current_heads = sorted({head for head in heads if head in todo}, key=order.__getitem__)
        ancestors_by_index = [self.ancestors([head]) for head in current_heads]
        output: list[str] = []
        index = 0
        while current_heads:
            candidate = current_heads[index]
            for other, ancestors in enumerate(ancestors_by_index):
                if other != index and candidate in ancestors:
                    index = other
                    break
            else:
                if candidate in todo:
                    output.append(candidate)
                    todo.remove(candidate)
                below = [
                    parent
                    for parent in self.revisions[candidate].down_revisions
                    if parent in todo and parent not in current_heads
                ]
                if not below:
                    del current_heads[index]
                    del ancestors_by_index[index]
                    index = max(index - 1, 0)
                elif (
                    not self.resolved_dependencies[candidate]
                    and len(self.versioned[candidate]) == 1
                ):
                    current_heads[index] = below[0]
                    ancestors_by_index[index].discard(candidate)
                else:
                    current_heads[index] = below[0]
                    current_heads.extend(below[1:])
                    ancestors_by_index[index] = self.ancestors([below[0]])
                    ancestors_by_index.extend(self.ancestors([head]) for head in below[1:])
        return output


# -- reading a revision file ------------------------------------------------------------


def declared_in(source: bytes) -> dict[str, Any] | None:
    """``revision``, ``down_revision``, ``branch_labels``, ``depends_on`` and the module
    docstring of a revision file's source, when each is bound once at module level to a
    literal (``branch_labels`` and ``depends_on`` may be absent); None when the file must
    be imported to know them."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    values: dict[str, Any] = {}
    # Statements that bind at most one plain name to a constant (most of a revision file)
    # are read without walking their subtrees: nothing under them can bind or name more.
    walked: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            return None
        simple = _simple_binding(node)
        if simple is None:
            walked.append(node)
        elif isinstance(node, ast.Assign) and simple[0] in _INDIRECT:
            return None  # as the walk below: `vars = "..."` shadows what it looks for
        for bound in _bound_names(node) if simple is None else simple:
            if bound in _NAMES and (bound in values or not _literal_assignment(node)):
                return None
        if isinstance(node, ast.Assign | ast.AnnAssign) and _literal_assignment(node):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            assert isinstance(target, ast.Name)
            if target.id in _NAMES:
                try:
                    value = ast.literal_eval(node.value)  # type: ignore[arg-type]
                except ValueError:
                    return None
                if not _plain_value(value):
                    return None
                values[target.id] = list(value) if isinstance(value, tuple | list) else value
    if "revision" not in values or "down_revision" not in values:
        return None
    if not isinstance(values["revision"], str):
        return None
    for found in ast.walk(ast.Module(body=_module_level(walked), type_ignores=[])):
        if isinstance(found, ast.Name) and found.id in _INDIRECT:
            return None
        if isinstance(found, ast.Attribute) and found.attr in _INDIRECT:
            return None
    values.setdefault("branch_labels", None)
    values.setdefault("depends_on", None)
    values["doc"] = ast.get_docstring(tree, clean=sys.version_info >= (3, 13)) or ""
    return values


def _simple_binding(node: ast.stmt) -> tuple[str, ...] | None:
    """The names a statement binds when it is a docstring, an import, or one plain name
    bound to a constant (or a tuple or list of constants); None for anything else."""
    if isinstance(node, ast.Expr):
        return () if isinstance(node.value, ast.Constant) else None
    if isinstance(node, ast.Import | ast.ImportFrom):
        return tuple((alias.asname or alias.name).split(".")[0] for alias in node.names)
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
        if not isinstance(target, ast.Name):
            return None
        if isinstance(value, ast.Constant) or (
            isinstance(value, ast.Tuple | ast.List)
            and all(isinstance(item, ast.Constant) for item in value.elts)
        ):
            return (target.id,)
    return None


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The module's statements without function and class bodies (which do not run on
    import, so cannot rebind the four names)."""
    kept: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name in _INDIRECT:
                kept.append(node)
            kept.extend(ast.Expr(decorator) for decorator in node.decorator_list)
            continue
        kept.append(node)
    return kept


def _bound_names(node: ast.stmt) -> Iterable[str]:
    """Every name a module-level statement may bind (nested blocks included)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        yield node.name
        return
    if isinstance(node, ast.Import | ast.ImportFrom):
        for alias in node.names:
            yield (alias.asname or alias.name).split(".")[0]
        return
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store | ast.Del):
            yield child.id
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield child.name
        elif isinstance(child, ast.Import | ast.ImportFrom):
            for alias in child.names:
                yield (alias.asname or alias.name).split(".")[0]
        elif isinstance(child, ast.Global | ast.Nonlocal):
            yield from child.names
        elif isinstance(child, ast.MatchAs | ast.MatchStar) and child.name:
            yield child.name


def _literal_assignment(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        return len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.value is not None
    return False


def _plain_value(value: object) -> bool:
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, tuple | list) and all(isinstance(item, str) for item in value)


def _imported(path: str) -> dict[str, Any]:
    """What Alembic reads from a revision file it imports (``Script._from_path``)."""
    from alembic.util import load_python_file

    folder, name = os.path.split(path)
    module = load_python_file(folder, name)
    revision = getattr(module, "revision", None)
    if revision is None:
        legacy = re.match(r"([a-f0-9]+)\.py$", name)
        revision = legacy.group(1) if legacy else None
    doc = module.__doc__ or ""
    return {
        "revision": revision,
        "down_revision": _jsonable(module.down_revision),
        "branch_labels": _jsonable(getattr(module, "branch_labels", None)),
        "depends_on": _jsonable(getattr(module, "depends_on", None)),
        "doc": doc,
    }


def _jsonable(value: object) -> Any:
    return list(value) if isinstance(value, tuple | list | set | frozenset) else value


# -- finding the files ------------------------------------------------------------------


def alembic_options(alembic_ini: Path) -> dict[str, str] | None:
    """The ``[alembic]`` section as Alembic's ``Config.get_section`` gives it (``%(here)s``
    interpolated, the defaults included), read without importing Alembic; None when the
    file cannot be read that way (Alembic then reads it, and says what is wrong)."""
    import configparser

    ini = Path(alembic_ini)
    parser = configparser.ConfigParser({"here": ini.absolute().parent.as_posix()})
    try:
        if not parser.read([ini], encoding="locale") or not parser.has_section("alembic"):
            return None
        options = dict(parser.items("alembic"))
    except (configparser.Error, OSError, UnicodeDecodeError, ValueError):
        return None
    folder = ini.absolute().parent
    if not options.get("script_location") and (folder / "env.py").is_file():
        # `flask db init` writes no script_location: Flask-Migrate uses the ini's folder
        # (as AlembicProject.config does).
        options["script_location"] = str(folder)
    return options


def _locations_from_ini(alembic_ini: Path) -> dict[str, Any] | None:
    """What :func:`_locations` answers, read from alembic.ini the way Alembic's Config reads
    it, without importing Alembic (most of a cold ``history``'s time); None where the ini
    asks for anything Alembic resolves in ways of its own (a package resource, explicit
    ``version_locations``, an unreadable or incomplete file): then Alembic decides."""
    options = alembic_options(alembic_ini)
    if options is None:
        return None
    script_location = options.get("script_location")
    if not script_location or not os.access(script_location, os.F_OK):
        return None
    versions = _version_locations(options) if options.get("version_locations") else []
    if versions is None or any(_is_resource(path) for path in [script_location, *versions]):
        return None
    return {
        "dir": script_location,
        "versions": [
            str(Path(path).absolute()) for path in versions or [f"{script_location}/versions"]
        ],
        # Alembic's boolean options are true only when spelled "true".
        "sourceless": options.get("sourceless") == "true",
        "recursive": options.get("recursive_version_locations") == "true",
    }


_SEPARATORS = {"space": " ", "newline": "\n", "os": os.pathsep, ":": ":", ";": ";"}


def _version_locations(options: dict[str, str]) -> list[str] | None:
    """``version_locations`` split as Alembic's Config splits it; None for a separator
    Alembic would refuse."""
    value = options["version_locations"]
    name = "path_separator" if "path_separator" in options else "version_path_separator"
    if name not in options:
        return re.split(r", *|(?: +)", value)  # Alembic's legacy splitting
    separator = _SEPARATORS.get(options[name])
    if separator is None:
        return None
    return [path.strip() for path in value.split(separator) if path]


def _is_resource(location: str) -> bool:
    # "package:folder": Alembic finds it with importlib.resources.
    return not os.path.isabs(location) and ":" in location


def _locations(config: Config) -> dict[str, Any]:
    """Where Alembic looks for revision files, as ScriptDirectory.from_config decides (its
    warnings, such as a deprecated option, are Alembic's to give when it runs the project)."""
    import warnings

    from alembic.script import ScriptDirectory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        script = ScriptDirectory.from_config(config)
    return {
        "dir": str(script.dir),
        "versions": [str(path) for path in script._version_locations],
        "sourceless": bool(script.sourceless),
        "recursive": bool(script.recursive_version_locations),
    }


def _revision_files(locations: dict[str, Any]) -> list[str]:
    """The real paths of the revision files, in the order Alembic loads them
    (``ScriptDirectory._load_revisions``, ``Script._list_py_dir``); a file loaded twice
    counts once."""
    found: list[str] = []
    seen: set[str] = set()
    for folder in locations["versions"]:
        if not os.path.exists(folder):
            continue
        for root, dirs, files in os.walk(folder, topdown=True):
            if os.path.basename(root).endswith("__pycache__"):
                continue
            real_root = os.path.realpath(root)  # once per folder, not per file
            for name in sorted(files):
                if not _SOURCE_FILE.match(name):
                    continue
                path = os.path.join(real_root, name)
                if os.path.islink(path):
                    path = os.path.realpath(path)
                if path not in seen:
                    seen.add(path)
                    found.append(path)
            if not locations["recursive"]:
                break
            dirs.sort()
    return found


# -- the cache -------------------------------------------------------------------------


def load_graph(
    alembic_ini: Path, folder: Path | None, make_config: Callable[[], Config]
) -> RevisionGraph | None:
    """The revision graph of the project, from the cache where nothing changed, else read
    (and cached); None when Alembic cannot build it (the caller then asks Alembic, which
    raises what it raises) or the project is ``sourceless`` (compiled files only).

    ``make_config`` gives Alembic's Config; it is called only when the version locations
    are not in the cache. A cache file holding records of the wrong shape is ignored and
    written anew."""
    stores = (
        analysis_cache.GraphStore(folder),
        analysis_cache.GraphStore(folder, "graph-files"),
    )
    try:
        return _load(*stores, alembic_ini, make_config)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        for store in stores:
            store.clear()
        return _load(*stores, alembic_ini, make_config)


def _load(
    store: analysis_cache.GraphStore,
    files: analysis_cache.GraphStore,
    alembic_ini: Path,
    make_config: Callable[[], Config],
) -> RevisionGraph | None:
    ini_key = _ini_key(alembic_ini)
    locations = store.get(ini_key) if ini_key else None
    if not isinstance(locations, dict):
        locations = _locations_from_ini(alembic_ini) or _locations(make_config())
        if ini_key:
            store.put(ini_key, locations)
    if locations["sourceless"]:
        return None
    sources = [_read(path) for path in _revision_files(locations)]
    graph_key = analysis_cache.digest(
        "graph",
        str(FORMAT),
        _code_salt(),
        repr(locations["versions"]),
        *(f"{source.path}\0{source.digest}" for source in sources),
    )
    record = store.get(graph_key)
    if not isinstance(record, dict):
        # The graph changed (or was never read): each file's declared values, from the
        # cache for the files that did not change.
        entries = [_file_entry(files, source) for source in sources]
        record = _derive(entries, [source.path for source in sources])
        if not any(entry.get("import") for entry in entries):
            store.put(graph_key, record)
        files.flush()
    store.flush()
    if record.get("broken"):
        return None
    graph = _from_record(record)
    graph.script_dir = locations["dir"]
    return graph


@dataclass(frozen=True)
class _Source:
    path: str
    digest: str  # sha256, or "missing"
    size: int = -1
    mtime_ns: int = -1
    content: bytes = b""


def _read(path: str) -> _Source:
    try:
        status = os.stat(path)
        with open(path, "rb") as file:
            content = file.read()
    except OSError:
        return _Source(path, "missing")
    digest = hashlib.sha256(content).hexdigest()
    # the analysis cache keys each revision by its file's digest too: not read again
    analysis_cache.remember_digest(path, status.st_size, status.st_mtime_ns, digest)
    return _Source(path, digest, status.st_size, status.st_mtime_ns, content)


def _ini_key(alembic_ini: Path) -> str | None:
    path = os.path.realpath(alembic_ini)
    content = analysis_cache.file_digest(path)
    if content == "missing":
        return None
    folder = os.path.dirname(path)
    # alembic.ini may name a relative script_location (relative to the working folder),
    # and pyproject.toml may hold Alembic's options.
    pyproject = analysis_cache.file_digest(os.path.join(folder, "pyproject.toml"))
    return analysis_cache.digest("locations", str(FORMAT), path, content, os.getcwd(), pyproject)


def _file_entry(store: analysis_cache.GraphStore, source: _Source) -> dict[str, Any]:
    """The declared values of one file (keyed by its path, size, modification time and
    sha256)."""
    if source.digest == "missing":
        return {"path": source.path, "unreadable": True}
    key = analysis_cache.digest(
        "file", str(FORMAT), source.path, str(source.size), str(source.mtime_ns), source.digest
    )
    entry = store.get(key)
    if isinstance(entry, dict):
        return entry
    values = declared_in(source.content)
    if values is None:
        # Computed values: imported, as Alembic does, every time (not cached: they may
        # depend on other files or on the environment).
        analysis_cache.stats["graph.import"] += 1
        return {"path": source.path, "import": True}
    entry = {"path": source.path, **values}
    store.put(key, entry)
    return entry


def _code_salt() -> str:
    """abmigrate's version and this module, Alembic's version (by its package file, so
    Alembic is not imported)."""
    import importlib.util

    import abmigrate

    parts = [abmigrate.__version__]
    spec = importlib.util.find_spec("alembic")
    for origin in (__file__, spec.origin if spec else None):
        if origin:
            try:
                status = os.stat(origin)
            except OSError:
                continue
            parts.append(f"{origin}:{status.st_size}:{status.st_mtime_ns}")
    return analysis_cache.digest(*parts)


def _derive(entries: list[dict[str, Any]], paths: list[str]) -> dict[str, Any]:
    """The graph Alembic's RevisionMap computes from the declared values, as a record."""
    declared: list[tuple[dict[str, Any], str]] = []
    for entry, path in zip(entries, paths, strict=True):
        if entry.get("unreadable"):
            return {"broken": True}
        if entry.get("import"):
            try:
                entry = {"path": path, **_imported(path)}
            except Exception:
                return {"broken": True}
            if entry["revision"] is None:
                return {"broken": True}
        declared.append((entry, path))
    derived = _plain_graph(declared) or _alembic_graph(declared)
    if derived is None:
        return {"broken": True}
    revisions_record, heads, bases, walk, labels = derived
    problems = file_problems(
        (item["revision"], item["down"], item["path"]) for item in revisions_record
    )
    problems += shape_problems(
        heads, bases, {item["revision"]: item["labels"] for item in revisions_record}
    )
    declared_rows = [
        (entry["revision"], list(_to_tuple(_as_written(entry["down_revision"]))), path)
        for entry, path in declared
    ]
    return {
        "revisions": revisions_record,
        "heads": heads,
        "bases": bases,
        "walk": walk,
        "labels": labels,
        "problems": [problem.to_cache() for problem in problems],
        "declared_problems": [
            problem.to_cache()
            for problem in declared_problems(
                [(row[0], tuple(row[1]), row[2]) for row in declared_rows]
            )
        ],
        "declared": declared_rows,
    }


# The revisions (as records), heads, bases, walk (newest first) and branch labels.
_Derived = tuple[list[dict[str, Any]], list[str], list[str], list[str], dict[str, str]]
# Characters Alembic refuses in a revision id (alembic.script.revision).
_ILLEGAL_ID = re.compile(r"[@\-+:]")


def _to_tuple(value: Any) -> tuple[Any, ...]:
    # alembic.util.to_tuple with default=(): None is empty, a string is one value.
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, Iterable) else (value,)


def _first_paragraph(entry: dict[str, Any]) -> str:
    # Alembic's Script.doc: the docstring's first paragraph.
    return re.split("\n\n", (entry["doc"] or "").strip())[0]


def _plain_graph(declared: list[tuple[dict[str, Any], str]]) -> _Derived | None:
    """The derived graph of a history without branch labels or ``depends_on``, computed
    here as Alembic's RevisionMap computes it, so a cold read imports neither Alembic nor
    SQLAlchemy. None for anything else (labels, dependencies, a duplicated or malformed id,
    a missing parent, a cycle): Alembic's own map decides those."""
    parents: dict[str, tuple[str, ...]] = {}
    for entry, _ in declared:
        revision = entry["revision"]
        down = _to_tuple(_as_written(entry["down_revision"]))
        if (
            not isinstance(revision, str)
            or not revision
            or _ILLEGAL_ID.search(revision)
            or revision in parents
            or revision in down
            or not all(isinstance(parent, str) for parent in down)
            or _to_tuple(_as_written(entry["branch_labels"]))
            or _to_tuple(_as_written(entry["depends_on"]))
        ):
            return None
        parents[revision] = down
    children: dict[str, set[str]] = {revision: set() for revision in parents}
    for revision, down in parents.items():
        for parent in down:
            if parent not in children:
                return None
            children[parent].add(revision)
    heads = [revision for revision in parents if not children[revision]]
    bases = [revision for revision in parents if not parents[revision]]
    if not _reaches_all(heads, parents) or not _reaches_all(bases, children):
        return None  # a cycle: Alembic's CycleDetected
    records = [
        {
            "revision": revision,
            "down": list(dict.fromkeys(parents[revision])),
            "versioned": list(parents[revision]),
            "resolved": [],
            "labels": [],
            "depends_on": [],
            "nextrev": sorted(children[revision]),
            "merge": len(parents[revision]) > 1,
            "doc": _first_paragraph(entry),
            "path": path,
        }
        for (entry, path), revision in zip(declared, parents, strict=True)
    ]
    walk = _from_record(
        {"revisions": records, "heads": heads, "bases": bases, "walk": [], "labels": {},
         "problems": [], "declared_problems": [], "declared": []}
    )._topological_sort(set(parents), heads)  # fmt: skip
    return records, heads, bases, walk, {}


def _reaches_all(start: list[str], edges: dict[str, Any]) -> bool:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        revision = todo.pop()
        if revision not in seen:
            seen.add(revision)
            todo.extend(edges[revision])
    return len(seen) == len(edges)


def _alembic_graph(declared: list[tuple[dict[str, Any], str]]) -> _Derived | None:
    """The derived graph from Alembic's own RevisionMap; None when it refuses the graph."""
    import warnings

    from alembic.script.revision import Revision, RevisionError, RevisionMap
    from alembic.util import CommandError, to_tuple

    def revisions() -> Iterable[Revision]:
        for entry, _ in declared:
            yield Revision(
                entry["revision"],
                _as_written(entry["down_revision"]),
                branch_labels=to_tuple(_as_written(entry["branch_labels"]), default=()),
                dependencies=to_tuple(_as_written(entry["depends_on"]), default=()),
            )

    revision_map = RevisionMap(revisions)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mapping = revision_map._revision_map
            walk = [
                revision.revision
                for revision in revision_map.iterate_revisions(
                    "heads", "base", inclusive=True, assert_relative_length=False
                )
            ]
    except (RevisionError, CommandError, KeyError, ValueError):
        return None
    paths_of: dict[str, str] = {}
    docs: dict[str, str] = {}
    for entry, path in declared:
        # A duplicated id: Alembic keeps the file loaded last.
        paths_of[entry["revision"]] = path
        docs[entry["revision"]] = _first_paragraph(entry)
    records: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    for key, revision in mapping.items():
        if revision is None:
            continue
        if key != revision.revision:
            labels[str(key)] = revision.revision
            continue
        records.append(
            {
                "revision": revision.revision,
                "down": list(revision._normalized_down_revisions),
                "versioned": list(revision._versioned_down_revisions),
                "resolved": list(revision._normalized_resolved_dependencies),
                "labels": sorted(revision.branch_labels),
                "depends_on": list(to_tuple(revision.dependencies, default=())),
                "nextrev": sorted(revision.nextrev),
                "merge": revision.is_merge_point,
                "doc": docs[revision.revision],
                "path": paths_of[revision.revision],
            }
        )
    return records, list(revision_map.heads), list(revision_map.bases), walk, labels


def _as_written(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _from_record(record: dict[str, Any]) -> RevisionGraph:
    revisions = {
        item["revision"]: CachedRevision(
            revision=item["revision"],
            down_revisions=tuple(item["down"]),
            doc=item["doc"],
            path=item["path"],
            branch_labels=tuple(item["labels"]),
            dependencies=tuple(item["depends_on"]),
            nextrev=frozenset(item["nextrev"]),
            is_merge_point=item["merge"],
        )
        for item in record["revisions"]
    }
    return RevisionGraph(
        revisions=revisions,
        heads=tuple(record["heads"]),
        bases=tuple(record["bases"]),
        walk=tuple(record["walk"]),
        labels=dict(record["labels"]),
        resolved_dependencies={
            item["revision"]: tuple(item["resolved"]) for item in record["revisions"]
        },
        versioned={item["revision"]: tuple(item["versioned"]) for item in record["revisions"]},
        problems=[GraphProblem.from_cache(problem) for problem in record["problems"]],
        declared_problems=[
            GraphProblem.from_cache(problem) for problem in record["declared_problems"]
        ],
        declared=[(row[0], tuple(row[1]), row[2]) for row in record["declared"]],
    )


# -- problems ----------------------------------------------------------------------------


def declared_problems(declared: Sequence[tuple[str, tuple[str, ...], str]]) -> list[GraphProblem]:
    """Ids defined by more than one file (``duplicate_id``), then :func:`file_problems`."""
    paths: dict[str, list[str]] = {}
    for revision, _, path in declared:
        paths.setdefault(revision, []).append(str(path))
    problems = [
        GraphProblem(
            "duplicate_id",
            f"revision {revision} is defined more than once: {', '.join(sorted(found))}",
            (revision,),
            path=sorted(found)[0],
        )
        for revision, found in paths.items()
        if len(found) > 1
    ]
    return problems + file_problems(declared)


def labelled_branches(
    tips: Sequence[str], labels_of: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...]] | None:
    """The branch labels of each of several heads (or roots) when the branches are
    deliberate, else None.

    Several heads (roots) are deliberate when each carries a branch label, as Alembic's
    revision map assigns them (a label declared on a revision applies to its branch), and
    no label is on two of them: Alembic's "Working with Branches" and "multiple bases". An
    accidental second head inside a labelled branch shares that branch's label with the
    other head, so it is not deliberate; nor are unlabelled heads.
    """
    if len(tips) < 2:
        return None
    labels = {tip: tuple(sorted(labels_of.get(tip, ()))) for tip in tips}
    seen: set[str] = set()
    for tip_labels in labels.values():
        if not tip_labels or seen & set(tip_labels):
            return None
        seen.update(tip_labels)
    return labels


def describe_branches(branches: Mapping[str, Sequence[str]]) -> str:
    """``expand 742c857f1dfb, contract c88cdce8f248``: each labelled tip after its labels."""
    return ", ".join(f"{'/'.join(labels)} {tip}" for tip, labels in branches.items())


def shape_problems(
    heads: Sequence[str],
    bases: Sequence[str],
    labels_of: Mapping[str, Sequence[str]] | None = None,
) -> list[GraphProblem]:
    """Several heads (``multiple_heads``), several roots (``multiple_roots``), unless each
    is in its own labelled branch (:func:`labelled_branches`; ``labels_of``: each
    revision's branch labels as Alembic's revision map assigns them)."""
    labels = labels_of or {}
    problems: list[GraphProblem] = []
    if len(heads) > 1 and labelled_branches(heads, labels) is None:
        problems.append(
            GraphProblem(
                "multiple_heads",
                f"{len(heads)} heads: {', '.join(heads)} (run `abmigrate merge`)",
                tuple(heads),
            )
        )
    if len(bases) > 1 and labelled_branches(bases, labels) is None:
        problems.append(
            GraphProblem("multiple_roots", f"{len(bases)} roots: {', '.join(bases)}", tuple(bases))
        )
    return problems


def file_problems(
    scripts: Iterable[tuple[str, Sequence[str], str | None]],
) -> list[GraphProblem]:
    """Per ``(id, parents, path)``: each parent no script defines, then an id too long for
    the version table (the one wording of both, for graph_problems and declared_problems)."""
    entries = list(scripts)
    known = {revision for revision, _, _ in entries}
    problems: list[GraphProblem] = []
    for revision, parents, path in entries:
        for parent in parents:
            if parent not in known:
                problems.append(
                    GraphProblem(
                        "dangling_parent",
                        f"{revision} names parent {parent!r}, which no script defines",
                        (revision,),
                        path=str(path) if path else None,
                        parent=parent,
                    )
                )
        if len(revision) > VERSION_NUM_LENGTH:
            problems.append(
                GraphProblem(
                    "id_too_long",
                    f"revision id {revision!r} is {len(revision)} characters;"
                    f" alembic_version holds {VERSION_NUM_LENGTH}",
                    (revision,),
                    path=str(path) if path else None,
                )
            )
    return problems
