"""What the lint engine knows about one revision, and what a rule reports.

A :class:`RevisionUnit` is one revision seen on its own: the SQL its ``upgrade()`` renders for
PostgreSQL (each statement parsed by pglast), the Alembic operations it invoked, and what the
schema looked like before it (tables and enum types created by earlier revisions).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CapturedOp",
    "Finding",
    "Hit",
    "Judgement",
    "RevisionUnit",
    "SchemaState",
    "Severity",
    "Statement",
]

# "info": a finding judging downgraded (abmigrate.lint.judge); rules report error or warning.
Severity = Literal["error", "warning", "info"]


@dataclass
class Statement:
    """One SQL statement the revision emits, in order."""

    index: int
    sql: str
    node: Any  # the pglast statement node; None when the text does not parse
    line: int | None  # line in the revision file that emitted it
    in_transaction: bool  # False inside ``autocommit_block()``
    parse_error: str | None = None
    # the abmigrate.ops function that rendered it ("backfill", "set_not_null", ...), if any
    safe_op: str | None = None

    @property
    def kind(self) -> str:
        return type(self.node).__name__ if self.node is not None else ""


@dataclass
class CapturedOp:
    """One Alembic operation object (``alembic.operations.ops``) the revision invoked."""

    op: Any
    line: int | None

    @property
    def kind(self) -> str:
        return type(self.op).__name__


@dataclass
class SchemaState:
    """The schema as earlier revisions left it (names only; enough for the rules)."""

    tables: set[str] = field(default_factory=set)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (table, column) pairs proven NOT NULL by a validated CHECK (col IS NOT NULL)
    not_null_checked: set[tuple[str, str]] = field(default_factory=set)
    # (table, constraint name) -> column, for CHECK (col IS NOT NULL) constraints not yet valid
    pending_not_null_checks: dict[tuple[str, str], str] = field(default_factory=dict)

    def copy(self) -> SchemaState:
        return SchemaState(
            set(self.tables),
            dict(self.enums),
            set(self.not_null_checked),
            dict(self.pending_not_null_checks),
        )


@dataclass
class RevisionUnit:
    """One revision with everything a rule may look at."""

    revision: str
    message: str
    path: Path | None
    source: str
    down_revisions: tuple[str, ...]
    is_merge: bool
    statements: list[Statement]
    operations: list[CapturedOp]
    before: SchemaState
    created_tables: set[str]
    capture_error: str | None = None
    capture_line: int | None = None
    assume_lock_timeout: bool = False
    module: Any = None  # the loaded revision module (its functions, for source-level rules)

    def is_new_table(self, table: str | None) -> bool:
        """True when ``table`` is created by this same revision (lock rules skip it)."""
        return table is not None and table in self.created_tables

    def parsed(self) -> Iterator[Statement]:
        return (statement for statement in self.statements if statement.node is not None)

    def ops_of(self, *kinds: str) -> Iterator[CapturedOp]:
        return (captured for captured in self.operations if captured.kind in kinds)


@dataclass(frozen=True)
class Hit:
    """What a rule reports; the engine adds the rule's code, severity, hint and location."""

    message: str
    line: int | None = None
    sql: str | None = None
    revision: str | None = None  # project-wide rules name the revision themselves
    # the tables the finding is about, for judging it against live data (abmigrate.lint.judge)
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Judgement:
    """A finding judged against the live tables of the database a plan will run on."""

    decision: Literal["kept", "downgraded"]
    reason: str
    before: dict[str, Any]  # the severity and destructiveness before judging
    tables: list[dict[str, Any]]  # one verdict per table the finding names

    def to_record(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "before": self.before,
            "tables": self.tables,
        }


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    severity: Severity
    message: str
    hint: str
    revision: str | None
    path: str | None
    line: int | None
    destructive: bool = False
    sql: str | None = None
    tables: tuple[str, ...] = ()
    judged: Judgement | None = None

    @property
    def location(self) -> str | None:
        if self.path is None:
            return None
        return f"{self.path}:{self.line}" if self.line else self.path

    def to_record(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.name,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "revision": self.revision,
            "location": self.location,
            "path": self.path,
            "line": self.line,
            "destructive": self.destructive,
            "sql": self.sql,
            "tables": list(self.tables),
        } | ({"judged": self.judged.to_record()} if self.judged is not None else {})
