"""What a revision does, without parse trees: the part of its analysis that can be cached.

A capture (:mod:`abmigrate.lint.capture`) holds pglast parse trees and Alembic operation
objects; what the steps after lint need from it is much smaller and plain data:

- ``effects``: what it does to the schema state the engine tracks (tables, enum types,
  validated ``CHECK (col IS NOT NULL)`` constraints), applied by :func:`apply_effects`;
- ``checks``: the data-preflight checks its statements call for
  (:func:`abmigrate.lint.preflight.checks_for`, as records);
- ``table_events``: the tables it creates, fills, renames and drops, for judging findings
  against the live database (:func:`abmigrate.lint.judge.table_events`);
- ``memo``: Alembic's DDL memo after it ran (the PostgreSQL types created so far in the
  walk), which decides what the next revision renders.

:class:`RevisionFacts` round-trips through JSON for :mod:`abmigrate.analysis_cache`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from abmigrate.lint.model import SchemaState, Statement
from abmigrate.lint.preflight import checks_for
from abmigrate.lint.sql import enum_name, is_not_null_check, label, table_of

__all__ = ["RevisionFacts", "apply_effects", "memo_from_json", "memo_to_json", "state_effects"]


@dataclass
class RevisionFacts:
    effects: list[list[Any]]
    checks: list[dict[str, Any]]
    table_events: list[list[Any]]
    memo: dict[str, Any] | None  # None: the memo holds what JSON cannot say

    @classmethod
    def from_capture(
        cls, statements: Sequence[Statement], memo: dict[str, Any] | None
    ) -> RevisionFacts:
        from abmigrate.lint.judge import table_events

        return cls(
            effects=state_effects(statements),
            checks=[asdict(check) for check in checks_for(list(statements), direction="upgrade")],
            table_events=table_events(statements),
            memo=memo,
        )

    def to_json(self) -> dict[str, Any]:
        # Not asdict: its deep copy of every list cost a cold lint more than the rules;
        # the record shares this object's lists (the cache copies what it keeps).
        return {
            "effects": self.effects,
            "checks": self.checks,
            "table_events": self.table_events,
            "memo": self.memo,
        }

    @classmethod
    def from_json(cls, record: Any) -> RevisionFacts | None:
        """The facts of a cached record; None for anything else (a miss)."""
        if not isinstance(record, dict):
            return None
        try:
            facts = cls(
                effects=list(record["effects"]),
                checks=list(record["checks"]),
                table_events=list(record["table_events"]),
                memo=dict(record["memo"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return facts


def memo_to_json(memo: Mapping[str, Any]) -> dict[str, Any] | None:
    """Alembic's DDL memo (``{"pg_enum": {(schema, name), ...}}``) as sorted JSON lists;
    None when it holds anything else."""
    out: dict[str, Any] = {}
    for key, value in memo.items():
        if not isinstance(key, str) or not isinstance(value, set):
            return None
        items = []
        for item in value:
            if not (
                isinstance(item, tuple)
                and len(item) == 2
                and all(part is None or isinstance(part, str) for part in item)
            ):
                return None
            items.append(list(item))
        out[key] = sorted(items, key=lambda pair: (pair[0] or "", pair[1] or ""))
    return dict(sorted(out.items()))


def memo_from_json(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: {tuple(item) for item in items} for key, items in record.items()}


def memo_key(memo: Mapping[str, Any] | None) -> str:
    import json

    return json.dumps(memo, sort_keys=True, separators=(",", ":"))


def state_effects(statements: Iterable[Statement]) -> list[list[Any]]:
    """What one revision does to the tracked schema state, as plain data (cacheable)."""
    effects: list[list[Any]] = []
    for statement in statements:
        node, kind = statement.node, statement.kind
        if kind == "CreateStmt":
            effects.append(["create_table", str(node.relation.relname)])
        elif kind == "CreateEnumStmt":
            values = [getattr(value, "sval", "") for value in node.vals or ()]
            effects.append(["create_enum", enum_name(node.typeName), values])
        elif kind == "AlterEnumStmt":
            effects.append(["alter_enum", enum_name(node.typeName), node.oldVal, node.newVal])
        elif kind == "DropStmt":
            removed = label(node.removeType)
            for obj in node.objects or ():
                name = enum_name(getattr(obj, "names", obj))
                if removed == "OBJECT_TYPE":
                    effects.append(["drop_enum", name])
                elif removed == "OBJECT_TABLE":
                    effects.append(["drop_table", name])
        elif kind == "RenameStmt":
            renamed = label(node.renameType)
            if renamed == "OBJECT_TABLE":
                effects.append(["rename_table", str(table_of(node)), str(node.newname)])
            elif renamed == "OBJECT_TYPE":
                old = enum_name(getattr(node.object, "names", node.object))
                effects.append(["rename_enum", old, str(node.newname)])
        elif kind == "AlterTableStmt":
            table = str(table_of(node))
            for command in node.cmds or ():
                subtype = label(command.subtype)
                if subtype == "AT_AddConstraint" and label(command.def_.contype) == "CONSTR_CHECK":
                    column = is_not_null_check(command.def_.raw_expr)
                    if column and command.def_.skip_validation:
                        name = command.def_.conname or ""
                        effects.append(["pending_not_null", table, name, column])
                    elif column:
                        effects.append(["not_null", table, column])
                elif subtype == "AT_ValidateConstraint":
                    effects.append(["validate", table, command.name])
    return effects


def apply_effects(state: SchemaState, effects: Iterable[Sequence[Any]]) -> None:
    """Apply what one revision did (:func:`state_effects`) to the tracked schema state."""
    for effect in effects:
        what, args = effect[0], effect[1:]
        if what == "create_table":
            state.tables.add(args[0])
        elif what == "create_enum":
            state.enums[args[0]] = tuple(args[1])
        elif what == "alter_enum":
            name, old_value, new_value = args
            values = state.enums.get(name, ())
            if old_value and new_value:
                state.enums[name] = tuple(new_value if v == old_value else v for v in values)
            elif new_value and new_value not in values:
                state.enums[name] = (*values, new_value)
        elif what == "drop_enum":
            state.enums.pop(args[0], None)
        elif what == "drop_table":
            state.tables.discard(args[0])
        elif what == "rename_table":
            if args[0] in state.tables:
                state.tables.discard(args[0])
                state.tables.add(args[1])
        elif what == "rename_enum":
            if args[0] in state.enums:
                state.enums[args[1]] = state.enums.pop(args[0])
        elif what == "pending_not_null":
            state.pending_not_null_checks[(args[0], args[1])] = args[2]
        elif what == "not_null":
            state.not_null_checked.add((args[0], args[1]))
        elif what == "validate":
            column = state.pending_not_null_checks.pop((args[0], args[1]), None)
            if column:
                state.not_null_checked.add((args[0], column))
