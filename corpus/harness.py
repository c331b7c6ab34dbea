"""Run real public Alembic histories through abmigrate and plain Alembic, side by side.

For each project (corpus/projects/<name>.toml) and dialect, on fresh databases: A is driven by
abmigrate, B by plain ``alembic`` as the reference. Every step's outcome (pass, fail or n/a,
exit code, first lines of stderr, the exact command) is recorded and the run goes on to the
next step; the exit code is 1 when any step failed. See docs/compatibility.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corpus.databases import Database, Server
from corpus.projects import (
    DIALECTS,
    ROOT,
    Project,
    ProjectError,
    Venv,
    all_projects,
    ensure_venv,
    write_alembic_ini,
)
from corpus.report import render_markdown, update_doc

DEFAULT_CACHE = ROOT / ".corpus"
DEFAULT_DOC = ROOT / "docs" / "compatibility.md"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/"
STEP_TIMEOUT_S = 1800.0
# known_findings with this `check` are revisions abmigrate cannot render offline, for a
# reason read in the script (the plan --sql step expects exactly these).
PLAN_SQL_FINDING = "plan_sql"

# (name, what passing means). The order is the order they run in.
STEPS: list[tuple[str, str]] = [
    ("heads", "`abmigrate heads` = `alembic heads`"),
    ("history", "`abmigrate history` = `alembic history` (same revisions, same order)"),
    ("status (empty)", "`abmigrate status` current = `alembic current` on the empty database"),
    ("plan --sql", "`abmigrate plan --sql` exits 0 with SQL for every revision"),
    ("lint", "`abmigrate lint` runs (exit 0, or 1 with findings); findings are the project's"),
    ("alembic upgrade head", "the reference: plain `alembic upgrade head` on database B"),
    ("upgrade", "`abmigrate upgrade` exits 0 and the database records head"),
    ("schema = alembic's", "schema dump of A (abmigrate) = schema dump of B (alembic)"),
    ("status (head)", "`abmigrate status` current = `alembic current` = heads, state up to date"),
    ("diagnose", "`abmigrate diagnose` at head says `up_to_date` and leaves the database alone"),
    ("drift --against head", "`abmigrate drift --against head`: no difference (exit 0)"),
    ("drift (models)", "`abmigrate drift` runs (exit 0, or 1 listing the project's own drift)"),
    ("check", "`abmigrate check --skip lint,models_match_head` exits 0, database untouched"),
    ("downgrade -1", "`abmigrate downgrade -1`: exit 0, same revision and schema as alembic's"),
    ("upgrade again", "`abmigrate upgrade` back to head: exit 0, same schema as alembic's"),
]
STEP_NAMES = [name for name, _ in STEPS]

_DROPPED_ENV = (
    "ABMIGRATE_BASELINE",  # only a project's declared `baseline` sets it
    "ABMIGRATE_ENV",
    "ENVIRONMENT",
    "DATABASE_URL",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
)
_HISTORY_LINE = re.compile(r"^(?P<down>.*?) -> (?P<rev>[^\s,]+)")


# --------------------------------------------------------------------------- records


@dataclass
class StepResult:
    step: str
    status: str  # pass | fail | n/a
    detail: str = ""
    command: str | None = None
    exit_code: int | None = None
    stderr: list[str] = field(default_factory=list)
    seconds: float | None = None


@dataclass
class CaseResult:
    project: str
    version: str
    dialect: str
    homepage: str
    versions: dict[str, str] = field(default_factory=dict)
    revisions: int | None = None
    alembic_upgrade_s: float | None = None
    abmigrate_upgrade_s: float | None = None
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ratio(self) -> float | None:
        if self.alembic_upgrade_s and self.abmigrate_upgrade_s is not None:
            return self.abmigrate_upgrade_s / self.alembic_upgrade_s
        return None

    @property
    def failed(self) -> list[StepResult]:
        return [step for step in self.steps if step.status == "fail"]

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["ratio"] = self.ratio
        return record


@dataclass
class Run:
    """One finished command."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    def error_lines(self, limit: int = 5) -> list[str]:
        """The lines that say what went wrong: abmigrate's error + hint, a traceback's end."""
        lines = [line.rstrip() for line in self.stderr.splitlines() if line.strip()]
        for index, line in enumerate(lines):
            if line.startswith("error:"):
                return lines[index : index + limit]
        if any(line.startswith("Traceback") for line in lines):
            return lines[-limit:]
        if lines or self.stdout.lstrip().startswith(("{", "[")):
            return lines[:limit]  # JSON output: the step's detail says what it holds
        return [line for line in self.stdout.splitlines() if line.strip()][-limit:]

    @property
    def first_error(self) -> str:
        if self.timed_out:
            return f"timed out after {self.seconds:.0f}s"
        lines = self.error_lines()
        if not lines:
            return f"exit {self.exit_code}, no output"
        traceback = any(line.startswith("Traceback") for line in self.stderr.splitlines())
        if lines[0].startswith("Traceback") or (traceback and not lines[0].startswith("error:")):
            return lines[-1]  # the exception, below the traceback's last frames
        return lines[0]


