"""Judging lint findings against the database a plan will run on.

Lint reads each revision on its own and cannot know sizes: a ``CREATE INDEX`` without
``CONCURRENTLY`` blocks writers for minutes on a table of two million rows and for a few
milliseconds on an empty one. When a plan is analysed against its live database (``plan``,
``upgrade``, the production pipeline), every finding of a rule with ``judged_by`` is weighed
against the tables its hit names, as they will be when its step runs:

- a table **created earlier in the plan** (an earlier step, or earlier in the same revision:
  the rules skip those already) holds no rows and nobody uses it before the run: the finding
  is downgraded to ``info``, destructive findings included (they lose nothing that existed);
- an **existing** table: ``"size"`` findings (a lock held or a rewrite lasting as long as the
  table is big) are downgraded when it has fewer than ``small_table_rows`` rows,
  ``"any_row"`` findings (harmless only without rows) when it is empty; ``"in_use"``
  findings (renames, lock waits, destructive changes) are kept whatever the size: a
  destructive finding on an empty table says so in its record, and the policy about
  destructive changes still decides;
- a table neither in the database nor created by the plan is not judged (kept as it is).

Rows come from :class:`abmigrate.lint.preflight_run.LiveTables`: the server's estimate (PostgreSQL's
planner, MySQL/MariaDB ``TABLE_ROWS``) can only say "large"; "small" and "empty" are always
counted (a count that stops at ``small_table_rows``). ``small_table_rows = 0`` leaves existing
tables unjudged. Each finding record gets ``judged`` with the decision and its reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from abmigrate.lint.model import Finding, Judgement, Statement
from abmigrate.lint.sql import label, table_of, walk

if TYPE_CHECKING:
    from abmigrate.lint.engine import LintResult
    from abmigrate.lint.preflight_run import LiveTables
    from abmigrate.lint.registry import JudgedBy
    from abmigrate.results import Plan

__all__ = ["PlanTables", "judge_finding", "judge_plan", "table_events"]


@dataclass(frozen=True)
class Lineage:
    """A table name as the plan leaves it at some point of the run."""

    created_in: str | None  # the revision of the plan that created it; None: renamed live table
    sources: frozenset[str] = frozenset()  # live tables whose rows it holds (renamed or copied)
    changed_in: str | None = None  # the revision that renamed or copied live rows into it
    seeded_in: str | None = None  # a revision of the plan that inserts literal rows into it


@dataclass(frozen=True)
class Dropped:
    revision: str


@dataclass
class PlanTables:
    """Which tables the plan creates, renames, fills and drops, revision by revision."""

    live: LiveTables
    tracked: dict[str, Lineage | Dropped] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Lineage | Dropped]:
        return dict(self.tracked)

    def advance(self, revision: str, statements: Iterable[Statement]) -> None:
        self.apply(revision, table_events(statements))

    def apply(self, revision: str, events: Iterable[Sequence[Any]]) -> None:
        """Follow one revision's :func:`table_events` (in order) against the live tables."""
        for event in events:
            what = event[0]
            if what == "create":
                _, name, if_not_exists, fill = event
                if self._create(revision, name, if_not_exists) and fill is not None:
                    self._fill(revision, name, fill)
            elif what == "fill":
                self._fill(revision, event[1], event[2])
            elif what == "drop":
                self.tracked[event[1]] = Dropped(revision)
            elif what == "rename":
                old, new = event[1], event[2]
                found = self.tracked.get(old)
                if isinstance(found, Lineage):
                    self.tracked[new] = found
                elif found is None and self.live.exists(old):
                    self.tracked[new] = Lineage(None, frozenset({old}), changed_in=revision)
                self.tracked[old] = Dropped(revision)

    def _create(self, revision: str, name: str, if_not_exists: bool) -> bool:
        if if_not_exists:
            found = self.tracked.get(name)
            if isinstance(found, Lineage):
                return False
            if found is None and (self.live.exists(name) or not self.live.known):
                return False  # the live table (or possibly one) stays: not a new table
        self.tracked[name] = Lineage(revision)
        return True

    def _fill(self, revision: str, name: str, fill: Sequence[Any]) -> None:
        found = self.tracked.get(name)
        if not isinstance(found, Lineage):
            return  # rows added to a live table: its live size is what is judged
        literal, read = fill
        sources: set[str] = set()
        seeded = bool(literal)
        if not literal:
            for source in read:
                origin = self.tracked.get(source)
                if isinstance(origin, Lineage):
                    sources |= origin.sources
                    seeded = seeded or origin.seeded_in is not None
                elif origin is None and self.live.exists(source):
                    sources.add(source)
        updated = found
        if sources - found.sources:
            updated = replace(updated, sources=found.sources | sources, changed_in=revision)
        if seeded and found.seeded_in is None:
            updated = replace(updated, seeded_in=revision)
        self.tracked[name] = updated


