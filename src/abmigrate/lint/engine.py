"""The lint engine: each revision analysed on its own, in history order.

For every revision (base first) the engine renders ``upgrade()`` offline for PostgreSQL
(:mod:`abmigrate.lint.capture`), builds a :class:`~abmigrate.lint.model.RevisionUnit` with the
schema as earlier revisions left it, runs the selected rules, applies the file's inline
suppressions, and then advances the schema state. Graph rules run once per project.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.lint.capture import OfflineContext, capture_revision, recording
from abmigrate.lint.config import LintConfig
from abmigrate.lint.model import Finding, Hit, RevisionUnit, SchemaState, Statement
from abmigrate.lint.registry import ProjectFacts, Rule, all_rules
from abmigrate.lint.sql import enum_name, is_not_null_check, label, table_of
from abmigrate.lint.suppressions import Suppression, parse_suppressions
from abmigrate.results import Record

if TYPE_CHECKING:
    from alembic.script import Script

    from abmigrate.alembic_bridge import AlembicProject

__all__ = ["LintResult", "capture_statements", "lint_project"]


@dataclass
class LintResult(Record):
    revisions: list[str]
    findings: list[Finding]
    suppressed: list[dict[str, Any]] = field(default_factory=list)
    # what each linted revision does, for data preflight (not part of the record)
    units: dict[str, RevisionUnit] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    def for_revision(self, revision: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.revision == revision]

    def to_record(self) -> dict[str, Any]:
        return {
            "revisions": self.revisions,
            "findings": [finding.to_record() for finding in self.findings],
            "errors": len(self.errors),
            "warnings": len(self.findings) - len(self.errors),
            "suppressed": self.suppressed,
        }


def lint_project(
    project: AlembicProject,
    *,
    config: LintConfig | None = None,
    revisions: Collection[str] | None = None,
    assume_lock_timeout: bool = False,
    graph: bool = True,
) -> LintResult:
    """Lint ``revisions`` (default: all) of ``project``; never touches a database."""
    config = config or LintConfig()
    rules = [rule() for rule in all_rules() if config.enabled(rule.code)]
    known = {rule.code for rule in all_rules()}
    assume = (
        config.assume_lock_timeout
        if config.assume_lock_timeout is not None
        else assume_lock_timeout
    )
    offline = OfflineContext()
    state = SchemaState()
    findings: list[Finding] = []
    suppressed: list[dict[str, Any]] = []
    checked: list[str] = []
    units: dict[str, RevisionUnit] = {}
    with recording():
        for script in _in_history_order(project):
            capture = capture_revision(script, offline)
            unit = _unit(script, capture, state.copy(), assume)
            _advance(state, capture.statements)
            if revisions is not None and script.revision not in revisions:
                continue
            units[script.revision] = unit  # preflight needs it even where lint is excluded
            if script.revision in config.exclude_revisions:
                continue
            checked.append(script.revision)
            hits = [
                (rule, hit)
                for rule in rules
                if rule.scope == "revision"
                for hit in rule.check(unit)
            ]
            found, silenced = _suppress(unit, hits, config, known)
            findings.extend(found)
            suppressed.extend(silenced)
    if graph:
        facts = _graph_facts(project)
        for rule in rules:
            if rule.scope == "project":
                for hit in rule.check_project(facts):
                    if revisions is None or hit.revision in revisions:
                        findings.append(_finding(rule, hit, hit.revision, None, config))
    return LintResult(checked, findings, suppressed, units)


def capture_statements(
    project: AlembicProject, revisions: Collection[str], direction: str
) -> dict[str, list[Statement]]:
    """The PostgreSQL statements of each revision's ``upgrade()`` or ``downgrade()``."""
    offline = OfflineContext()
    captured: dict[str, list[Statement]] = {}
    with recording():
        for revision in revisions:
            script = project.get(revision)
            captured[revision] = capture_revision(script, offline, direction).statements
    return captured


