"""What state is this database really in? Evidence first, then the command that fixes it.

:func:`diagnose` gathers, without writing anything to the database:

- the revision graph's health (heads, roots, dangling parents, ids too long);
- what the database records (``alembic_version`` rows, unknown revisions, several rows);
- which revision the live schema matches: fingerprints (:mod:`abmigrate.db.fingerprint`) of the
  live schema and of every revision's replay (:mod:`abmigrate.state.replay`, cached) are compared —
  an exact match, or the nearest revisions with what is extra and what is missing;
- a partially applied revision: the live schema lies between a revision and its child (some
  of the child's changes present, others not — MariaDB/MySQL and SQLite cannot roll DDL
  back), a leftover ``_alembic_tmp_*`` batch table, or a journal entry that never finished;
- drift against the models (:func:`abmigrate.state.drift.compare_to_models`), when there are models;

and classifies it into one ``state`` with a :class:`Recommendation` naming the exact command.

States: ``uninitialized``, ``up_to_date``, ``behind``, ``unstamped``, ``unknown_revision``,
``wrong_stamp``, ``partially_applied``, ``hand_changes``, ``no_match``, ``graph_broken``,
``not_compared`` (no scratch database could be created for the replay),
``baseline_undeclared`` (a revision fails to replay because objects it expects are missing:
the history starts from a database that is not empty, and the project has not declared how
that baseline is made, see :mod:`abmigrate.config.baseline`).

"base" is the schema before the first revision: empty, or the declared baseline's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abmigrate.db.fingerprint import Difference, Fingerprint, changed_keys, diff
from abmigrate.errors import ConnectionFailed
from abmigrate.results import Record

if TYPE_CHECKING:
    from abmigrate.config.workspace import Workspace
    from abmigrate.state.replay import Replayed

__all__ = [
    "HEALTHY_STATES",
    "Diagnosis",
    "PartialApplication",
    "Recommendation",
    "RevisionMatch",
    "diagnose",
    "find_partial",
]

HEALTHY_STATES = frozenset({"uninitialized", "up_to_date", "behind"})
NEAREST = 3
BATCH_TEMP_PREFIX = "_alembic_tmp_"
# How the drivers say "that table/column/type is not there" (PostgreSQL, SQLite, MySQL,
# SQLAlchemy's reflection in batch mode).
_MISSING_OBJECT = re.compile(
    r"does not exist|no such (table|column)|doesn't exist|Unknown table|UndefinedTable"
    r"|UndefinedColumn|UndefinedObject|NoSuchTableError|Can't DROP|check that (it|column/key)"
    r" exists",
    re.IGNORECASE,
)
ANCESTOR_FAILED = "an ancestor failed to replay"


@dataclass
class Recommendation(Record):
    summary: str
    commands: list[str] = field(default_factory=list)


@dataclass
class RevisionMatch(Record):
    """How far the live schema is from one revision's schema."""

    revision: str
    distance: int
    differences: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PartialApplication(Record):
    """A revision whose changes are in the database only in part."""

    revision: str
    parent: str
    applied: list[str]
    not_applied: list[str]
    evidence: str


@dataclass
class Diagnosis(Record):
    environment: str
    database: str
    dialect: str
    state: str
    recommendation: Recommendation
    recorded: list[str] | None
    unknown: list[str]
    heads: list[str]
    graph_problems: list[dict[str, Any]]
    fingerprint: str
    tables: int
    exact_matches: list[str]
    nearest: list[RevisionMatch]
    partial: PartialApplication | None = None
    # The declared baseline the replays started from (None: an empty database).
    baseline: str | None = None
    unfinished_runs: list[dict[str, Any]] = field(default_factory=list)
    models: str | None = None
    model_drift: list[dict[str, Any]] | None = None
    replay_errors: dict[str, str] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    replayed: int = 0
    cached: int = 0

    @property
    def healthy(self) -> bool:
        # Model drift is expected while revisions are pending; at head it needs a revision.
        drifted = self.state == "up_to_date" and bool(self.model_drift)
        return (
            self.state in HEALTHY_STATES
            and not self.graph_problems
            and not drifted
            and not self.unfinished_runs
        )


