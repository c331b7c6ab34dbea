"""The lint engine: each revision analysed on its own, in history order.

For every revision (base first) the engine renders ``upgrade()`` offline for PostgreSQL
(:mod:`abmigrate.lint.capture`), builds a :class:`~abmigrate.lint.model.RevisionUnit` with the
schema as earlier revisions left it, runs the selected rules, applies the file's inline
suppressions, and then advances the schema state. Graph rules run once per project.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.bridge.graph import CachedRevision
from abmigrate.lint.capture import OfflineContext, capture_revision, recording
from abmigrate.lint.config import LintConfig
from abmigrate.lint.facts import RevisionFacts, apply_effects, memo_key
from abmigrate.lint.model import Finding, Hit, RevisionUnit, SchemaState, Statement
from abmigrate.lint.preflight import checks_for
from abmigrate.lint.registry import ProjectFacts, Rule, all_rules
from abmigrate.lint.suppressions import Suppression, parse_suppressions
from abmigrate.results import Record

if TYPE_CHECKING:
    from abmigrate.analysis_cache import AnalysisCache
    from abmigrate.bridge.project import AlembicProject
    from abmigrate.bridge.types import Script

__all__ = ["LintResult", "capture_statements", "lint_project"]


@dataclass
class LintResult(Record):
    revisions: list[str]
    findings: list[Finding]
    suppressed: list[dict[str, Any]] = field(default_factory=list)
    # what each linted revision does, parse trees included (revisions captured this time;
    # a revision whose analysis came from the cache has facts only)
    units: dict[str, RevisionUnit] = field(default_factory=dict, repr=False)
    # what each requested revision does, without parse trees: for judging and preflight
    facts: dict[str, RevisionFacts] = field(default_factory=dict, repr=False)

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
    cache: AnalysisCache | None = None,
    parallel: bool = False,
) -> LintResult:
    """Lint ``revisions`` (default: all) of ``project``; never touches a database.

    Every revision of the history is walked (base first) for the schema state, but with a
    ``cache`` a revision is only rendered and parsed when its capture or, for the revisions
    linted, its findings are not cached under the same keys (:mod:`abmigrate.analysis_cache`).

    ``parallel`` (the ``lint`` command's own walk, after which nothing needs Alembic's
    revision map): each revision file is imported alone when it must be captured (each
    process imports only its part; the map would import all of them), and a long walk
    that starts uncached is split in two on a machine with a second core
    (:mod:`abmigrate.lint.fork`): a forked process renders and lints the second part while
    this one does the first; its results are used only where the serial walk would have
    come to the same (else this process walks the second part itself). The second part's
    revisions then have facts, not ``units``.
    """
    config = config or LintConfig()
    rules = [rule() for rule in all_rules() if config.enabled(rule.code)]
    known = {rule.code for rule in all_rules()}
    assume = (
        config.assume_lock_timeout
        if config.assume_lock_timeout is not None
        else assume_lock_timeout
    )
    walker = _Walker(project, config, rules, known, revisions, assume, cache)
    walk = _in_history_order(project)
    with contextlib.ExitStack() as stack:
        walker.stack = stack
        split = _split_point(walker, walk) if parallel else None
        tail = None
        if split is not None:
            from abmigrate.lint.fork import fork_tail, stats

            walker.prepare_fork()
            tail = fork_tail(lambda receive: walker.analyse_alone(walk[split:], receive))
        if tail is None:
            for script in walk:
                walker.step(script)
        else:
            assert split is not None
            try:
                for script in walk[:split]:
                    walker.step(script)
            except BaseException:
                tail.finish(None)  # the forked process stops; this one raises
                raise
            # The tail began from a fresh offline context and an empty memo: its results
            # are the serial walk's only when this part ended there (and rendered cleanly).
            agreed = walker.memo == {} and not walker.failed
            analysed: list[_Analysed] | None = tail.finish(walker.state if agreed else None)
            if analysed is not None and len(analysed) == len(walk) - split:
                stats["merged"] += len(analysed)
                for index, found in enumerate(analysed):
                    walker.step(walk[split + index], found)
            else:
                stats["walked again"] += len(walk) - split
                for script in walk[split:]:
                    walker.step(script)
    result = walker.result
    if cache is not None:
        cache.flush()
    if graph:
        facts_of_graph = _graph_facts(project)
        for rule in rules:
            if rule.scope == "project":
                for hit in rule.check_project(facts_of_graph):
                    if revisions is None or hit.revision in revisions:
                        result.findings.append(_finding(rule, hit, hit.revision, None, config))
    return result


# A walk shorter than this is not split: the fork and the merge cost more than half of it.
PARALLEL_FROM = 100
# The share of the walk this process keeps: besides rendering and linting, it keys and
# keeps every revision's records in the cache, the other part's included (measured on
# bench/lint: a revision costs this process about 0.8 ms of CPU, the forked one 0.6 ms,
# merging one 0.07 ms; the child also pickles its results).
SPLIT_SHARE = 0.42


@dataclass
class _Analysed:
    """One revision rendered and linted (by this process or the forked one)."""

    facts: RevisionFacts
    failed: bool  # the render raised (its results are not cached)
    findings: list[Finding] | None  # None: not linted
    suppressed: list[dict[str, Any]]


class _Walker:
    """The walk's running state: the schema state and Alembic's memo as the revisions so
    far left them, the offline context, the result."""

    def __init__(
        self,
        project: AlembicProject,
        config: LintConfig,
        rules: list[Rule],
        known: set[str],
        revisions: Collection[str] | None,
        assume: bool,
        cache: AnalysisCache | None,
    ) -> None:
        self.project = project
        self.config = config
        self.rules = rules
        self.known = known
        self.revisions = revisions
        self.assume = assume
        self.cache = cache
        self.settings = _config_key(config, assume)
        self.offline: OfflineContext | None = None
        self.state = SchemaState()
        # Alembic's DDL memo (PostgreSQL types created so far) as the walk leaves it, in
        # JSON form: part of each capture's key. None once it holds what JSON cannot say
        # (then the rest of the walk is neither read from nor written to the cache).
        self.memo: dict[str, Any] | None = {}
        self.failed = False  # a render raised
        self.result = LintResult([], [])
        self.stack = contextlib.ExitStack()

    def linted(self, script: Script | CachedRevision) -> tuple[bool, bool]:
        wanted = self.revisions is None or script.revision in self.revisions
        return wanted, wanted and script.revision not in self.config.exclude_revisions

    def capture_key(self, script: Script | CachedRevision) -> str:
        assert self.cache is not None
        return self.cache.key("capture", self.cache.script_key(script), memo_key(self.memo))

    def start_recording(self) -> OfflineContext:
        # Recording starts with the first revision to capture (it imports Alembic's
        # operations; a walk answered from the cache needs neither).
        if self.offline is None:
            self.stack.enter_context(recording())
            self.offline = OfflineContext()
        return self.offline

    def step(self, script: Script | CachedRevision, analysed: _Analysed | None = None) -> None:
        """Walk one revision: from the cache, else from ``analysed`` (the forked
        process's), else rendered and linted here."""
        wanted, linted = self.linted(script)
        # the cache, while the walk so far can be keyed
        store = self.cache if self.memo is not None else None
        capture_key = findings_key = ""
        facts: RevisionFacts | None = None
        found: dict[str, Any] | None = None
        if store is not None:
            capture_key = self.capture_key(script)
            if analysed is None:
                facts = RevisionFacts.from_json(store.get("capture", capture_key))
            if linted:
                findings_key = store.key(capture_key, _state_key(self.state), self.settings)
                if facts is not None:
                    found = _cached_findings(store.get("findings", findings_key))
        if facts is None or (linted and found is None):
            if analysed is None:
                analysed = self.analyse(script, wanted, linted)
            facts = analysed.facts
            if analysed.failed:
                self.failed = True
                store = None  # a failed render may depend on more than the keys
            if store is not None and facts.memo is not None:
                store.put("capture", capture_key, facts.to_json())
            if analysed.findings is not None:
                found = {"findings": analysed.findings, "suppressed": analysed.suppressed}
                if store is not None:
                    record = [_finding_record(finding) for finding in analysed.findings]
                    store.put(
                        "findings",
                        findings_key,
                        {"findings": record, "suppressed": analysed.suppressed},
                    )
        self.memo = facts.memo
        apply_effects(self.state, facts.effects)
        if wanted:
            self.result.facts[script.revision] = facts  # preflight needs it even if excluded
        if linted and found is not None:
            self.result.revisions.append(script.revision)
            self.result.findings.extend(found["findings"])
            self.result.suppressed.extend(found["suppressed"])

    def analyse(self, script: Script | CachedRevision, wanted: bool, linted: bool) -> _Analysed:
        """Render ``script`` with the walk's offline context, then lint it against the
        walk's schema state."""
        offline = self.start_recording()
        if self.memo is not None:
            offline.memo = self.memo
        loaded = _loaded(self.project, script)
        capture = capture_revision(loaded, offline)
        unit = _unit(loaded, capture, self.state.copy(), self.assume)
        facts = RevisionFacts.from_capture(capture.statements, offline.memo)
        if wanted:
            self.result.units[script.revision] = unit
        findings = suppressed = None
        if linted:
            findings, suppressed = self.judge(unit)
        return _Analysed(facts, capture.error is not None, findings, suppressed or [])

    def judge(self, unit: RevisionUnit) -> tuple[list[Finding], list[dict[str, Any]]]:
        hits = [
            (rule, hit)
            for rule in self.rules
            if rule.scope == "revision"
            for hit in rule.check(unit)
        ]
        return _suppress(unit, hits, self.config, self.known)

    # -- the forked part ---------------------------------------------------------------

    def prepare_fork(self) -> None:
        """Import, once for both processes, what rendering and linting a revision imports
        (Alembic and SQLAlchemy, pglast, the rules' helpers)."""
        self.start_recording()
        import pglast  # noqa: F401

        import abmigrate.bridge.plan
        import abmigrate.lint.judge  # noqa: F401

        self.project.script  # noqa: B018  (Alembic's ScriptDirectory, shared)

    def analyse_alone(
        self, tail: Sequence[Script | CachedRevision], receive: Any
    ) -> list[_Analysed] | None:
        """In the forked process: render ``tail`` from a fresh offline context (the memo
        empty), then, given the schema state the first part left (``receive()``; None when
        the parts do not join), lint each revision as the serial walk would."""
        offline = OfflineContext()
        captured = []
        for script in tail:
            loaded = _loaded(self.project, script)
            capture = capture_revision(loaded, offline)
            facts = RevisionFacts.from_capture(capture.statements, offline.memo)
            captured.append((script, loaded, capture, facts))
        state = receive()
        if not isinstance(state, SchemaState):
            return None
        analysed = []
        for script, loaded, capture, facts in captured:
            _, linted = self.linted(script)
            findings = suppressed = None
            if linted:
                unit = _unit(loaded, capture, state.copy(), self.assume)
                findings, suppressed = self.judge(unit)
            analysed.append(_Analysed(facts, capture.error is not None, findings, suppressed or []))
            apply_effects(state, facts.effects)
        return analysed


def _split_point(walker: _Walker, walk: Sequence[Script | CachedRevision]) -> int | None:
    """Where to split the walk in two, or None to walk it in one process: the walk is long,
    its first revision and the one at the split are not cached (a cold run: what the
    split saves is rendering and linting), and a second core is free to use."""
    from abmigrate.lint.fork import can_fork

    if len(walk) < PARALLEL_FROM or not can_fork():
        return None
    split = int(len(walk) * SPLIT_SHARE)
    cache = walker.cache
    if cache is not None:
        first = walker.capture_key(walk[0])  # the memo is empty at both
        if cache.has("capture", first):
            return None
        if cache.has("capture", walker.capture_key(walk[split])):
            return None
    return split


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


def preflight_checks(
    project: AlembicProject,
    revisions: Sequence[str],
    direction: str,
    cache: AnalysisCache | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The data-preflight checks (records of :class:`abmigrate.lint.preflight.PreflightCheck`)
    each revision's ``upgrade()`` or ``downgrade()`` calls for, rendered in ``revisions``'
    order (one offline context, as Alembic would run them), from the cache where it can."""
    offline: OfflineContext | None = None
    memo: dict[str, Any] | None = {}  # as in lint_project: None stops the caching
    found: dict[str, list[dict[str, Any]]] = {}
    with recording():
        for revision in revisions:
            script = project.get(revision)
            key = ""
            if cache is not None and memo is not None:
                key = cache.key("checks", direction, cache.script_key(script), memo_key(memo))
                record = cache.get("checks", key)
                if (
                    isinstance(record, dict)
                    and isinstance(record.get("memo"), dict)
                    and isinstance(record.get("checks"), list)
                ):
                    found[revision], memo = record["checks"], record["memo"]
                    continue
            if offline is None:
                offline = OfflineContext()
            if memo is not None:
                offline.memo = memo
            capture = capture_revision(script, offline, direction)
            checks = [asdict(c) for c in checks_for(capture.statements, direction=direction)]
            found[revision] = checks
            keyed = memo is not None
            memo = offline.memo
            if cache is not None and keyed and memo is not None and capture.error is None:
                cache.put("checks", key, {"checks": checks, "memo": memo})
    if cache is not None:
        cache.flush()
    return found


def _config_key(config: LintConfig, assume: bool) -> str:
    return json.dumps(
        {
            "select": config.select,
            "ignore": config.ignore,
            "severity": dict(sorted(config.severity.items())),
            "assume_lock_timeout": assume,
        },
        sort_keys=True,
    )


def _json_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _state_key(state: SchemaState) -> str:
    return _json_key(
        [
            sorted(state.tables),
            sorted(state.enums.items()),
            sorted(state.not_null_checked),
            sorted((list(key), value) for key, value in state.pending_not_null_checks.items()),
        ]
    )


_FINDING_FIELDS = tuple(item.name for item in fields(Finding))


def _finding_record(finding: Finding) -> dict[str, Any]:
    """``asdict(finding)`` without its deep copy of every value (a cold lint writes one
    record per finding; the cache copies what it keeps)."""
    record = {name: getattr(finding, name) for name in _FINDING_FIELDS}
    if finding.judged is not None:
        record["judged"] = asdict(finding.judged)
    return record


def _cached_findings(record: Any) -> dict[str, Any] | None:
    """A cached findings record as findings and suppressions; None (a miss) if malformed."""
    try:
        findings = [
            Finding(**{**item, "tables": tuple(item.get("tables") or ())})
            for item in record["findings"]
        ]
        suppressed = [dict(item) for item in record["suppressed"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return {"findings": findings, "suppressed": suppressed}


def _in_history_order(project: AlembicProject) -> list[Script] | list[CachedRevision]:
    """Base first, from the cached graph (no revision imported until one must be captured:
    :func:`_loaded`); falls back to every loadable file when the graph itself is broken."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return list(reversed(project.history()))
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


def _loaded(project: AlembicProject, script: Script | CachedRevision) -> Script:
    """Alembic's Script (the module imported) of a revision the walk must capture."""
    if isinstance(script, CachedRevision):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as _in_history_order: Alembic's own warnings
            return project.get(script.revision)
    return script


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
        # The graph does not load at all: the files alone name the parents no script defines.
        facts = [
            (problem.code, problem.message, problem.revisions)
            for problem in project.declared_problems()
            if problem.code == "dangling_parent"
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
    from abmigrate.bridge.plan import message_of

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
