"""PostgreSQL table locks: which lock a migration statement needs, and who is in its way.

Used by the runner to report the sessions blocking a revision (pid, query, state, for how
long) and, before trying a revision again, to wait until no long-running transaction holds
a conflicting lock on its tables: every attempt that finds the lock still taken makes every
writer queue behind the waiting ALTER for up to ``lock_timeout``, so a blind retry is not free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.config.workspace import Workspace

__all__ = [
    "CONFLICTS",
    "LOCK_MODES",
    "LockNeed",
    "conflicting_holders",
    "created_tables",
    "lock_needs",
]

# PostgreSQL's table-level lock modes, weakest to strongest, and their conflict matrix
# (docs: "Explicit Locking", table 13.2).
LOCK_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
_CONFLICT_ROWS = {
    "AccessShareLock": {"AccessExclusiveLock"},
    "RowShareLock": {"ExclusiveLock", "AccessExclusiveLock"},
    "RowExclusiveLock": {
        "ShareLock",
        "ShareRowExclusiveLock",
        "ExclusiveLock",
        "AccessExclusiveLock",
    },
    "ShareUpdateExclusiveLock": {
        "ShareUpdateExclusiveLock",
        "ShareLock",
        "ShareRowExclusiveLock",
        "ExclusiveLock",
        "AccessExclusiveLock",
    },
    "ShareLock": {
        "RowExclusiveLock",
        "ShareUpdateExclusiveLock",
        "ShareRowExclusiveLock",
        "ExclusiveLock",
        "AccessExclusiveLock",
    },
    "ShareRowExclusiveLock": set(LOCK_MODES[2:]),
    "ExclusiveLock": set(LOCK_MODES[1:]),
    "AccessExclusiveLock": set(LOCK_MODES),
}
CONFLICTS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in _CONFLICT_ROWS.items()}

LockNeed = dict[str, str]  # table name -> strongest lock mode the statements take on it


def _stronger(a: str | None, b: str) -> str:
    if a is None:
        return b
    return a if LOCK_MODES.index(a) >= LOCK_MODES.index(b) else b


def lock_needs(sql: str | Iterable[str], *, workspace: Workspace | None = None) -> LockNeed:
    """Tables the statements lock, with the strongest mode each needs (best effort).

    Statements pglast cannot parse are skipped; an unknown statement kind on a table counts
    as ACCESS EXCLUSIVE, the safe assumption for waiting. With ``workspace``, the answer for
    the same SQL text is kept in the project's analysis cache
    (:mod:`abmigrate.analysis_cache`): a step's SQL is parsed once, not on every run.
    """
    texts = [sql] if isinstance(sql, str) else list(sql)
    found = _cached("locks", texts, workspace, lambda: _lock_needs(texts))
    if isinstance(found, dict) and all(mode in CONFLICTS for mode in found.values()):
        return {str(table): str(mode) for table, mode in found.items()}
    return _lock_needs(texts)


def created_tables(sql: str | Iterable[str], *, workspace: Workspace | None = None) -> set[str]:
    """Tables the statements create (CREATE TABLE, CREATE TABLE AS), by name; cached like
    :func:`lock_needs`."""
    texts = [sql] if isinstance(sql, str) else list(sql)
    found = _cached("creates", texts, workspace, lambda: sorted(_created_tables(texts)))
    if isinstance(found, list):
        return {str(name) for name in found}
    return _created_tables(texts)


def _cached(
    kind: str, texts: list[str], workspace: Workspace | None, compute: Callable[[], object]
) -> object:
    if workspace is None:
        return compute()
    from abmigrate.analysis_cache import AnalysisCache

    cache = AnalysisCache.for_workspace(workspace)
    key = cache.code_key(kind, *texts)
    found = cache.get(kind, key)
    if found is None:
        found = compute()
        cache.put(kind, key, found)
    return found


def _parsed(texts: list[str]) -> Iterator[Any]:
    """pglast's raw statements of every text (a text pglast cannot parse is skipped)."""
    from pglast import parse_sql

    for text in texts:
        try:
            statements = parse_sql(text)
        except Exception:
            continue
        yield from statements


