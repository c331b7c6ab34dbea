"""The compatibility corpus's CI subset: optuna's real history, from PyPI, through abmigrate.

Runs ``python -m corpus optuna --dialect D`` (the same harness as ``./scripts/corpus``; see
docs/compatibility.md) and asserts that every step passes: status/heads/history agree with
alembic, plan --sql, lint, upgrade gives plain alembic's schema, downgrade -1 and upgrade
again, check, diagnose and drift. The project's venv is created under ``.corpus/`` on first
use (pip reaches PyPI) and reused afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "optuna"
# First use installs optuna into its venv (about a minute); each dialect's steps take 1-3 min.
TIMEOUT_S = 1500


def _describe(case: dict[str, object], step: dict[str, object]) -> str:
    lines = [f"{case['project']} {case['dialect']} · {step['step']}: {step['detail']}"]
    if step.get("command"):
        lines.append(f"  $ {step['command']}")
        lines.append(f"  exit code {step['exit_code']}")
        lines.extend(f"  {line}" for line in step.get("stderr") or [])  # type: ignore[union-attr]
    return "\n".join(lines)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    "dialect", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
)
def test_every_corpus_step_passes(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    results = tmp_path / "corpus.json"
    command = [sys.executable, "-m", "corpus", PROJECT, "--dialect", dialect, "--no-doc"]
    command += ["--json", str(results)]
    if dialect == "postgresql":
        command += ["--pg-url", request.getfixturevalue("pg_server_url")]
    completed = _run(command)
    assert results.exists(), f"the corpus did not finish:\n{completed.stderr[-4000:]}"
    record = json.loads(results.read_text())
    cases = record["cases"]
    assert [(case["project"], case["dialect"]) for case in cases] == [(PROJECT, dialect)]
    steps = cases[0]["steps"]
    assert steps, "no step ran"
    failures = [_describe(cases[0], step) for step in steps if step["status"] != "pass"]
    assert not failures, f"{len(failures)} corpus step(s) did not pass:\n\n" + "\n\n".join(failures)
    assert completed.returncode == 0, completed.stderr[-4000:]


def test_the_cached_revision_graph_answers_what_alembic_answers() -> None:
    # corpus/graph_compare.py in each project's venv: optuna (installed on first use, as
    # above) and every other corpus project whose venv ./scripts/corpus already made.
    venvs = ROOT / ".corpus" / "venvs"
    present = sorted(path.name.rsplit("-", 1)[0] for path in venvs.glob("*-*") if path.is_dir())
    projects = sorted({PROJECT, *present})
    completed = _run([sys.executable, "-m", "corpus.graph_compare", "--install", *projects])
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert f"{PROJECT} (sqlite):" in completed.stderr
    assert "same as alembic" in completed.stderr