class StepFailed(Exception):
    def __init__(self, detail: str, run: Run | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.run = run


class NotApplicable(Exception):
    def __init__(self, detail: str, run: Run | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.run = run


# --------------------------------------------------------------------------- one case


def _short(path: str) -> str:
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


class Case:
    """One project on one dialect: database A for abmigrate, B for plain alembic."""

    def __init__(
        self,
        project: Project,
        venv: Venv,
        dialect: str,
        server: Server,
        workdir: Path,
        log: Callable[[str], None],
    ) -> None:
        self.project = project
        self.venv = venv
        self.dialect = dialect
        self.server = server
        self.workdir = workdir
        self.log = log
        for name, text in project.files.items():
            (workdir / name).write_text(text)
        driver = project.drivers.get(dialect)
        self.a = server.new(dialect, f"{project.name}_{dialect[:2]}_a", driver)
        self.b = server.new(dialect, f"{project.name}_{dialect[:2]}_b", driver)
        self.ini = {
            db.name: write_alembic_ini(
                project, venv, dialect, db.url, workdir / f"alembic-{role}.ini"
            )
            for role, db in (("a", self.a), ("b", self.b))
        }
        self.history: list[str] = []  # newest first, from `alembic history`
        self.parents: dict[str, list[str]] = {}
        self.heads: list[str] = []

    # -- running commands -----------------------------------------------------------

    def env_for(self, db: Database) -> dict[str, str]:
        """The project's own settings naming ``db`` (corpus/projects/<name>.toml [env])."""
        values = {
            "url": db.url,
            "async_url": db.async_url,
            "plain_url": db.plain_url,
            "workdir": str(self.workdir),
        }
        return {key: template.format(**values) for key, template in self.project.env.items()}

    def run(
        self,
        argv: list[str],
        db: Database,
        timeout: float = STEP_TIMEOUT_S,
        extra_env: Mapping[str, str] | None = None,
    ) -> Run:
        project_env = self.env_for(db)
        environment = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        environment.update(project_env)
        environment["PATH"] = f"{self.venv.path / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
        environment["ABMIGRATE_CACHE_DIR"] = str(self.workdir / "abmigrate-cache")
        environment["NO_COLOR"] = "1"
        environment.update(extra_env or {})
        shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in project_env.items())
        command = (shown + " " if shown else "") + shlex.join(_short(arg) for arg in argv)
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        timed_out = False
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        seconds = time.perf_counter() - started
        return Run(command, process.returncode, stdout, stderr, seconds, timed_out)

    def abmigrate(self, *args: str, json_output: bool = True) -> Run:
        argv = [self.venv.bin("abmigrate"), "--alembic-ini", str(self.ini[self.a.name])]
        argv += ["--url", self.a.url]
        if json_output:
            argv += ["--format", "json"]
        if self.project.baseline:
            # The project's own knowledge of how its databases start (corpus/projects/
            # <name>.toml `baseline`), given the way a user without a configuration file
            # gives it; shown in the command line so that the command can be rerun.
            argv = ["env", f"ABMIGRATE_BASELINE={self.project.baseline}", *argv]
        return self.run([*argv, *args], self.a)

    def alembic(self, db: Database, *args: str) -> Run:
        program, *rest = self.project.alembic_command
        argv = [self.venv.bin(program), *rest, "-c", str(self.ini[db.name]), *args]
        return self.run(argv, db)

    def prepare(self, db: Database) -> None:
        self.server.reset(db)
        if self.project.prepare:
            argv = [self.venv.bin("python"), "-c", self.project.prepare]
            result = self.run(argv, db, extra_env={"CORPUS_URL": db.url})
            if result.exit_code != 0:
                raise StepFailed(f"prepare failed: {result.first_error}", result)

    def current(self, db: Database) -> list[str]:
        """What `alembic current` prints for ``db`` (revision ids only)."""
        result = self.alembic(db, "current")
        if result.exit_code != 0:
            raise StepFailed(f"alembic current failed: {result.first_error}", result)
        known = set(self.history)
        return sorted(
            token
            for token in (line.split()[0] for line in result.stdout.splitlines() if line.strip())
            if token in known
        )

    def state(self, db: Database) -> tuple[list[str] | None, list[str]]:
        return self.server.recorded(db), self.server.dump(db)

    def rebuild(self, db: Database, *, downgrade: bool = False) -> None:
        """Bring ``db`` to head (then one step down) with plain alembic, from empty."""
        self.prepare(db)
        steps = (("upgrade", self.project.target), ("downgrade", "-1"))
        for args in steps[: 2 if downgrade else 1]:
            result = self.alembic(db, *args)
            if result.exit_code != 0:
                raise StepFailed(f"alembic {' '.join(args)} failed: {result.first_error}", result)


def _json(run: Run) -> Any:
    try:
        return json.loads(run.stdout)
    except json.JSONDecodeError:
        if run.exit_code != 0:
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run) from None
        first = run.stdout.strip().splitlines()[:1]
        raise StepFailed(f"output is not JSON: {first}", run) from None


