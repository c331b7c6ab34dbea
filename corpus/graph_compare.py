"""The cached revision graph against Alembic's own revision map, on one project or the corpus.

abmigrate answers ``status``, ``current``, ``heads``, ``history`` and the graph checks from a
graph read from the revision files' syntax trees and cached (abmigrate/bridge/graph.py);
everything it answers must be what Alembic's revision map, built by importing every revision,
answers. :func:`compare` asks an :class:`~abmigrate.bridge.project.AlembicProject` each graph
question twice, once from the cache (cold, then warm from a new process's view of the cache)
and once from Alembic, and lists every difference.

    python -m corpus.graph_compare [PROJECT ...]     # corpus projects (default: all)
    python -m corpus.graph_compare --ini ALEMBIC_INI # one project, in this interpreter

A corpus project's revisions import the project's own package, so the comparison runs in the
project's venv (.corpus/venvs/, created as ``./scripts/corpus`` does, or with --install only
when missing), with this checkout's ``src`` first on the path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def compare(alembic_ini: Path, cache_dir: Path) -> list[str]:
    """Every difference between the cached graph's answers and Alembic's, cold and warm
    (Alembic's own warnings, such as a deprecated option, silenced)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _compare(alembic_ini, cache_dir)


def _compare(alembic_ini: Path, cache_dir: Path) -> list[str]:
    from abmigrate import analysis_cache
    from abmigrate.bridge.project import AlembicProject

    alembic = AlembicProject(alembic_ini, graph=False)
    expected = _answers(alembic, alembic)
    differences: list[str] = []
    for run in ("cold", "warm"):
        analysis_cache.forget()  # as a new process would start
        before = analysis_cache.stats.copy()
        cached = AlembicProject(alembic_ini, cache_dir=cache_dir)
        if cached.graph is None:
            return [f"{run}: no cached graph (abmigrate would ask Alembic)"]
        misses = analysis_cache.stats["graph.miss"] - before["graph.miss"]
        imported = analysis_cache.stats["graph.import"] - before["graph.import"]
        if run == "warm" and misses and not imported:
            differences.append(f"warm: {misses} cache miss(es), expected none")
        found = _answers(cached, alembic)
        for question, answer in expected.items():
            if found.get(question) != answer:
                differences.append(
                    f"{run}: {question}: cache {found.get(question)!r}, alembic {answer!r}"
                )
    return differences


def _answers(project: Any, alembic: Any) -> dict[str, Any]:
    """The graph questions abmigrate asks, and their answers (``alembic`` supplies the
    revisions and labels to ask about, the same for both)."""
    ids = [script.revision for script in alembic.revisions()]
    labels = sorted({label for script in alembic.revisions() for label in script.branch_labels})
    answers: dict[str, Any] = {
        "script_dir": project.script_dir,
        "heads": project.heads(),
        "bases": project.bases(),
        "history": project.history(),
        "graph_problems": [(p, p.path, p.parent) for p in project.graph_problems()],
        "declared_problems": [(p, p.path, p.parent) for p in project.declared_problems()],
        "declared_revisions": project.declared_revisions(),
        "applied_set(heads)": project.applied_set(project.heads()),
        "pending([])": [revision.revision for revision in project.pending([])],
    }
    for ident in [*ids, *labels, *(revision[:6] for revision in ids), "nosuchrevision"]:
        answers[f"known({ident})"] = project.known(ident)
    for ident in [*ids, *labels]:
        answers[f"describe({ident})"] = project.describe(ident)
    for revision in ids:
        answers[f"applied_set([{revision}])"] = project.applied_set([revision])
        answers[f"pending([{revision}])"] = [one.revision for one in project.pending([revision])]
    return answers


# -- the corpus ---------------------------------------------------------------------------


def compare_corpus(names: Sequence[str], *, cache: Path, install: bool, log: Any) -> int:
    """Run :func:`compare` for each corpus project (and each of its version locations), in
    the project's venv under ``cache``; 1 when a project differs or could not be compared,
    or none was."""
    from corpus.projects import all_projects, ensure_venv, write_alembic_ini

    projects = [p for p in all_projects() if not names or p.name in names]
    failed = compared = 0
    for project in projects:
        venv_path = cache / "venvs" / f"{project.name}-{project.version}"
        if not venv_path.exists() and not install:
            log(f"{project.name}: no venv at {venv_path} (--install creates it), skipped")
            continue
        with tempfile.TemporaryDirectory() as work:
            venv = ensure_venv(project, cache, reinstall=False, log=Path(work) / "pip.log")
            dialects = sorted(set(project.dialects)) if project.version_locations else ["sqlite"]
            for dialect in dialects:
                ini = write_alembic_ini(
                    project, venv, dialect, "sqlite://", Path(work) / dialect / "alembic.ini"
                )
                # The project's files, in the folder the commands run from, as the corpus
                # run writes them (pgAdmin's wsgi.py: the Flask application its env.py and
                # revisions need, found there as the `flask` command finds it).
                for name, text in project.files.items():
                    (Path(work) / dialect / name).write_text(text, encoding="utf-8")
                # No database is opened, but the project's settings may parse the URL its
                # `env` names at import (airflow's revisions import airflow's settings).
                url = f"sqlite:///{Path(work) / dialect / 'unused.db'}"
                values = {
                    "url": url,
                    "async_url": url.replace("sqlite:", "sqlite+aiosqlite:", 1),
                    "plain_url": url,
                    "workdir": str(Path(work) / dialect),
                }
                env = {
                    **os.environ,
                    **{key: value.format(**values) for key, value in project.env.items()},
                    "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
                }
                done = subprocess.run(
                    [venv.bin("python"), "-m", "corpus.graph_compare", "--ini", str(ini)],
                    cwd=Path(work) / dialect,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                try:
                    result = json.loads(done.stdout)
                except ValueError:
                    log(f"{project.name} ({dialect}): failed\n{done.stderr[-3000:]}")
                    failed += 1
                    continue
                differences = result["differences"]
                state = "same as alembic" if not differences else f"{len(differences)} differ"
                log(f"{project.name} ({dialect}): {result['revisions']} revisions, {state}")
                for line in differences[:20]:
                    log(f"  {line}")
                failed += bool(differences)
                compared += 1
    return 1 if failed or not compared else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.graph_compare", description=__doc__)
    parser.add_argument("projects", nargs="*", help="corpus projects (default: all)")
    parser.add_argument("--ini", type=Path, help="compare this alembic.ini, here")
    parser.add_argument("--install", action="store_true", help="create missing venvs")
    parser.add_argument(
        "--cache", type=Path, default=ROOT / ".corpus", help="where the venvs are (.corpus/)"
    )
    args = parser.parse_args(argv)
    if args.ini is not None:
        import warnings

        from abmigrate.bridge.project import AlembicProject

        warnings.simplefilter("ignore")  # Alembic's (deprecated options): not the point here
        with tempfile.TemporaryDirectory() as cache:
            differences = compare(args.ini, Path(cache))
        count = len(AlembicProject(args.ini, graph=False).revisions())
        print(json.dumps({"revisions": count, "differences": differences}))
        return 1 if differences else 0
    return compare_corpus(
        args.projects,
        cache=args.cache,
        install=args.install,
        log=lambda line: print(line, file=sys.stderr),
    )


if __name__ == "__main__":
    sys.exit(main())
