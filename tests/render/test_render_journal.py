"""The journal and `status` in a terminal 80 columns wide: a 120-revision run is one row,
times read relative, counts and durations in words. Records as the journal stores them."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from abmigrate.render.records import console, last_backup_summary, last_run_summary, render
from abmigrate.render.text import ago, duration, wrap
from abmigrate.results import JournalResult, JournalRun, RunRecord

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
IDS = [f"{number:04x}c0ffee{number:02d}" for number in range(120)]  # 12 characters each


def _run(**changes: Any) -> RunRecord:
    return RunRecord.from_record(_stored(**changes))


def _stored(**changes: Any) -> dict[str, Any]:
    started = NOW - timedelta(minutes=3)
    record: dict[str, Any] = {
        "run_id": "20261128T115700-5505b2ad",
        "environment": "production",
        "database": "postgresql+psycopg://app:***@db/abparts",
        "dialect": "postgresql",
        "direction": "upgrade",
        "target": "head",
        "from_revisions": [],
        "to_revisions": [IDS[-1]],
        "planned": IDS,
        "applied": [
            {"revision": revision, "message": f"step {n}", "elapsed_s": 0.1, "attempts": 1}
            for n, revision in enumerate(IDS)
        ],
        "started_at": started.isoformat(),
        "finished_at": (started + timedelta(seconds=12.1)).isoformat(),
        "outcome": "succeeded",
        "actor": {"user": "alice", "host": "ci-7", "pid": 4242},
        "versions": {"abmigrate": "0.1.0"},
    }
    record.update(changes)
    return record


def _text(result: Any, width: int = 80) -> str:
    buffer = io.StringIO()
    out = console(file=buffer)
    out.width = width
    render(result, out)
    return buffer.getvalue()


def test_a_120_revision_run_is_one_row_at_80_columns() -> None:
    started = NOW - timedelta(minutes=30)
    failed = _run(
        run_id="20261128T113000-0badc0de",
        started_at=started.isoformat(),
        finished_at=(started + timedelta(seconds=0.5)).isoformat(),
        from_revisions=[IDS[9]],
        to_revisions=[IDS[10]],
        planned=IDS[10:13],
        applied=_stored()["applied"][10:11],
        outcome="failed",
        in_flight=IDS[11],
        error="upgrade of revision 000bc0ffee11 failed: RuntimeError: data conflict",
    )
    result = JournalResult("production", "postgresql+psycopg://app:***@db/abparts", "table", [])
    result.runs = [_run(), failed]
    lines = _text(result).splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert "…" not in "\n".join(lines)
    header = lines.index(next(line for line in lines if line.startswith("run ")))
    assert lines[header].split() == ["run", "started", "direction", "from", "→", "to", "outcome"]
    assert lines[header + 1].split() == ["summary"]
    row = lines[header + 2]
    assert row.split() == [
        "5505b2ad", "2026-11-28", "11:57", "upgrade", "(none)", "→", "0077c0ff", "succeeded"
    ]  # fmt: skip
    assert lines[header + 3].strip() == "120 revisions, 12.1 s, by alice"
    assert lines[header + 4].split()[:8] == [
        "0badc0de", "2026-11-28", "11:30", "upgrade", "0009c0ff", "→", "000ac0ff", "failed"
    ]  # fmt: skip
    assert lines[header + 5].strip() == "1 of 3 revisions, 0.5 s, by alice"
    assert lines[header + 6].strip().startswith("error: upgrade of revision 000bc0ffee11")
    # Summaries share the time column under the rows.
    assert lines[header + 3].index("120") == row.index("2026")


def test_a_wide_terminal_gets_a_line_per_run() -> None:
    result = JournalResult("production", "db", "table", [_run()])
    lines = _text(result, width=160).splitlines()
    row = next(line for line in lines if line.startswith("5505b2ad"))
    assert row.endswith("succeeded  120 revisions, 12.1 s, by alice")


def test_a_run_in_full_lists_its_steps_and_what_was_not_run() -> None:
    run = _run(
        planned=IDS[:3],
        applied=_stored()["applied"][:1],
        to_revisions=[IDS[0]],
        outcome="failed",
        in_flight=IDS[1],
        error="RuntimeError: data conflict",
        incident_path="incidents/20261128T115712Z-production.md",
    )
    text = _text(JournalRun("production", "db", "table", run))
    assert text.splitlines()[0] == "run 20261128T115700-5505b2ad: upgrade of production, failed"
    assert "from → to  (none) → 0000c0ffee00 (target head)" in text
    assert "by         alice on ci-7 (pid 4242)" in text
    assert "error      RuntimeError: data conflict" in text
    assert "incident   incidents/20261128T115712Z-production.md" in text
    assert "steps: 1 of 3 revisions applied" in text
    assert "  1  0000c0ffee00  0.1 s  step 0" in text
    assert "  2  0001c0ffee01  —      (failed here)" in text
    assert "  3  0002c0ffee02  —      (not run)" in text


def test_status_summaries_in_words() -> None:
    last = {
        "run_id": "20261128T115700-5505b2ad",
        "direction": "upgrade",
        "outcome": "succeeded",
        "started_at": (NOW - timedelta(minutes=2, seconds=2)).isoformat(),
        "finished_at": (NOW - timedelta(minutes=2)).isoformat(),
        "by": "alice",
        "revisions": 3,
        "planned": 3,
    }
    assert (
        last_run_summary(last, NOW) == "upgrade succeeded 2 min ago, 3 revisions, 2.0 s, by alice"
    )
    stopped = {**last, "outcome": "failed", "revisions": 1, "in_flight": "r2"}
    assert last_run_summary(stopped, NOW).startswith(
        "upgrade failed 2 min ago in r2, 1 of 3 revisions"
    )
    backup = {
        "id": "20261128T115500Z-ab12",
        "created_at": (NOW - timedelta(minutes=5)).isoformat(),
        "size": 12 * 1024 * 1024,
        "revisions": "r3",
        "verified": True,
    }
    assert last_backup_summary(backup, NOW) == (
        "20261128T115500Z-ab12 5 min ago, 12.0 MiB, revision r3, verified"
    )


def test_times_and_durations_read_as_words() -> None:
    assert ago(NOW - timedelta(seconds=2), NOW) == "just now"
    assert ago(NOW - timedelta(seconds=42), NOW) == "42 s ago"
    assert ago(NOW - timedelta(minutes=59, seconds=59), NOW) == "59 min ago"
    assert ago(NOW - timedelta(hours=5), NOW) == "5 h ago"
    assert ago(NOW - timedelta(days=3), NOW) == "3 d ago"
    assert ago(NOW - timedelta(days=90), NOW) == "on 2026-08-30"
    assert ago(NOW + timedelta(seconds=20), NOW) == "just now"  # another host's clock
    assert [duration(s) for s in (0.04, 1.23, 12.06, 245, 3725)] == [
        "0.04 s", "1.2 s", "12.1 s", "4 min 05 s", "1 h 02 min"
    ]  # fmt: skip


def test_wrapping_never_cuts_a_word() -> None:
    url = "sqlite:////" + "very-long-folder/" * 6 + "dev.db"
    lines = wrap(f"database {url} (sqlite)", 40, 4, lead="")
    assert lines == ["database", f"    {url}", "    (sqlite)"]