def diagnose(workspace: Workspace, *, with_models: bool = True) -> Diagnosis:
    """Diagnose the workspace's database. Reads only; scratch databases hold the replays."""
    from abmigrate.bridge.plan import unknown_revisions
    from abmigrate.db.fingerprint import fingerprint_url
    from abmigrate.state.replay import BASE, expected_fingerprints

    project = workspace.project
    problems = project.graph_problems()
    heads = [] if any(p.code == "graph_broken" for p in problems) else project.heads()
    recorded = workspace.recorded_revisions()
    rows = recorded or []
    unknown = unknown_revisions(project, rows)
    live = fingerprint_url(workspace.url, schema=workspace.project.version_table.schema)
    result = Diagnosis(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        dialect=workspace.environment.dialect,
        state="no_match",
        recommendation=Recommendation(""),
        recorded=recorded,
        unknown=unknown,
        heads=heads,
        graph_problems=[problem.to_record() for problem in problems],
        fingerprint=live.digest,
        tables=len(live.tables),
        exact_matches=[],
        nearest=[],
        baseline=(workspace.settings.baseline.describe() if workspace.settings.baseline else None),
        unfinished_runs=_unfinished_runs(workspace.url),
    )
    if any(p.code == "graph_broken" for p in problems):
        result.state = "graph_broken"
        broken = next(p for p in problems if p.code == "graph_broken")
        result.recommendation = Recommendation(
            f"the revision graph cannot be read ({broken.message}): fix the scripts'"
            " down_revision first; nothing can be matched until then",
            [],
        )
        return result

    try:
        replayed = expected_fingerprints(workspace)
    except ConnectionFailed as exc:
        # No scratch database (no CREATEDB right, say): what was gathered is still worth
        # showing, but no revision can be matched.
        result.state = "not_compared"
        result.replay_errors["(scratch database)"] = exc.message
        result.recommendation = Recommendation(
            f"the migrations could not be replayed: {exc.message}",
            [exc.hint] if exc.hint else [],
        )
        if with_models and live.objects:
            _model_drift(result, workspace)
        return result
    result.replay_errors = dict(replayed.errors)
    result.replayed, result.cached = len(replayed.computed), replayed.cached
    order = [BASE, *(script.revision for script in reversed(project.revisions()))]
    fingerprints = {r: replayed.fingerprints[r] for r in order if r in replayed.fingerprints}
    result.exact_matches = [r for r, fp in fingerprints.items() if fp.digest == live.digest]
    # Counting differing objects is cheap; listing them is done for the few that are shown.
    counts = {r: len(changed_keys(fp, live)) for r, fp in fingerprints.items()}
    position = {r: index for index, r in enumerate(order)}
    ranked = sorted(counts, key=lambda r: (counts[r], -position[r]))
    distances = _Differences(fingerprints, live)
    result.nearest = [
        RevisionMatch(r, counts[r], [d.to_record() for d in distances[r]]) for r in ranked[:NEAREST]
    ]
    result.partial = find_partial(workspace, fingerprints, live, rows)
    leftovers = [t for t in live.tables if t.startswith(BATCH_TEMP_PREFIX)]
    if leftovers:
        result.evidence.append(
            f"leftover batch table(s) {', '.join(leftovers)}: a SQLite batch migration stopped"
            " half way"
        )
    for run in result.unfinished_runs:
        result.evidence.append(
            f"journal run {run.get('run_id')} started {run.get('started_at')} never finished"
            f" (outcome {run.get('outcome')}, in flight: {run.get('in_flight') or 'unknown'})"
        )
    _classify(result, workspace, fingerprints, distances, replayed, rows, live)
    if result.unfinished_runs and result.state in HEALTHY_STATES:
        result.recommendation.summary += (
            f"; {len(result.unfinished_runs)} journal run(s) never finished (the process died?):"
            " the schema shows no trace of a partial revision, but check the run"
        )
        result.recommendation.commands.append("abmigrate journal")
    if with_models and live.objects:
        _model_drift(result, workspace)
    return result


# --------------------------------------------------------------------------- partial


class _Differences(dict[str, list[Difference]]):
    """diff(revision's fingerprint, live), computed on first use."""

    def __init__(self, fingerprints: dict[str, Fingerprint], live: Fingerprint) -> None:
        super().__init__()
        self.fingerprints = fingerprints
        self.live = live

    def __missing__(self, revision: str) -> list[Difference]:
        self[revision] = diff(self.fingerprints[revision], self.live)
        return self[revision]


