"""Which revisions to lint: ids, ranges (``a:b``), ``--since REV`` or ``--changed-from GITREF``."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from abmigrate.errors import ConfigError, RevisionError

if TYPE_CHECKING:
    from abmigrate.bridge.project import AlembicProject

__all__ = ["select_revisions"]


def select_revisions(
    project: AlembicProject,
    specs: Sequence[str] = (),
    *,
    since: str | None = None,
    changed_from: str | None = None,
) -> set[str] | None:
    """The revision ids to lint; None means all of them."""
    if not specs and since is None and changed_from is None:
        return None
    chosen: set[str] = set()
    for spec in specs:
        if ":" in spec:
            lower, upper = spec.split(":", 1)
            chosen |= _between(project, lower or None, upper or "heads")
        else:
            chosen.add(project.get(spec).revision)
    if since is not None:
        chosen |= _between(project, since, "heads")
    if changed_from is not None:
        chosen |= _changed(project, changed_from)
    return chosen


def _between(project: AlembicProject, lower: str | None, upper: str) -> set[str]:
    """Revisions after ``lower`` (exclusive) up to ``upper`` (inclusive)."""
    with project._graph_errors():
        lower_id = project.get(lower).revision if lower and lower != "base" else None
        revisions = project.script.revision_map.iterate_revisions(
            upper, lower_id or "base", inclusive=True, implicit_base=True
        )
        return {script.revision for script in revisions if script.revision != lower_id}


def _changed(project: AlembicProject, ref: str) -> set[str]:
    by_path = {
        Path(script.path).resolve(): script.revision
        for script in project.revisions()
        if script.path
    }
    versions = Path(project.script.versions).resolve()
    try:
        diff = _git(versions, "diff", "--name-only", "--relative", ref, "--", ".")
        untracked = _git(versions, "ls-files", "--others", "--exclude-standard", "--", ".")
    except FileNotFoundError:
        raise ConfigError("--changed-from needs git, which is not installed") from None
    changed = {(versions / name).resolve() for name in (diff + untracked) if name}
    return {revision for path, revision in by_path.items() if path in changed}


def _git(cwd: Path, *args: str) -> list[str]:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["git failed"])[0]
        raise RevisionError(
            f"git {' '.join(args[:2])}: {first}",
            hint="--changed-from takes a git ref such as main or HEAD~3",
        )
    return result.stdout.splitlines()
