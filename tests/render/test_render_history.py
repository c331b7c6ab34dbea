"""`abmigrate history` in a terminal: one aligned line per revision, newest first."""

from __future__ import annotations

import io

from abmigrate.render.records import console, render
from abmigrate.results import HistoryEntry, HistoryResult


def _entry(revision: str, parents: list[str], message: str, **flags: object) -> HistoryEntry:
    return HistoryEntry(
        revision=revision,
        down_revisions=parents,
        message=message,
        is_head=bool(flags.get("head")),
        is_merge=len(parents) > 1,
        applied=flags.get("applied"),  # type: ignore[arg-type]
        path=f"versions/{revision}.py",
    )


def test_history_lines_are_aligned_and_marked() -> None:
    result = HistoryResult(
        environment="development",
        database="sqlite:///dev.db",
        entries=[
            _entry("m3", ["a1", "b2"], "merge heads", head=True, applied=False),
            _entry("b2", ["r0"], "add parts.unit", applied=True),
            _entry("a1", ["r0"], "create machines", applied=True),
            _entry("r0", [], "initial schema", applied=True),
        ],
    )
    buffer = io.StringIO()
    render(result, console(file=buffer))
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "development sqlite:///dev.db  (✓ = applied)"
    assert lines[1].split() == ["revision", "parents", "message"]
    assert lines[2] == "· m3        a1, b2   merge heads  (head) (merge)"
    assert lines[3] == "✓ b2        r0       add parts.unit"
    assert lines[5] == "✓ r0        (none)   initial schema"
    # Every message starts in the same column as the header's.
    column = lines[1].index("message")
    assert all(line[column - 2 : column] == "  " for line in lines[2:])
    assert len(lines) == 6