def find_partial(
    workspace: Workspace,
    fingerprints: dict[str, Fingerprint],
    live: Fingerprint,
    recorded: list[str],
) -> PartialApplication | None:
    """A revision C whose parent P's schema plus *some* of C's changes is the live schema.

    Every object where live differs from P must be one C changes, in the state C gives it,
    and at least one of C's changes must be absent. Edges from a recorded revision first.
    """
    from abmigrate.state.replay import BASE

    project = workspace.project
    edges: list[tuple[str, str]] = []
    for script in reversed(project.revisions()):
        parents = list(script._normalized_down_revisions) or [BASE]
        edges.extend((parent, script.revision) for parent in parents)
    edges.sort(key=lambda edge: edge[0] not in recorded)
    for parent, child in edges:
        if parent not in fingerprints or child not in fingerprints:
            continue
        before, after = fingerprints[parent], fingerprints[child]
        present_keys = changed_keys(before, live)
        if not present_keys:
            continue
        change_keys = changed_keys(before, after)
        if not present_keys <= change_keys:
            continue
        if any(after.objects.get(key) != live.objects.get(key) for key in present_keys):
            continue
        if present_keys == change_keys:
            continue  # all of it is there: that is C itself, not a partial C
        changes, present, remaining = diff(before, after), diff(before, live), diff(after, live)
        applied = [_as_change(d) for d in present]
        not_applied = [_describe_from(d, changes) for d in remaining]
        return PartialApplication(
            revision=child,
            parent=parent,
            applied=applied,
            not_applied=not_applied,
            evidence=(
                f"{len(present)} of {len(changes)} changes of {child} are in the database,"
                f" {len(remaining)} are not"
            ),
        )
    return None


def _key(difference: Difference) -> str:
    return f"{difference.kind} {difference.name}"


def _describe_from(remaining: Difference, changes: list[Difference]) -> str:
    # Phrase what is still to do in the child's terms ("adds column x"), not the live's.
    for change in changes:
        if _key(change) == _key(remaining):
            return _as_change(change)
    return remaining.describe()


def _as_change(difference: Difference) -> str:
    """A difference between a revision's parent and the revision, as what the revision does."""
    text = difference.describe()
    for suffix in (" (in the database only)", " (not in the database)"):
        text = text.removesuffix(suffix)
    if difference.change == "extra":
        return "adds " + text.removeprefix("extra ")
    if difference.change == "missing":
        return "drops " + text.removeprefix("missing ")
    return "changes " + text.removeprefix("changed ")


# --------------------------------------------------------------------------- classify