def _created_tables(texts: list[str]) -> set[str]:
    created: set[str] = set()
    for raw in _parsed(texts):
        statement: Any = raw.stmt
        kind = type(statement).__name__
        if kind == "CreateStmt":
            created.add(str(statement.relation.relname))
        elif kind == "CreateTableAsStmt":
            created.add(str(statement.into.rel.relname))
    return created


def _lock_needs(texts: list[str]) -> LockNeed:
    from pglast.enums import AlterTableType
    from pglast.visitors import Visitor

    needs: LockNeed = {}

    class Tables(Visitor):
        def __init__(self) -> None:
            self.names: list[str] = []

        def visit_RangeVar(self, ancestors: Any, node: Any) -> None:
            self.names.append(str(node.relname))

    for raw in _parsed(texts):
        statement: Any = raw.stmt
        kind = type(statement).__name__
        tables = Tables()
        tables(raw)
        if not tables.names:
            continue
        if kind == "IndexStmt":
            mode = "ShareUpdateExclusiveLock" if statement.concurrent else "ShareLock"
            names = tables.names[:1]
        elif kind == "AlterTableStmt":
            subtypes = {command.subtype for command in statement.cmds or ()}
            if subtypes == {AlterTableType.AT_ValidateConstraint}:
                mode = "ShareUpdateExclusiveLock"
            else:
                mode = "AccessExclusiveLock"
            if subtypes == {AlterTableType.AT_AddConstraint} and len(tables.names) > 1:
                # A foreign key also takes SHARE ROW EXCLUSIVE on the table it references.
                needs[tables.names[1]] = _stronger(
                    needs.get(tables.names[1]), "ShareRowExclusiveLock"
                )
            names = tables.names[:1]
        elif kind in ("SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt"):
            mode = "AccessShareLock" if kind == "SelectStmt" else "RowExclusiveLock"
            names = tables.names
        elif kind in ("CreateStmt", "CreateTableAsStmt", "ViewStmt"):
            continue  # a new table: nobody else can hold it yet
        else:
            mode = "AccessExclusiveLock"
            names = tables.names
        for name in names:
            needs[name] = _stronger(needs.get(name), mode)
    needs.pop("alembic_version", None)
    return needs


def conflicting_holders(
    connection: Connection, needs: LockNeed, *, min_age_ms: int = 0
) -> list[dict[str, Any]]:
    """Sessions holding a lock that conflicts with ``needs``, in a transaction at least
    ``min_age_ms`` old: pid, user, state, query, how long, table and mode."""
    from sqlalchemy import text

    if not needs:
        return []
    # Asked before every revision: first the cheap question (any other session holding a
    # lock on one of these tables at all?), answered from pg_locks alone in well under a
    # millisecond; pg_stat_activity, which costs several times more, only when it says yes.
    held = connection.execute(
        text(
            "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE l.granted AND l.pid <> pg_backend_pid() AND c.relname = ANY(:names)"
            " LIMIT 1"
        ),
        {"names": list(needs)},
    ).first()
    if held is None:
        return []
    holders: dict[int, dict[str, Any]] = {}
    rows = connection.execute(
        text(
            "SELECT l.pid, l.mode, c.relname, a.usename, a.state, a.query,"
            " extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::float AS age_s,"
            " extract(epoch FROM now() - a.state_change)::float AS state_s"
            " FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.granted AND l.pid <> pg_backend_pid()"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND c.relname = ANY(:names)"
            " AND coalesce(a.xact_start, a.query_start) <= now() - make_interval(secs => :age)"
        ),
        {"names": list(needs), "age": min_age_ms / 1000},
    ).mappings()
    for row in rows:
        if row["mode"] not in CONFLICTS[needs[row["relname"]]]:
            continue
        holder = holders.setdefault(
            int(row["pid"]),
            {
                "pid": int(row["pid"]),
                "user": row["usename"],
                "state": row["state"],
                "query": " ".join(str(row["query"] or "").split())[:200],
                "transaction_s": round(float(row["age_s"] or 0), 2),
                "locks": [],
            },
        )
        holder["locks"].append(f"{row['mode']} on {row['relname']}")
    return list(holders.values())