def _in_history_order(project: AlembicProject) -> list[Script]:
    """Base first; falls back to every loadable file when the graph itself is broken."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return list(reversed(project.revisions()))
    except Exception:  # Alembic raises KeyError, among others, for a dangling parent
        pass
    try:
        return list(project.script._load_revisions())
    except Exception as exc:  # a revision file that does not even import
        from abmigrate.errors import RevisionError

        raise RevisionError(
            f"cannot load the revision files: {type(exc).__name__}: {exc}",
            hint="fix that file (python -m py_compile FILE shows the error), then lint again",
        ) from None


def _parents(script: Script) -> tuple[str, ...]:
    # Script's own normalised attributes need a loaded graph; this works on a broken one too.
    down = script.down_revision
    if down is None:
        return ()
    return (down,) if isinstance(down, str) else tuple(down)


def _graph_facts(project: AlembicProject) -> ProjectFacts:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problems = project.graph_problems()
        return ProjectFacts((p.code, p.message, p.revisions) for p in problems)
    except Exception as exc:
        # The graph does not load at all: name the parents no script defines ourselves.
        scripts = list(project.script._load_revisions())
        known = {script.revision for script in scripts}
        facts = [
            (
                "dangling_parent",
                f"{script.revision} names parent {parent!r}, which no script defines",
                (script.revision,),
            )
            for script in scripts
            for parent in _parents(script)
            if parent not in known
        ]
        return ProjectFacts(
            facts or [("graph_broken", f"the revision graph does not load: {exc}", ())]
        )


def _unit(script: Script, capture: Any, before: SchemaState, assume: bool) -> RevisionUnit:
    path = Path(script.path) if script.path else None
    try:
        source = path.read_text(encoding="utf-8") if path else ""
    except OSError:
        source = ""
    from abmigrate.plan import message_of

    return RevisionUnit(
        revision=script.revision,
        message=message_of(script.doc),
        path=path,
        source=source,
        down_revisions=_parents(script),
        is_merge=len(_parents(script)) > 1,
        statements=capture.statements,
        operations=capture.operations,
        before=before,
        created_tables=_created_tables(capture.statements),
        capture_error=capture.error,
        capture_line=capture.error_line,
        assume_lock_timeout=assume,
        module=script.module,
    )


def _created_tables(statements: Iterable[Statement]) -> set[str]:
    created: set[str] = set()
    for statement in statements:
        if statement.kind == "CreateStmt":
            created.add(str(statement.node.relation.relname))
        elif statement.kind == "CreateTableAsStmt":
            created.add(str(statement.node.into.rel.relname))
    return created


def _suppress(
    unit: RevisionUnit,
    hits: Sequence[tuple[Rule, Hit]],
    config: LintConfig,
    known: set[str],
) -> tuple[list[Finding], list[dict[str, Any]]]:
    from abmigrate.lint.registry import rule_by_code

    suppressions, problems = parse_suppressions(unit.source, known)
    findings: list[Finding] = []
    silenced: list[dict[str, Any]] = []
    for rule, hit in hits:
        covering = _covering(suppressions, rule.code, hit.line)
        finding = _finding(rule, hit, unit.revision, unit.path, config)
        if covering is None:
            findings.append(finding)
        else:
            covering.used.add(rule.code)
            silenced.append({**finding.to_record(), "reason": covering.reason})
    meta = rule_by_code()
    if config.enabled("AM002"):
        for line, problem in problems:
            findings.append(
                _finding(meta["AM002"](), Hit(problem, line), unit.revision, unit.path, config)
            )
    if config.enabled("AM001"):
        for suppression in suppressions:
            for code in suppression.codes:
                if code not in suppression.used and config.enabled(code):
                    hit = Hit(f"ignore[{code}] suppresses nothing", suppression.line)
                    findings.append(
                        _finding(meta["AM001"](), hit, unit.revision, unit.path, config)
                    )
    return findings, silenced


def _covering(suppressions: list[Suppression], code: str, line: int | None) -> Suppression | None:
    for suppression in suppressions:
        if suppression.covers(code, line):
            return suppression
    return None


def _finding(
    rule: Rule, hit: Hit, revision: str | None, path: Path | None, config: LintConfig
) -> Finding:
    return Finding(
        code=rule.code,
        name=rule.name,
        severity=config.severity.get(rule.code, rule.severity),
        message=hit.message,
        hint=rule.hint,
        revision=revision,
        path=str(path) if path else None,
        line=hit.line,
        destructive=rule.destructive,
        sql=hit.sql,
        tables=hit.tables,
    )


def _advance(state: SchemaState, statements: Iterable[Statement]) -> None:
    """Apply what one revision did to the tracked schema state."""
    for statement in statements:
        node, kind = statement.node, statement.kind
        if kind == "CreateStmt":
            state.tables.add(str(node.relation.relname))
        elif kind == "CreateEnumStmt":
            state.enums[enum_name(node.typeName)] = tuple(
                getattr(value, "sval", "") for value in node.vals or ()
            )
        elif kind == "AlterEnumStmt":
            name = enum_name(node.typeName)
            values = state.enums.get(name, ())
            if node.oldVal and node.newVal:
                state.enums[name] = tuple(node.newVal if v == node.oldVal else v for v in values)
            elif node.newVal and node.newVal not in values:
                state.enums[name] = (*values, node.newVal)
        elif kind == "DropStmt":
            removed = label(node.removeType)
            for obj in node.objects or ():
                name = enum_name(getattr(obj, "names", obj))
                if removed == "OBJECT_TYPE":
                    state.enums.pop(name, None)
                elif removed == "OBJECT_TABLE":
                    state.tables.discard(name)
        elif kind == "RenameStmt":
            renamed = label(node.renameType)
            if renamed == "OBJECT_TABLE" and table_of(node) in state.tables:
                state.tables.discard(str(table_of(node)))
                state.tables.add(str(node.newname))
            elif renamed == "OBJECT_TYPE":
                old = enum_name(getattr(node.object, "names", node.object))
                if old in state.enums:
                    state.enums[str(node.newname)] = state.enums.pop(old)
        elif kind == "AlterTableStmt":
            table = str(table_of(node))
            for command in node.cmds or ():
                subtype = label(command.subtype)
                if subtype == "AT_AddConstraint" and label(command.def_.contype) == "CONSTR_CHECK":
                    column = is_not_null_check(command.def_.raw_expr)
                    if column and command.def_.skip_validation:
                        state.pending_not_null_checks[(table, command.def_.conname or "")] = column
                    elif column:
                        state.not_null_checked.add((table, column))
                elif subtype == "AT_ValidateConstraint":
                    column = state.pending_not_null_checks.pop((table, command.name), None)
                    if column:
                        state.not_null_checked.add((table, column))