def table_events(statements: Iterable[Statement]) -> list[list[Any]]:
    """The tables ``statements`` create, fill, drop and rename, in order, as plain data
    (what :meth:`PlanTables.apply` follows; cached with the revision's analysis):

    ``["create", table, if_not_exists, fill or None]``, ``["fill", table, fill]``,
    ``["drop", table]``, ``["rename", old, new]``; a fill is ``[literal, tables read]``
    (literal rows: ``VALUES``/``COPY``; else the tables its query reads, CTEs left out).
    """
    events: list[list[Any]] = []
    for statement in statements:
        node, kind = statement.node, statement.kind
        if kind == "CreateStmt":
            events.append(["create", str(node.relation.relname), bool(node.if_not_exists), None])
        elif kind == "CreateTableAsStmt":
            name = str(node.into.rel.relname)
            events.append(["create", name, bool(node.if_not_exists), _fill_of(node.query)])
        elif kind == "InsertStmt":
            events.append(["fill", str(table_of(node)), _fill_of(node.selectStmt)])
        elif kind == "CopyStmt" and node.is_from and node.relation is not None:
            events.append(["fill", str(table_of(node)), _fill_of(None)])
        elif kind == "DropStmt" and label(node.removeType) == "OBJECT_TABLE":
            for names in node.objects or ():
                if names:
                    events.append(["drop", str(getattr(names[-1], "sval", ""))])
        elif kind == "RenameStmt" and label(node.renameType) == "OBJECT_TABLE":
            events.append(["rename", str(table_of(node)), str(node.newname)])
    return events


def _fill_of(query: Any) -> list[Any]:
    if query is None or bool(getattr(query, "valuesLists", None)):
        return [True, []]
    ctes = {
        str(cte.ctename)
        for item in walk(query)
        if type(item).__name__ == "WithClause"
        for cte in item.ctes or ()
    }
    read = [
        str(item.relname)
        for item in walk(query)
        if type(item).__name__ == "RangeVar" and str(item.relname) not in ctes
    ]
    return [False, read]


@dataclass(frozen=True)
class _Verdict:
    table: str
    state: str  # created_in_plan | empty | small | large | in_use | dropped | missing | not_checked
    downgrade: bool
    reason: str
    rows: int | None = None
    rows_from: str | None = None  # plan | estimate | count | count_limit

    def to_record(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "state": self.state,
            "rows": self.rows,
            "rows_from": self.rows_from,
        }


def judge_plan(plan: Plan, result: LintResult, live: LiveTables, small_table_rows: int) -> None:
    """Add ``judged`` to every finding record of the plan's steps; downgrade where it says so."""
    from abmigrate.lint.registry import rule_by_code

    rules = rule_by_code()
    tables = PlanTables(live)
    for step in plan.steps:
        facts = result.facts.get(step.revision)
        before = tables.snapshot()
        tables.apply(step.revision, facts.table_events if facts is not None else ())
        after = tables.snapshot()
        judged = []
        for finding in step.findings:
            rule = rules.get(finding.code)
            judged_by = rule.judged_by if rule is not None else None
            judged.append(judge_finding(finding, judged_by, before, after, live, small_table_rows))
        step.findings = judged


def judge_finding(
    finding: Finding,
    judged_by: JudgedBy | None,
    before: Mapping[str, Lineage | Dropped],
    after: Mapping[str, Lineage | Dropped],
    live: LiveTables,
    small_table_rows: int,
) -> Finding:
    """``finding`` with its judgement (and, when downgraded, severity ``info``)."""
    severity, destructive = finding.severity, finding.destructive
    names = list(finding.tables)
    verdicts: list[_Verdict] = []
    if judged_by is None:
        reason = f"{finding.code} does not depend on a table's rows"
    elif not names:
        reason = "the finding names no table"
    else:
        verdicts = [
            _judge_table(name, judged_by, destructive, before, after, live, small_table_rows)
            for name in names
        ]
        reason = "; ".join(verdict.reason for verdict in verdicts)
    downgrade = bool(verdicts) and all(verdict.downgrade for verdict in verdicts)
    judgement = Judgement(
        decision="downgraded" if downgrade else "kept",
        reason=reason,
        before={"severity": severity, "destructive": destructive},
        tables=[verdict.to_record() for verdict in verdicts],
    )
    if downgrade:
        return replace(finding, judged=judgement, severity="info", destructive=False)
    return replace(finding, judged=judgement)