def _schema_diff(left: list[str], right: list[str], what: str) -> str | None:
    if left == right:
        return None
    changed = [
        line
        for line in difflib.unified_diff(right, left, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    shown = "; ".join(line[:160] for line in changed[:4])
    return f"{what}: {len(changed)} line(s) differ (- alembic, + abmigrate): {shown}"


def _revisions(ids: list[str]) -> str:
    return ", ".join(ids) if ids else "(none)"


# --------------------------------------------------------------------------- the steps


def run_case(case: Case, result: CaseResult, stop: Callable[[], bool]) -> None:
    a, b = case.a, case.b
    steps: dict[str, Callable[[], StepResult | None]] = {}
    notes: dict[str, str] = {}

    def register(name: str) -> Callable[[Callable[[], StepResult | None]], None]:
        def wrap(function: Callable[[], StepResult | None]) -> None:
            steps[name] = function

        return wrap

    def guard(run: Run, before: tuple[list[str] | None, list[str]], what: str) -> None:
        """Fail when a read-only command changed database A."""
        recorded, dump = case.state(a)
        if recorded != before[0]:
            raise StepFailed(
                f"{what} changed the database --url names: alembic_version "
                f"{_revisions(before[0] or [])} -> {_revisions(recorded or [])}",
                run,
            )
        difference = _schema_diff(dump, before[1], f"{what} changed the database's schema")
        if difference:
            raise StepFailed(difference, run)

    def restore_head(reason: str, expected: list[str] | None = None) -> None:
        """After a failed step, put A back at head with alembic so later steps are fair.

        A is rebuilt when it does not record head, or (``expected``) its schema is not that.
        """
        recorded = case.server.recorded(a)
        if recorded == case.heads and (expected is None or case.server.dump(a) == expected):
            return
        case.rebuild(a)
        notes["after"] = f"A rebuilt at head with alembic after {reason}"

    def passed(run: Run | None, detail: str = "") -> StepResult:
        return StepResult(
            "",
            "pass",
            detail,
            run.command if run else None,
            run.exit_code if run else None,
            [],
            run.seconds if run else None,
        )

    @register("heads")
    def _heads() -> StepResult:
        history = case.alembic(a, "history")
        if history.exit_code != 0:
            raise StepFailed(f"alembic history failed: {history.first_error}", history)
        for line in history.stdout.splitlines():
            match = _HISTORY_LINE.match(line.strip())
            if match:
                rev = match.group("rev")
                down = match.group("down").strip().strip("()")
                parents = [] if down == "<base>" else [p.strip() for p in down.split(",")]
                case.history.append(rev)
                case.parents[rev] = parents
        if not case.history:
            raise StepFailed("alembic history lists no revision", history)
        result.revisions = len(case.history)
        reference = case.alembic(a, "heads")
        tokens = [line.split()[0] for line in reference.stdout.splitlines() if line.strip()]
        case.heads = sorted(token for token in tokens if token in case.parents)
        run = case.abmigrate("heads")
        ours = sorted(head["revision"] for head in _json(run)["heads"])
        if run.exit_code != 0:
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run)
        if ours != case.heads:
            raise StepFailed(f"heads {_revisions(ours)}; alembic: {_revisions(case.heads)}", run)
        return passed(run, _revisions(ours))

    @register("history")
    def _history() -> StepResult:
        run = case.abmigrate("history")
        ours = [entry["revision"] for entry in _json(run)["revisions"]]
        if run.exit_code != 0:
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run)
        if ours != case.history:
            if sorted(ours) == sorted(case.history):
                raise StepFailed("same revisions as alembic history, in another order", run)
            missing = sorted(set(case.history) - set(ours))
            extra = sorted(set(ours) - set(case.history))
            raise StepFailed(
                f"{len(ours)} revisions, alembic {len(case.history)}; missing "
                f"{_revisions(missing[:5])}; extra {_revisions(extra[:5])}",
                run,
            )
        return passed(run, f"{len(ours)} revisions")

    @register("status (empty)")
    def _status_empty() -> StepResult:
        before = case.state(a)
        run = case.abmigrate("status")
        record = _json(run)
        reference = case.current(a)
        if run.exit_code != 0:
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run)
        if sorted(record["current"]) != reference:
            raise StepFailed(
                f"current {_revisions(record['current'])}; alembic current: "
                f"{_revisions(reference)}",
                run,
            )
        guard(run, before, "status")
        return passed(run, f"state {record.get('state')}")

    @register("plan --sql")
    def _plan() -> StepResult:
        before = case.state(a)
        run = case.abmigrate("plan", "--sql")
        record = _json(run)
        if run.exit_code != 0:
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run)
        missing = {
            step["revision"]: str(step.get("sql_error") or "no SQL")
            for step in record["steps"]
            if step.get("sql") is None or step.get("sql_error")
        }
        guard(run, before, "plan --sql")
        total = len(record["steps"])
        # The project's own revisions abmigrate cannot render offline, read in the script
        # (known_findings with check = "plan_sql"): expected exactly.
        known = {
            revision: why
            for (check, revision), why in case.project.expected_findings(case.dialect).items()
            if check == PLAN_SQL_FINDING
        }
        gone = sorted(revision for revision in known if revision not in missing)
        if gone:
            raise StepFailed(
                f"known project findings not reported: {_revisions(gone)} has SQL now", run
            )
        for revision in known:
            missing.pop(revision)
        expected = f"; the project's known findings: {_revisions(sorted(known))}" if known else ""
        if not missing:
            return passed(run, f"{total - len(known)} of {total} steps with SQL{expected}")
        # A revision plain alembic cannot render offline either (a data migration using the
        # connection, SQLite batch mode reflecting a table) may go without SQL; check each.
        renderable: list[str] = []
        checked: list[str] = []
        for revision in list(missing)[:5]:
            parents = case.parents.get(revision, [])
            if len(parents) > 1:
                continue
            target = f"{parents[0]}:{revision}" if parents else revision
            reference = case.alembic(b, "upgrade", target, "--sql")
            checked.append(revision)
            if reference.exit_code == 0:
                renderable.append(revision)
        first = next(iter(missing.items()))
        if renderable:
            raise StepFailed(
                f"{len(missing)} of {total} revision(s) without SQL, among them "
                f"{_revisions(renderable)} that `alembic upgrade PARENT:REV --sql` renders; "
                f"first: {first[0]}: {first[1][:300]}",
                run,
            )
        return passed(
            run,
            f"{total - len(missing) - len(known)} of {total} steps with SQL; {len(missing)}"
            f" without, as with plain alembic --sql (checked {_revisions(checked)}):"
            f" {first[1][:200]}{expected}",
        )

    @register("lint")
    def _lint() -> StepResult:
        run = case.abmigrate("lint")
        if run.exit_code not in (0, 1):
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run)
        findings = _json(run)
        if not isinstance(findings, list):
            raise StepFailed("lint JSON is not a list of findings", run)
        errors = sum(1 for finding in findings if finding.get("severity") == "error")
        return passed(run, f"{len(findings)} finding(s), {errors} error(s)")

    @register("alembic upgrade head")
    def _baseline() -> StepResult:
        run = case.alembic(b, "upgrade", case.project.target)
        result.alembic_upgrade_s = run.seconds
        if run.exit_code != 0:
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run)
        return passed(run, f"{run.seconds:.2f}s")

    @register("upgrade")
    def _upgrade() -> StepResult:
        run = case.abmigrate("upgrade", json_output=False)
        result.abmigrate_upgrade_s = run.seconds
        recorded = case.server.recorded(a)
        if run.exit_code != 0:
            where = _revisions(recorded or [])
            restore_head("the failed upgrade")
            raise StepFailed(f"exit {run.exit_code} (database at {where}): {run.first_error}", run)
        if recorded != case.heads:
            restore_head("the upgrade that did not reach head")
            raise StepFailed(
                f"exit 0 but the database records {_revisions(recorded or [])}, "
                f"not head {_revisions(case.heads)}",
                run,
            )
        return passed(run, f"{run.seconds:.2f}s")

    @register("schema = alembic's")
    def _schema() -> StepResult:
        if "after" in notes:
            raise StepFailed(
                f"not comparable: {notes['after']} (abmigrate's upgrade did not reach head)"
            )
        difference = _schema_diff(case.server.dump(a), case.server.dump(b), "schema")
        if difference:
            raise StepFailed(difference)
        return passed(None, f"{len(case.server.dump(a))} dump lines identical")

    @register("status (head)")
    def _status_head() -> StepResult:
        before = case.state(a)
        run = case.abmigrate("status")
        record = _json(run)
        reference = case.current(a)
        if run.exit_code != 0:
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run)
        if sorted(record["current"]) != reference or reference != case.heads:
            raise StepFailed(
                f"current {_revisions(record['current'])}; alembic current "
                f"{_revisions(reference)}; heads {_revisions(case.heads)}",
                run,
            )
        if record.get("state") != "up_to_date":
            raise StepFailed(f"state {record.get('state')!r}, not 'up_to_date'", run)
        guard(run, before, "status")
        return passed(run, "up_to_date")

    @register("diagnose")
    def _diagnose() -> StepResult:
        before = case.state(a)
        run = case.abmigrate("diagnose")
        record = _json(run)
        guard(run, before, "diagnose")
        if record.get("state") != "up_to_date":
            summary = (record.get("recommendation") or {}).get("summary", "")
            raise StepFailed(
                f"state {record.get('state')!r}, not 'up_to_date': {summary[:300]}", run
            )
        drift = len(record.get("model_drift") or [])
        note = f"up_to_date (exit {run.exit_code}"
        return passed(run, note + (f", {drift} model difference(s))" if drift else ")"))

    @register("drift --against head")
    def _drift_head() -> StepResult:
        before = case.state(a)
        run = case.abmigrate("drift", "--against", case.project.target)
        record = _json(run)
        guard(run, before, "drift --against head")
        differences = record.get("differences") or []
        if run.exit_code != 0 or differences:
            first = differences[0].get("description") if differences else run.first_error
            raise StepFailed(
                f"exit {run.exit_code}, {len(differences)} difference(s); first: {first}", run
            )
        return passed(run, "no difference")

    @register("drift (models)")
    def _drift_models() -> StepResult:
        before = case.state(a)
        run = case.abmigrate("drift")
        if run.exit_code not in (0, 1):
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run)
        record = _json(run)
        guard(run, before, "drift")
        differences = record.get("differences") or []
        return passed(run, f"{len(differences)} model difference(s) (the project's)")

    @register("check")
    def _check() -> StepResult:
        before = case.state(a)
        run = case.abmigrate("check", "--skip", "lint,models_match_head")
        record = _json(run)
        try:
            guard(run, before, "check")
        except StepFailed:
            restore_head("check changed it", before[1])
            raise
        outcomes = record.get("checks") or []
        if not outcomes:
            raise StepFailed(f"exit {run.exit_code}, no check results: {run.first_error}", run)
        found: dict[tuple[str, str], str] = {}
        for outcome in outcomes:
            for failure in outcome.get("failures") or []:
                key = (outcome["name"], str(failure.get("revision") or "-"))
                detail = failure.get("detail") or "; ".join(failure.get("differences") or [])
                found[key] = f"{failure.get('message', '')} {detail}".strip()
        expected = {
            key: why
            for key, why in case.project.expected_findings(case.dialect).items()
            if key[0] != PLAN_SQL_FINDING
        }
        new = {key: text for key, text in found.items() if key not in expected}
        gone = sorted(key for key in expected if key not in found)
        failed_checks = {o["name"] for o in outcomes if o.get("status") == "failed"}
        unexplained = failed_checks - {check for check, _ in found}
        if new or gone or unexplained or (run.exit_code != 0 and not found):
            parts = [f"exit {run.exit_code}"]
            if new:
                parts.append(
                    f"{len(new)} unexpected failure(s): "
                    + " | ".join(f"{c} {r}: {text[:220]}" for (c, r), text in new.items())
                )
            if gone:
                parts.append(
                    "known project findings not reported: "
                    + ", ".join(f"{c} {r} ({expected[(c, r)][:80]})" for c, r in gone)
                )
            reported = [key for key in found if key in expected]
            if reported:
                parts.append(
                    "known ones reported: "
                    + " | ".join(f"{c} {r}: {found[(c, r)][:120]}" for c, r in reported)
                )
            if unexplained or (run.exit_code != 0 and not found):
                parts.append(f"{', '.join(sorted(unexplained)) or run.first_error}")
            raise StepFailed("; ".join(parts), run)
        done = [o["name"] for o in outcomes if o.get("status") == "passed"]
        note = f"passed: {', '.join(done)}"
        if expected:
            note += f"; the project's known findings: {', '.join(f'{c} {r}' for c, r in expected)}"
        return passed(run, note)

    @register("downgrade -1")
    def _downgrade() -> StepResult:
        reference = case.alembic(b, "downgrade", "-1")
        if reference.exit_code != 0:
            notes["no-downgrade"] = "yes"
            raise NotApplicable(
                f"plain alembic cannot downgrade -1 either: {reference.first_error}", reference
            )
        run = case.abmigrate("downgrade", "-1", json_output=False)
        if run.exit_code != 0:
            recorded = case.server.recorded(a)
            case.rebuild(a, downgrade=True)
            raise StepFailed(
                f"exit {run.exit_code} (database at {_revisions(recorded or [])}; rebuilt one "
                f"below head with alembic): {run.first_error}",
                run,
            )
        ours, theirs = case.server.recorded(a), case.server.recorded(b)
        if ours != theirs:
            case.rebuild(a, downgrade=True)
            raise StepFailed(
                f"records {_revisions(ours or [])}; alembic's records {_revisions(theirs or [])}",
                run,
            )
        difference = _schema_diff(case.server.dump(a), case.server.dump(b), "schema")
        if difference:
            case.rebuild(a, downgrade=True)
            raise StepFailed(difference, run)
        return passed(run, f"at {_revisions(ours or [])}")

    @register("upgrade again")
    def _upgrade_again() -> StepResult:
        if "no-downgrade" in notes:
            raise NotApplicable("no downgrade happened (plain alembic cannot downgrade -1)")
        reference = case.alembic(b, "upgrade", case.project.target)
        if reference.exit_code != 0:
            raise NotApplicable(
                f"plain alembic cannot upgrade again: {reference.first_error}", reference
            )
        run = case.abmigrate("upgrade", json_output=False)
        if run.exit_code != 0:
            raise StepFailed(f"exit {run.exit_code}: {run.first_error}", run)
        recorded = case.server.recorded(a)
        if recorded != case.heads:
            raise StepFailed(f"records {_revisions(recorded or [])}, not head", run)
        difference = _schema_diff(case.server.dump(a), case.server.dump(b), "schema")
        if difference:
            raise StepFailed(difference, run)
        return passed(run, f"{run.seconds:.2f}s")

    # -- run them ---------------------------------------------------------------------

    aborted: str | None = None
    try:
        case.prepare(a)
        case.prepare(b)
    except StepFailed as exc:
        aborted = exc.detail
    for name in STEP_NAMES:
        if stop():
            aborted = aborted or "interrupted"
        if aborted is not None:
            result.steps.append(StepResult(name, "fail", f"not run: {aborted}"))
            continue
        if name != "heads" and not case.history:
            result.steps.append(StepResult(name, "fail", "not run: no revision list"))
            continue
        started = time.perf_counter()
        try:
            step = steps[name]() or StepResult(name, "pass")
            step.step = name
        except (StepFailed, NotApplicable) as exc:
            status = "fail" if isinstance(exc, StepFailed) else "n/a"
            run = exc.run
            step = StepResult(
                name,
                status,
                exc.detail,
                run.command if run else None,
                run.exit_code if run else None,
                run.error_lines() if run and status == "fail" else [],
                run.seconds if run else None,
            )
        except Exception as exc:  # a harness problem: recorded, and the run goes on
            step = StepResult(name, "fail", f"harness error: {type(exc).__name__}: {exc}")
        if step.seconds is None:
            step.seconds = time.perf_counter() - started
        result.steps.append(step)
        mark = {"pass": "ok", "fail": "FAIL", "n/a": "n/a"}[step.status]
        case.log(f"  {name:<22} {mark:<4} {step.seconds:6.1f}s  {step.detail[:150]}")


