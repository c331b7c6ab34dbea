"""Progress of long PostgreSQL operations during an upgrade, as the user sees it: figures
from pg_stat_progress_create_index / pg_stat_progress_cluster, and a concurrent index build
waiting for an old snapshot naming the session it waits for.

The runner_progress scenario makes the operations slow without many rows: 400 rows, one per
page, and an index predicate declared IMMUTABLE that sleeps 10 ms per row, so every build of
that index (CREATE INDEX CONCURRENTLY in p2, the index rebuild of CLUSTER in p3) takes 4 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading

import psycopg
from runner_helpers import query
from sqlalchemy.engine import make_url

from abmigrate import api
from abmigrate.config.workspace import Workspace
from abmigrate.events import Event, IndexProgress, StepFinished, StepStarted, event_record

SCANNING = "building index: scanning table"
OLD_SNAPSHOTS = "waiting for old snapshots"


def _table_blocks(url: str) -> int:
    [(blocks,)] = query(
        url, "SELECT pg_relation_size('parts') / current_setting('block_size')::int"
    )
    return int(blocks)


def _lines_during(stderr: str, revision: str) -> list[str]:
    """The progress lines printed while ``revision`` ran (between its → and ✓ lines)."""
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"→ upgrade {revision} "))
    end = next(i for i, line in enumerate(lines) if line.startswith(f"✓ upgrade {revision} "))
    return lines[start + 1 : end]


def _figures(lines: list[str], prefix: str) -> list[tuple[int, int]]:
    """(done, total) block figures of the progress lines that start with ``prefix``."""
    found = []
    for line in lines:
        match = re.fullmatch(rf"\s+{re.escape(prefix)}: blocks (\d+)/(\d+)(, .*)?, [\d.]+s", line)
        if match:
            found.append((int(match[1]), int(match[2])))
    return found


def test_cli_upgrade_shows_index_and_cluster_progress(copy_scenario, run_cli, pg_url):
    root = copy_scenario("runner_progress")
    result = run_cli("upgrade", cwd=root, env={"DATABASE_URL": pg_url})
    assert result.exit_code == 0, result
    blocks = _table_blocks(pg_url)
    assert blocks >= 400  # one row per page, as the scenario intends

    index_lines = _lines_during(result.stderr, "p2")
    scanned = _figures(index_lines, f"CREATE INDEX CONCURRENTLY {SCANNING}")
    assert scanned, index_lines
    assert all(0 <= done <= total == blocks for done, total in scanned), scanned
    assert any(0 < done < total for done, total in scanned), scanned

    cluster_lines = _lines_during(result.stderr, "p3")
    rebuilding = [line for line in cluster_lines if "CLUSTER rebuilding index:" in line]
    assert rebuilding, cluster_lines
    # The heap was scanned and written in full before the indexes are rebuilt.
    assert f"blocks {blocks}/{blocks}, tuples 400/400" in rebuilding[0], rebuilding
    assert not any("CLUSTER" in line for line in index_lines)


def test_api_observer_receives_progress_figures_for_the_right_revision(copy_scenario, pg_url):
    root = copy_scenario("runner_progress")
    events: list[Event] = []
    workspace = Workspace.open(config=root / "abmigrate.toml", url=pg_url)
    result = api.upgrade(workspace, observer=events.append)
    assert [step.revision for step in result.applied] == ["p1", "p2", "p3"]
    blocks = _table_blocks(pg_url)
    # Every revision is announced before it runs and reported after it, in order.
    steps = [
        (type(e).__name__, e.revision) for e in events if isinstance(e, StepStarted | StepFinished)
    ]
    assert steps == [
        (kind, revision)
        for revision in ("p1", "p2", "p3")
        for kind in ("StepStarted", "StepFinished")
    ]

    progress = [event_record(event) for event in events if isinstance(event, IndexProgress)]
    index = [p for p in progress if p["phase"] == SCANNING]
    assert index, progress
    for figures in index:
        assert figures["revision"] == "p2"
        assert figures["command"] == "CREATE INDEX CONCURRENTLY"
        assert figures["blocks_total"] == blocks
        assert isinstance(figures["blocks_done"], int)
        assert isinstance(figures["tuples_done"], int)
        assert isinstance(figures["tuples_total"], int)
    done = [figures["blocks_done"] for figures in index]
    assert done == sorted(done) and done[0] < done[-1], f"the figures move forward: {done}"

    cluster = [p for p in progress if p["command"] == "CLUSTER"]
    assert {p["revision"] for p in cluster} == {"p3"}, progress
    # The heap is scanned and written in milliseconds; rebuilding the slow index takes 4 s.
    rebuilding = [p for p in cluster if p["phase"] == "rebuilding index"]
    assert rebuilding, cluster
    assert all(
        (p["blocks_done"], p["blocks_total"], p["tuples_done"], p["tuples_total"])
        == (blocks, blocks, 400, 400)
        for p in rebuilding
    ), rebuilding
    assert not any(p["revision"] == "p1" for p in progress)


def _libpq(url: str) -> str:
    parsed = make_url(url)
    return f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} dbname={parsed.database}"


def test_index_build_waiting_for_an_old_snapshot_names_the_session(copy_scenario, run_cli, pg_url):
    root = copy_scenario("runner_progress")
    env = {"DATABASE_URL": pg_url}
    assert run_cli("upgrade", "p1", cwd=root, env=env).exit_code == 0
    # A reader in a REPEATABLE READ transaction whose snapshot predates the index build:
    # CREATE INDEX CONCURRENTLY must wait for it before the index can be marked valid.
    holder = psycopg.connect(_libpq(pg_url))
    try:
        holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        holder.execute("SELECT 1")  # the transaction starts here, and takes its snapshot
        holder_pid = holder.info.backend_pid
        # Never hang the suite: whatever the runner prints, the reader ends within 60 s.
        timer = threading.Timer(60, holder.commit)
        timer.start()
        seen: list[str] = []
        with subprocess.Popen(
            [sys.executable, "-m", "abmigrate", "upgrade", "p2"],
            cwd=root,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "DATABASE_URL": pg_url},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as runner:
            assert runner.stderr is not None
            for line in runner.stderr:
                seen.append(line.rstrip("\n"))
                if OLD_SNAPSHOTS in line and not timer.finished.is_set():
                    timer.cancel()
                    holder.commit()  # what the user would do: end the old transaction
            runner.communicate(timeout=60)
        timer.cancel()
        assert runner.returncode == 0, "\n".join(seen)
    finally:
        holder.close()

    waiting = [line for line in seen if OLD_SNAPSHOTS in line]
    assert waiting, seen
    assert waiting[0].startswith(f"   CREATE INDEX CONCURRENTLY {OLD_SNAPSHOTS}: sessions 0/1")
    assert f"held up by pid {holder_pid} " in waiting[0]
    assert "idle in transaction" in waiting[0]
    assert not any("waiting" in line and "for a lock" in line for line in seen), seen
    assert query(
        pg_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_parts_slow'::regclass"
    ) == [(True,)]