def _judge_table(
    table: str,
    judged_by: JudgedBy,
    destructive: bool,
    before: Mapping[str, Lineage | Dropped],
    after: Mapping[str, Lineage | Dropped],
    live: LiveTables,
    threshold: int,
) -> _Verdict:
    found = before.get(table)
    if found is None and not live.exists(table):
        found = after.get(table)  # renamed into place by this same revision
    if isinstance(found, Dropped):
        return _Verdict(
            table, "dropped", False, f"{table} is dropped earlier in this plan ({found.revision})"
        )
    if isinstance(found, Lineage) and not found.sources:
        return _created(table, found, judged_by)
    if isinstance(found, Lineage):
        verdicts = [
            _judge_live(source, judged_by, destructive, live, threshold)
            for source in sorted(found.sources)
        ]
        origin = ", ".join(sorted(found.sources))
        how = (
            f"is the live table {origin}, renamed"
            if found.created_in is None
            else f"holds rows copied from {origin}"
        )
        return _Verdict(
            table,
            verdicts[0].state if len(verdicts) == 1 else "copied",
            all(verdict.downgrade for verdict in verdicts),
            f"{table} {how} earlier in this plan ({found.changed_in}): "
            + "; ".join(verdict.reason for verdict in verdicts),
            sum(v.rows for v in verdicts if v.rows is not None)
            if all(v.rows is not None for v in verdicts)
            else None,
            verdicts[0].rows_from,
        )
    if not live.known:
        return _Verdict(table, "not_checked", False, f"{table}: {live.problem}")
    if not live.exists(table):
        return _Verdict(
            table,
            "missing",
            False,
            f"{table} is neither in the database nor created earlier in this plan: not judged",
        )
    return _judge_live(table, judged_by, destructive, live, threshold)


def _created(table: str, lineage: Lineage, judged_by: JudgedBy) -> _Verdict:
    where = f"{table} is created earlier in this plan ({lineage.created_in})"
    if lineage.seeded_in is None:
        return _Verdict(
            table,
            "created_in_plan",
            True,
            f"{where}: it holds no rows and nothing uses it before the run",
            0,
            "plan",
        )
    if judged_by == "any_row":
        return _Verdict(
            table,
            "created_in_plan",
            False,
            f"{where}, but {lineage.seeded_in} inserts rows into it",
            None,
            "plan",
        )
    return _Verdict(
        table,
        "created_in_plan",
        True,
        f"{where}: it holds only rows the plan inserts and nothing uses it before the run",
        None,
        "plan",
    )


def _judge_live(
    table: str, judged_by: JudgedBy, destructive: bool, live: LiveTables, threshold: int
) -> _Verdict:
    if threshold <= 0:
        return _Verdict(
            table,
            "not_checked",
            False,
            f"{table} exists; small_table_rows = 0 leaves existing tables unjudged",
        )
    if judged_by == "in_use" and not destructive:
        return _Verdict(
            table,
            "in_use",
            False,
            f"{table} exists and may be in use: this finding does not depend on its size",
        )
    try:
        rows, source = live.rows(table, threshold)
    except Exception as exc:  # a table we may not read: say so, never guess
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        problem = first[0] if first else type(exc).__name__
        return _Verdict(table, "not_checked", False, f"could not measure {table}: {problem}")
    if source == "estimate":
        state, size = "large", f"{table} has ~{rows:,} rows ({live.estimate_name})"
    elif source == "count_limit":
        state, size = "large", f"{table} has at least {rows:,} rows (the count stops there)"
    elif rows == 0:
        state, size = "empty", f"{table} is empty (counted)"
    else:
        state, size = "small", f"{table} has {rows:,} row(s) (counted)"
    if judged_by == "in_use":  # destructive: an empty table loses nothing, the policy decides
        note = (
            ": nothing would be lost, but destructive changes stay the policy's decision"
            " (allow_destructive)"
            if state == "empty"
            else ""
        )
        return _Verdict(table, state, False, size + note, rows, source)
    if judged_by == "any_row":
        downgrade = state == "empty"
        note = "" if downgrade else ": the statement fails on a table with any row"
        return _Verdict(table, state, downgrade, size + note, rows, source)
    downgrade = state in ("empty", "small")
    limit = f"small_table_rows = {threshold:,}"
    note = f", under {limit}" if downgrade else f", not under {limit}"
    return _Verdict(table, state, downgrade, size + note, rows, source)
