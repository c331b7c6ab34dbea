"""Scratch runs of ``env.py`` in a fresh Python process, for projects that need one.

abmigrate runs ``env.py`` in its own process. During a scratch run (the replays of diagnose,
drift and the replay verification; check's round trips and models check) it points
``sqlalchemy.url``, the handed connection and every environment variable naming the real
database at the scratch database (:func:`abmigrate.bridge.env_run.pointing_env_at`). An
application that read its database URL once and kept it (prefect's settings, read at
import) still reaches the database it read first, once the process has imported it.
:func:`run_scratch_job` then runs the work in a fresh interpreter whose environment names the
scratch database from the start, so the application's first read is the right one.

- Before each job, env.py is run once on the scratch database without executing anything
  (:meth:`AlembicProject.probe`: nothing is created). When it reaches the scratch database,
  the job runs in-process (fast, and what nearly every project gets). When it reaches another
  database (:class:`WrongDatabase`) or fails before configuring anything (a scratch database
  an earlier run cached and that is gone since: "database … does not exist"), the job runs
  in a fresh process instead, and so does every later scratch job of the same project in
  this process. An env.py that is simply broken fails the same way there, and the job
  reports it as it would have in-process.
- The job and its parameters go to the child on standard input (scratch URLs carry
  passwords: never in the arguments), the child's environment is the parent's, already
  pointing at the scratch database; the result comes back as JSON in a private temporary
  file (env.py may print on standard output). What the job reports along the way (a
  revision's fingerprint) is replayed to the parent's handler afterwards.
- An abmigrate error in the child is raised again in the parent with its message, hint and
  exit code; any other exception keeps its type name and first line.

The child is ``python -m abmigrate.isolation``; it creates and drops nothing: the parent
owns the scratch database, and drops it whatever happens to the child.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.errors import AbmigrateError

if TYPE_CHECKING:
    from abmigrate.bridge.project import AlembicProject
    from abmigrate.db.scratch import ScratchDatabase

__all__ = ["Emit", "run_scratch_job"]

# What a job reports on the way: (kind, data), e.g. ("fingerprint", {...}).
Emit = Callable[[str, dict[str, Any]], None]
Job = Callable[["AlembicProject", "ScratchDatabase", dict[str, Any], Emit], dict[str, Any]]

# Job name -> "module:function", imported when run (the modules import this one).
JOBS = {
    "replay_pass": "abmigrate.state.replay:replay_pass_job",
    "replay_to": "abmigrate.state.replay:replay_to_job",
    "round_trip": "abmigrate.check.checks:round_trip_job",
    "upgrade_through": "abmigrate.check.checks:upgrade_through_job",
}

_log = logging.getLogger("abmigrate.isolation")

# alembic.ini files whose env.py needed a fresh process during this process's life.
_NEEDS_FRESH_PROCESS: set[str] = set()


def run_scratch_job(
    job: str,
    params: dict[str, Any],
    *,
    project: AlembicProject,
    scratch: ScratchDatabase,
    on_event: Emit | None = None,
) -> dict[str, Any]:
    """Run ``job`` (a name in :data:`JOBS`) for ``project`` on the empty ``scratch``
    database, in this process when env.py reaches the scratch database from here, else in a
    fresh one whose environment is this one (pointed at the scratch database by the
    caller)."""
    emit = on_event or _ignore
    key = str(project.alembic_ini.resolve())
    if key not in _NEEDS_FRESH_PROCESS and _reaches_scratch_here(project, scratch):
        return _job(job)(project, scratch, params, emit)
    _NEEDS_FRESH_PROCESS.add(key)
    return _in_fresh_process(job, params, project, scratch, emit)


def _reaches_scratch_here(project: AlembicProject, scratch: ScratchDatabase) -> bool:
    """Does env.py, run in this process, reach the scratch database? (Nothing is executed.)"""
    try:
        project.for_url(scratch.url).probe()
    except Exception:
        # WrongDatabase (env.py kept the real database's URL), or env.py failing on what it
        # kept (a scratch database of an earlier job, dropped since): a fresh process
        # starts from the environment, which names this scratch database.
        return False
    return True


def _ignore(kind: str, data: dict[str, Any]) -> None:
    return None


def _job(name: str) -> Job:
    module, function = JOBS[name].split(":")
    found: Job = getattr(importlib.import_module(module), function)
    return found


def _in_fresh_process(
    job: str,
    params: dict[str, Any],
    project: AlembicProject,
    scratch: ScratchDatabase,
    emit: Emit,
) -> dict[str, Any]:
    from abmigrate.db.database import scrub

    with tempfile.TemporaryDirectory(prefix="abm_isolated_") as folder:
        result_path = Path(folder) / "result.json"
        request = {
            "job": job,
            "params": params,
            "alembic_ini": str(project.alembic_ini),
            "x_args": list(project.x_args),
            "flask_app": project.flask_app,
            "scratch": {
                "url": scratch.url,
                "dialect": scratch.dialect,
                "name": scratch.name,
                "server": (
                    scratch._server.render_as_string(hide_password=False)
                    if scratch._server is not None
                    else None
                ),
                "directory": str(scratch._directory) if scratch._directory else None,
                "baseline": _baseline_record(scratch),
                "template": scratch._template,
            },
            "result": str(result_path),
            "verbose": _log.isEnabledFor(logging.DEBUG),
        }
        completed = subprocess.run(
            [sys.executable, "-m", "abmigrate.isolation"],
            input=json.dumps(request),
            env=_child_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        output = scrub((completed.stderr + completed.stdout).strip(), scratch.url)
        if output:
            # What env.py and the libraries printed there: shown with --verbose.
            _log.debug("the fresh process running env.py printed:\n%s", output)
        try:
            answer = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            lines = output.splitlines()
            last = lines[-1] if lines else f"exit code {completed.returncode}"
            raise AbmigrateError(
                f"the fresh process running env.py on the scratch database failed: {last}",
                hint="run the same command with --verbose to see all it printed",
            ) from None
    for kind, data in answer.get("events", []):
        emit(kind, data)
    if "error" in answer:
        raise _error_from(answer["error"])
    result: dict[str, Any] = answer["result"]
    return result


def _child_environment() -> dict[str, str]:
    """The parent's environment (already pointing at the scratch database), with the
    folders the parent imports from that a fresh interpreter would not search (the working
    directory, alembic.ini's ``prepend_sys_path``, an editable checkout)."""
    environment = dict(os.environ)
    prefixes = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    extra = []
    for entry in sys.path:
        folder = os.path.realpath(entry or os.getcwd())
        if not any(folder == p or folder.startswith(p + os.sep) for p in prefixes):
            extra.append(folder)
    if extra:
        previous = environment.get("PYTHONPATH")
        environment["PYTHONPATH"] = os.pathsep.join([*extra, *([previous] if previous else [])])
    return environment


_ERRORS = (
    "abmigrate.bridge.env_run:WrongDatabase",
    "abmigrate.errors:ConfigError",
    "abmigrate.errors:ConnectionFailed",
    "abmigrate.errors:RevisionError",
    "abmigrate.errors:GraphError",
    "abmigrate.errors:MigrationFailed",
)


def _error_record(exc: BaseException) -> dict[str, Any]:
    lines = str(exc).strip().splitlines()
    record: dict[str, Any] = {"type": type(exc).__name__, "message": lines[0] if lines else ""}
    if isinstance(exc, AbmigrateError):
        record.update(message=exc.message, hint=exc.hint, exit_code=exc.exit_code, ours=True)
    return record


def _error_from(record: dict[str, Any]) -> Exception:
    """The child's exception, raised again in the parent as the user would have seen it."""
    if record.get("ours"):
        for spec in _ERRORS:
            module, name = spec.split(":")
            if name == record["type"]:
                cls = getattr(importlib.import_module(module), name)
                error: AbmigrateError = cls(record["message"], record.get("hint"))
                return error
        error = AbmigrateError(record["message"], record.get("hint"))
        error.exit_code = int(record.get("exit_code", error.exit_code))
        return error
    # The project's own exception: same type name and message, as callers report them
    # ("ProgrammingError: relation … does not exist").
    foreign: type[Exception] = type(str(record["type"]), (Exception,), {})
    return foreign(record["message"])


def _baseline_record(scratch: ScratchDatabase) -> dict[str, Any] | None:
    """The declared baseline the scratch database starts from, if any, so that the child
    rebuilds it the same way (a round trip recreates its scratch database)."""
    from abmigrate.config.baseline import Baseline

    baseline = getattr(scratch._prepare, "__self__", None)
    if not isinstance(baseline, Baseline):
        return None
    return {
        "source": baseline.source,
        "origin": baseline.origin,
        "folders": [str(folder) for folder in baseline.folders],
    }


def _child_main() -> int:
    from sqlalchemy.engine import make_url

    from abmigrate.bridge.project import AlembicProject
    from abmigrate.db.scratch import ScratchDatabase

    request = json.loads(sys.stdin.read())
    if request.get("verbose"):
        # As the parent's --verbose: Alembic's lines and abmigrate's own debug lines, on
        # standard error, which the parent shows.
        logging.basicConfig(stream=sys.stderr, format="%(levelname)-5.5s [%(name)s] %(message)s")
        logging.getLogger("abmigrate").setLevel(logging.DEBUG)
        logging.getLogger("alembic").setLevel(logging.INFO)
    events: list[tuple[str, dict[str, Any]]] = []
    answer: dict[str, Any] = {"events": events}
    try:
        given = request["scratch"]
        scratch = ScratchDatabase(
            url=given["url"],
            dialect=given["dialect"],
            name=given["name"],
            _server=make_url(given["server"]) if given["server"] else None,
            _directory=Path(given["directory"]) if given["directory"] else None,
            _template=given.get("template"),
        )
        if given.get("baseline"):
            from abmigrate.config.baseline import Baseline

            declared = given["baseline"]
            scratch._prepare = Baseline(
                source=declared["source"],
                origin=declared["origin"],
                folders=tuple(Path(folder) for folder in declared["folders"]),
            ).apply
        project = AlembicProject(
            Path(request["alembic_ini"]),
            x_args=request["x_args"],
            flask_app=request.get("flask_app"),
        )
        answer["result"] = _job(request["job"])(
            project, scratch, request["params"], lambda kind, data: events.append((kind, data))
        )
    except Exception as exc:
        answer["error"] = _error_record(exc)
    Path(request["result"]).write_text(json.dumps(answer), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