def _classify(
    result: Diagnosis,
    workspace: Workspace,
    fingerprints: dict[str, Fingerprint],
    distances: _Differences,
    replayed: Replayed,
    rows: list[str],
    live: Fingerprint,
) -> None:
    from abmigrate.state.replay import BASE

    project = workspace.project
    exact = result.exact_matches
    # Several revisions can share a schema (data-only revisions, merges): the newest wins.
    match = exact[-1] if exact else None
    known_rows = [row for row in rows if row not in result.unknown]
    recorded = _recorded_fingerprint(workspace, fingerprints, known_rows, result)
    recorded_match = not result.unknown and recorded is not None and recorded.digest == live.digest

    missing_start = _missing_start(workspace, replayed)
    if missing_start is not None and not recorded_match and match in (None, BASE):
        # Without its baseline nothing after the failing revision has a schema to compare
        # with: calling the baseline's tables hand changes, or advising a restore or a
        # forced stamp to an earlier revision, would be advice without evidence.
        _baseline_undeclared(result, missing_start, replayed.errors[missing_start], known_rows)
        return

    if replayed.errors and not fingerprints.keys() - {BASE}:
        first = next(iter(replayed.errors.items()))
        result.state = "no_match"
        start = (
            f"from the declared {workspace.settings.baseline.describe()}"
            if workspace.settings.baseline is not None
            else "on an empty database"
        )
        result.recommendation = Recommendation(
            f"the migrations cannot be replayed {start} ({first[0]}: {first[1]}),"
            " so the schema cannot be matched to a revision",
            ["abmigrate check"],
        )
        return

    if not rows:
        baseline = workspace.settings.baseline
        # An empty database is one to upgrade, even when the newest revision sharing its
        # schema is not the base (first revisions that change nothing on an empty database,
        # guarded by a look at the tables): a stamp would skip whatever else they do.
        if not live.objects and (match in (None, BASE) or BASE in exact):
            result.state = "uninitialized"
            summary = "the database is empty and records no revision: apply the migrations"
            if baseline is not None:
                summary = (
                    "the database is empty and records no revision; the migrations start"
                    f" from the {baseline.describe()}: create it the project's way, then"
                    " apply the migrations"
                )
            result.recommendation = Recommendation(summary, ["abmigrate upgrade"])
            return
        if match == BASE and baseline is not None:
            result.state = "uninitialized"
            result.recommendation = Recommendation(
                f"the database holds the {baseline.describe()} and records no revision:"
                " apply the migrations",
                ["abmigrate upgrade"],
            )
            return
        if match is not None and match != BASE:
            result.state = "unstamped"
            result.recommendation = Recommendation(
                f"the schema matches {match} exactly but no revision is recorded:"
                f" record it{_then_upgrade(project, match)}",
                [f"abmigrate stamp {match}", *_upgrade_after(project, match)],
            )
            return
    elif recorded_match:
        current = ", ".join(known_rows)
        if set(known_rows) <= set(project.heads()) and not _pending(project, known_rows):
            result.state = "up_to_date"
            result.recommendation = Recommendation(
                f"the schema matches the recorded revision {current} (head)", []
            )
        else:
            result.state = "behind"
            result.recommendation = Recommendation(
                f"the schema matches the recorded revision {current}; newer revisions are pending",
                ["abmigrate plan", "abmigrate upgrade"],
            )
        return
    elif recorded is None and any(row in replayed.errors for row in known_rows):
        # The recorded revision cannot be replayed: an exact match with an earlier revision
        # is no proof that the record is wrong, so no stamp below it is advised.
        _unverifiable(result, known_rows, replayed)
        return
    elif match is not None:
        recorded_text = ", ".join(rows)
        if result.unknown:
            result.state = "unknown_revision"
            summary = (
                f"the database records {recorded_text}, which no script defines (renamed or"
                f" deleted after it was applied); its schema matches {match} exactly"
            )
        else:
            result.state = "wrong_stamp"
            summary = f"the database records {recorded_text} but its schema matches {match} exactly"
        result.recommendation = Recommendation(
            summary
            + f": record the revision the schema really is at{_then_upgrade(project, match)}",
            [f"abmigrate stamp {match}", *_upgrade_after(project, match)],
        )
        return

    partial = result.partial
    if partial is not None:
        result.state = "partially_applied"
        restore = ["abmigrate backups", "abmigrate restore BACKUP_ID"]
        result.recommendation = Recommendation(
            f"revision {partial.revision} was applied only in part ({partial.evidence}):"
            f" either finish it by hand (still to do: {'; '.join(partial.not_applied)}) and"
            f" record it, or undo the part applied and record {partial.parent} and upgrade"
            " again, or restore the last backup",
            [
                f"abmigrate stamp {partial.revision}   # after finishing it by hand",
                f"abmigrate stamp {partial.parent} && abmigrate upgrade   # after undoing",
                *restore,
            ],
        )
        return

    # No exact match: compare with what is recorded (or the nearest revision).
    reference: str | None = ", ".join(known_rows) if recorded is not None else None
    if reference is not None and recorded is not None:
        differences = diff(recorded, live)
    else:
        reference = result.nearest[0].revision if result.nearest else None
        differences = distances[reference] if reference else []
    extra = [d for d in differences if d.change == "extra"]
    if reference is not None and differences and len(extra) == len(differences):
        result.state = "hand_changes"
        objects = ", ".join(f"{d.kind} {d.name}" for d in extra)
        from_recorded = recorded is not None
        # A forced stamp is advised only to a database that records nothing: never below
        # (or beside) a revision the database records.
        advise_stamp = not from_recorded and not rows
        stamp_note = "" if from_recorded else f" (the schema is {reference} plus these)"
        result.recommendation = Recommendation(
            f"{len(extra)} object(s) were created outside the migrations{stamp_note}: {objects}."
            " Capture them in a revision (it will be recorded here without running, since"
            " they already exist), or drop them",
            [
                *(
                    []
                    if not advise_stamp
                    else [
                        f"abmigrate stamp {reference} --force"
                        " --reason 'schema is this revision plus hand-made objects'"
                    ]
                ),
                'abmigrate diagnose --write-revision -m "capture hand-applied changes"',
            ],
        )
        return
    result.state = "no_match"
    nearest = result.nearest[0] if result.nearest else None
    where = (
        f"; nearest is {nearest.revision} ({nearest.distance} object(s) differ)" if nearest else ""
    )
    failed = [row for row in known_rows if row in replayed.errors]
    if known_rows and (recorded is None or failed):
        _unverifiable(result, known_rows, replayed)
        return
    result.recommendation = Recommendation(
        f"the schema matches no revision{where}. Restore a backup taken at a known revision,"
        " or capture the differences in a new revision",
        [
            "abmigrate backups",
            "abmigrate restore BACKUP_ID",
            'abmigrate diagnose --write-revision -m "capture hand-applied changes"',
        ],
    )


def _missing_start(workspace: Workspace, replayed: Replayed) -> str | None:
    """The oldest revision that fails to replay because something it expects is missing,
    when the project declares no baseline (with one, a failure is the revision's own)."""
    if workspace.settings.baseline is not None:
        return None
    for script in reversed(workspace.project.revisions()):  # oldest first
        error = replayed.errors.get(script.revision)
        if error is not None and error != ANCESTOR_FAILED and _MISSING_OBJECT.search(error):
            return str(script.revision)
    return None