# --------------------------------------------------------------------------- the run


@contextmanager
def _interruptible() -> Iterator[Callable[[], bool]]:
    """SIGTERM/SIGINT stop the run after the current step; the databases are still dropped."""
    stopped = False

    def handler(signum: int, _frame: object) -> None:
        nonlocal stopped
        if stopped:
            raise KeyboardInterrupt
        stopped = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: stopped
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _abmigrate_revision() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + uncommitted changes in src/" if dirty else "")


def run_corpus(
    projects: list[Project],
    dialects: list[str],
    *,
    pg_url: str,
    mysql_url: str = DEFAULT_MYSQL_URL,
    cache: Path,
    reinstall: bool = False,
    keep: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    started = time.perf_counter()
    workroot = Path(tempfile.mkdtemp(prefix="abm-corpus-"))
    server = Server(
        pg_url if "postgresql" in dialects else None,
        workroot,
        mysql_url if "mysql" in dialects else None,
    )
    record: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "abmigrate": _abmigrate_revision(),
        "python": sys.version.split()[0],
        "postgresql": "",
        "mariadb": "",
        "cpus": os.cpu_count(),
        "load": [round(x, 1) for x in os.getloadavg()],
        "projects": [],
        "cases": [],
    }
    try:
        if "postgresql" in dialects:
            record["postgresql"] = server.server_version()
        if "mysql" in dialects:
            record["mariadb"] = server.mysql_version()
        with _interruptible() as stop:
            for project in projects:
                log(f"== {project.name} {project.version}")
                entry: dict[str, Any] = {
                    "name": project.name,
                    "version": project.version,
                    "homepage": project.homepage,
                    "requirements": project.requirements,
                    "dialects": project.dialects,
                    "notes": project.notes.strip(),
                }
                record["projects"].append(entry)
                install_log = cache / "logs" / f"{project.name}-install.log"
                venv: Venv | None = None
                error = ""
                began = time.perf_counter()
                try:
                    venv = ensure_venv(project, cache, reinstall=reinstall, log=install_log)
                    entry["versions"] = venv.versions
                except (ProjectError, subprocess.CalledProcessError) as exc:
                    error = f"install failed: {exc}"
                log(f"  venv ready in {time.perf_counter() - began:.1f}s {error}")
                for dialect in dialects:
                    if dialect not in project.dialects:
                        continue
                    result = CaseResult(project.name, project.version, dialect, project.homepage)
                    record["cases"].append(result)
                    case_started = time.perf_counter()
                    log(f"-- {project.name} on {dialect}")
                    if venv is None:
                        result.steps = [StepResult(n, "fail", error) for n in STEP_NAMES]
                        continue
                    result.versions = dict(venv.versions)
                    workdir = workroot / f"{project.name}-{dialect}"
                    workdir.mkdir()
                    try:
                        case = Case(project, venv, dialect, server, workdir, log)
                    except Exception as exc:
                        detail = f"setup failed: {type(exc).__name__}: {exc}"
                        result.steps = [StepResult(n, "fail", detail) for n in STEP_NAMES]
                        continue
                    run_case(case, result, stop)
                    result.seconds = time.perf_counter() - case_started
                    if keep:
                        log(f"  kept: A={case.a.url} B={case.b.url} workdir={workdir}")
    finally:
        if not keep:
            server.drop_all()
            shutil.rmtree(workroot, ignore_errors=True)
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["cases"] = [case.to_record() for case in record["cases"]]
    return record


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./scripts/corpus",
        description="Run the compatibility corpus (docs/compatibility.md).",
    )
    parser.add_argument("projects", nargs="*", help="project names (default: all)")
    parser.add_argument("--dialect", action="append", choices=DIALECTS, help="repeatable")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("ABMIGRATE_TEST_PG_URL") or DEFAULT_PG_URL,
        help="PostgreSQL server for the run's databases (default: $ABMIGRATE_TEST_PG_URL)",
    )
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("ABMIGRATE_TEST_MYSQL_URL") or DEFAULT_MYSQL_URL,
        help="MariaDB server for the run's databases (default: $ABMIGRATE_TEST_MYSQL_URL)",
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="venvs (.corpus/)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--doc",
        type=Path,
        help="regenerate this document's results (default: docs/compatibility.md, only when "
        "the whole corpus ran)",
    )
    parser.add_argument("--no-doc", action="store_true", help="do not touch the document")
    parser.add_argument("--reinstall", action="store_true", help="reinstall the venvs")
    parser.add_argument("--keep", action="store_true", help="keep databases and work files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    known = {project.name: project for project in all_projects()}
    unknown = [name for name in args.projects if name not in known]
    if unknown:
        print(f"unknown project(s): {', '.join(unknown)} (known: {', '.join(known)})")
        return 2
    projects = [known[name] for name in args.projects] if args.projects else list(known.values())
    dialects = args.dialect or list(DIALECTS)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    record = run_corpus(
        projects,
        dialects,
        pg_url=args.pg_url,
        mysql_url=args.mysql_url,
        cache=args.cache,
        reinstall=args.reinstall,
        keep=args.keep,
        log=log,
    )
    results = args.cache / "results"
    results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2)
    (results / "latest.json").write_text(text)
    if args.json:
        args.json.write_text(text)
    markdown = render_markdown(record, STEPS)
    (results / "latest.md").write_text(markdown)
    whole = not args.projects and not args.dialect
    doc = args.doc or (DEFAULT_DOC if whole else None)
    if doc is not None and not args.no_doc:
        update_doc(doc, markdown)
        log(f"results written to {_short(str(doc))}")
    failed = [
        (case["project"], case["dialect"], step["step"])
        for case in record["cases"]
        for step in case["steps"]
        if step["status"] == "fail"
    ]
    log(f"{len(failed)} failed step(s) in {record['seconds']}s; details: {results / 'latest.md'}")
    return 1 if failed else 0


def load_results(path: Path) -> Mapping[str, Any]:
    loaded: Mapping[str, Any] = json.loads(path.read_text())
    return loaded
