"""The hooks in .pre-commit-hooks.yaml, run as pre-commit runs them (their `entry`, in the
project's folder) on a git repository with a new revision file."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOOKS_FILE = Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml"


def hooks() -> dict[str, list[str]]:
    """id -> entry arguments after `abmigrate` (the file is flat: one mapping per hook)."""
    text = HOOKS_FILE.read_text()
    ids = re.findall(r"^- id: (\S+)$", text, re.MULTILINE)
    entries = re.findall(r"^  entry: (.+)$", text, re.MULTILINE)
    assert len(ids) == len(entries) == 2
    parsed = {hook: shlex.split(entry) for hook, entry in zip(ids, entries, strict=True)}
    assert all(args[0] == "abmigrate" for args in parsed.values())
    return {hook: args[1:] for hook, args in parsed.items()}


def git_repo(path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "start")


NEW_REVISION = '''"""index suppliers by name"""
from alembic import op

revision = "c5e0000000f1"
down_revision = "c5e0000000e5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_suppliers_name", "suppliers", ["name"])


def downgrade() -> None:
    op.drop_index("ix_suppliers_name", table_name="suppliers")
'''


def test_lint_hook_lints_only_the_revision_files_changed(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_branched_merge")
    git_repo(project)
    lint = hooks()["abmigrate-lint"]
    clean = run_cli(*lint, cwd=project)
    assert clean.exit_code == 0, clean  # the committed history is not linted again
    (project / "migrations" / "versions" / "c5e0000000f1.py").write_text(NEW_REVISION)
    changed = run_cli(*lint, cwd=project)
    assert changed.exit_code == 1, changed
    assert "AM101" in changed.stdout and "c5e0000000f1" in changed.stdout
    assert "c5e0000000e2" not in changed.stdout  # its own AM101 is old news


def test_single_head_hook_fails_on_two_heads(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    single_head = hooks()["abmigrate-single-head"]
    two_heads = copy_scenario("check_two_heads")
    result = run_cli(*single_head, cwd=two_heads)
    assert result.exit_code == 1, result
    assert "c3c0000000c2, c3c0000000c3" in result.stdout
    merged = copy_scenario("check_branched_merge")
    assert run_cli(*single_head, cwd=merged).exit_code == 0