def _baseline_undeclared(
    result: Diagnosis, revision: str, error: str, known_rows: list[str]
) -> None:
    from abmigrate.config.baseline import BASELINE_ENV

    result.state = "baseline_undeclared"
    records = f"the database records {', '.join(known_rows)}; " if known_rows else ""
    result.recommendation = Recommendation(
        f"{records}the migrations cannot be replayed on an empty database: {revision} expects"
        f" objects no earlier revision creates ({error}). The history starts from a database"
        " that is not empty (metadata.create_all, an older tool): declare how that baseline"
        " is made, with baseline = 'package.module:Base.metadata' (create_all),"
        " 'package.module:function' (called with a connection) or 'baseline.sql' in"
        f" [tool.abmigrate] (or ${BASELINE_ENV}), so that replays start from it",
        ["abmigrate diagnose   # after declaring the baseline"],
    )


def _unverifiable(result: Diagnosis, known_rows: list[str], replayed: Replayed) -> None:
    # The recorded revision could not be replayed here: the schema is not proven wrong,
    # only uncheckable. Restoring a backup or stamping lower would be advice without evidence.
    result.state = "no_match"
    failed = [row for row in known_rows if row in replayed.errors]
    why = replayed.errors.get(failed[0], "") if failed else "its replay is not available"
    result.recommendation = Recommendation(
        f"the database records {', '.join(known_rows)}, but the migrations up to it cannot"
        f" be replayed ({why}), so its schema cannot be checked against it; `abmigrate"
        " check` shows the failing revision",
        ["abmigrate check"],
    )


def _recorded_fingerprint(
    workspace: Workspace,
    fingerprints: dict[str, Fingerprint],
    known_rows: list[str],
    result: Diagnosis,
) -> Fingerprint | None:
    """The schema the recorded rows stand for (several rows: branches applied unmerged)."""
    from abmigrate.errors import AbmigrateError
    from abmigrate.state.replay import expected_state_fingerprint

    if len(known_rows) == 1:
        return fingerprints.get(known_rows[0])
    if len(known_rows) > 1:
        try:
            return expected_state_fingerprint(workspace, known_rows)
        except AbmigrateError as exc:
            result.replay_errors[", ".join(known_rows)] = exc.message
    return None


def _pending(project: Any, rows: list[str]) -> bool:
    return bool(project.upgrade_steps("heads", rows))


def _then_upgrade(project: Any, revision: str) -> str:
    return ", then upgrade" if revision not in project.heads() else ""


def _upgrade_after(project: Any, revision: str) -> list[str]:
    return ["abmigrate upgrade"] if revision not in project.heads() else []


# --------------------------------------------------------------------------- extras


def _unfinished_runs(url: str) -> list[dict[str, Any]]:
    """Journal rows of runs that never finished (the journal table, when it exists)."""
    from sqlalchemy import inspect, text

    from abmigrate.db.database import connect, sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.exists():
        return []
    with connect(url) as connection:
        inspector = inspect(connection)
        if not inspector.has_table("abmigrate_journal"):
            return []
        columns = {column["name"] for column in inspector.get_columns("abmigrate_journal")}
        if not {"run_id", "finished_at", "outcome"} <= columns:
            return []
        wanted = [c for c in ("run_id", "started_at", "outcome", "in_flight") if c in columns]
        rows = connection.execute(
            text(
                f"SELECT {', '.join(wanted)} FROM abmigrate_journal"
                " WHERE finished_at IS NULL OR outcome = 'running'"
            )
        ).mappings()
        return [dict(row) for row in rows]


def _model_drift(result: Diagnosis, workspace: Workspace) -> None:
    from abmigrate.bridge.models import load_models
    from abmigrate.errors import AbmigrateError
    from abmigrate.state.drift import compare_url_to_models

    try:
        source = load_models(workspace)
    except AbmigrateError as exc:
        result.evidence.append(f"models not compared: {exc.message}")
        return
    if source is None:
        return
    result.models = source.origin
    differences = compare_url_to_models(
        workspace.url,
        source.metadata,
        include_object=source.include_object,
        include_name=source.include_name,
    )
    result.model_drift = [d.to_record() for d in differences]
    if differences and result.state == "up_to_date":
        result.recommendation.summary += (
            f"; the models differ from the database in {len(differences)} place(s):"
            " generate a revision for them"
        )
        result.recommendation.commands.append(
            'abmigrate revision --autogenerate -m "describe the model change"'
        )
