"""The revision graph as a record: every revision, newest first, with its parents, branch
labels, whether it is a head, a root or a merge, the graph's problems, and — with a
database — which revisions are applied, pending, or recorded by the database but unknown to
the scripts. ``abmigrate graph`` and the HTML report draw it (:mod:`abmigrate.render.graph`).

Read from the revision files as written, so a graph Alembic cannot build (a parent no
script defines) is still drawn, with its problem marked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abmigrate.results import Record

if TYPE_CHECKING:
    from abmigrate.bridge.project import AlembicProject, DeclaredScript

__all__ = ["GraphNode", "RevisionGraph", "revision_graph"]


@dataclass
class GraphNode(Record):
    revision: str
    message: str
    parents: list[str]
    branch_labels: list[str] = field(default_factory=list)
    head: bool = False
    root: bool = False
    merge: bool = False
    # applied | pending | unknown (the database records it, no script defines it);
    # None when no database was read
    status: str | None = None
    # the database records this revision (it is where the database stands)
    current: bool = False
    # codes of the graph problems naming this revision (multiple_heads, dangling_parent, …)
    problems: list[str] = field(default_factory=list)


@dataclass
class RevisionGraph(Record):
    environment: str | None
    database: str | None
    current: list[str] | None
    nodes: list[GraphNode]
    problems: list[dict[str, Any]] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "database": self.database,
            "current": self.current,
            "nodes": [node.to_record() for node in self.nodes],
            "problems": self.problems,
        }


def revision_graph(
    project: AlembicProject,
    current: list[str] | None,
    *,
    environment: str | None = None,
    database: str | None = None,
) -> RevisionGraph:
    """The graph of ``project``; ``current`` is what the database records (None: not read)."""
    scripts = project.declared_scripts()
    problems = project.graph_problems()
    if any(problem.code == "graph_broken" for problem in problems):
        # Alembic could not build its map; the files themselves say what is wrong.
        problems += project.declared_problems()
    by_revision: dict[str, list[str]] = {}
    for problem in problems:
        for revision in problem.revisions:
            by_revision.setdefault(revision, []).append(problem.code)
    known = {script.revision for script in scripts}
    children: dict[str, int] = {}
    for script in scripts:
        for parent in script.parents:
            children[parent] = children.get(parent, 0) + 1
    applied = _ancestors(scripts, [rev for rev in current or [] if rev in known])
    nodes = [
        GraphNode(
            revision=script.revision,
            message=script.message,
            parents=list(script.parents),
            branch_labels=list(script.branch_labels),
            head=script.revision not in children,
            root=not script.parents,
            merge=len(script.parents) > 1,
            status=None
            if current is None
            else ("applied" if script.revision in applied else "pending"),
            current=script.revision in (current or []),
            problems=sorted(set(by_revision.get(script.revision, []))),
        )
        for script in _newest_first(scripts)
    ]
    unknown = [
        GraphNode(
            revision=revision,
            message="recorded by the database; no script defines it",
            parents=[],
            status="unknown",
            current=True,
            problems=["unknown_revision"],
        )
        for revision in current or []
        if revision not in known
    ]
    return RevisionGraph(
        environment=environment,
        database=database,
        current=current,
        nodes=unknown + nodes,
        problems=[problem.to_record() for problem in problems],
    )


def _ancestors(scripts: list[DeclaredScript], start: list[str]) -> set[str]:
    parents = {script.revision: script.parents for script in scripts}
    seen: set[str] = set()
    todo = list(start)
    while todo:
        revision = todo.pop()
        if revision in seen:
            continue
        seen.add(revision)
        todo.extend(parent for parent in parents.get(revision, ()) if parent in parents)
    return seen


def _newest_first(scripts: list[DeclaredScript]) -> list[DeclaredScript]:
    """Children before their parents: by the longest path from a root, deepest first (a
    cycle, which Alembic refuses anyway, ends the walk rather than looping)."""
    parents = {script.revision: script.parents for script in scripts}
    depth: dict[str, int] = {}
    for script in scripts:
        stack = [script.revision]
        visiting: set[str] = set()
        while stack:
            revision = stack[-1]
            if revision in depth:
                stack.pop()
                continue
            visiting.add(revision)
            missing = [
                parent
                for parent in parents.get(revision, ())
                if parent in parents and parent not in depth and parent not in visiting
            ]
            if missing:
                stack.extend(missing)
                continue
            known = [depth[parent] for parent in parents.get(revision, ()) if parent in depth]
            depth[revision] = 1 + max(known, default=-1)
            stack.pop()
    order = {script.revision: index for index, script in enumerate(scripts)}
    return sorted(scripts, key=lambda script: (-depth[script.revision], order[script.revision]))
