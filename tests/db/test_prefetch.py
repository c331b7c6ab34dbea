"""Reading the database ahead (abmigrate.db.prefetch): a console `status`, `current` or
`history` on PostgreSQL gets its answers from a forked child and shows exactly what it
showed before, without importing psycopg itself; every failure is still reported by the
command as before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from abmigrate.db import prefetch

# The console entry point (abmigrate.cli.main.run) allows reading ahead; this driver does
# the same, then says whether the command's own process imported psycopg.
DRIVER = """
import os, sys
from abmigrate.db import prefetch
if os.environ.get("READ_AHEAD") == "1":
    prefetch.allow()
from abmigrate.cli.main import main
code = main(sys.argv[1:])
print("psycopg imported:", "psycopg" in sys.modules, file=sys.stderr)
print("sqlalchemy imported:", "sqlalchemy" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


def console_run(
    *args: str | Path, cwd: Path, read_ahead: bool = True
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200", READ_AHEAD="1" if read_ahead else "0")
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", ["status", "current", "history"])
def test_read_ahead_shows_what_the_command_showed_without_psycopg(  # type: ignore[no-untyped-def]
    command: str, run_cli, copy_scenario, pg_url: str, tmp_path: Path
) -> None:
    project = copy_scenario("linear")
    where = ("--alembic-ini", project / "alembic.ini", "--url", pg_url)
    for revisions in ("none", "a1f0c0de0002"):
        if revisions != "none":
            assert run_cli(*where, "upgrade", revisions).exit_code == 0
        ahead = console_run(*where, command, cwd=tmp_path)
        assert ahead.returncode == 0, ahead.stderr
        inline = run_cli(*where, command)  # in a test worker: no read-ahead
        assert ahead.stdout == inline.stdout
    # (Without a version table, status and current run env.py to look for one elsewhere,
    # which imports psycopg anyway.)
    assert "psycopg imported: False" in ahead.stderr
    if command == "history":
        applied = [line.split()[1] for line in ahead.stdout.splitlines() if line.startswith("✓")]
        assert applied == ["a1f0c0de0002", "a1f0c0de0001"]
    else:
        assert "a1f0c0de0002" in ahead.stdout


@pytest.mark.parametrize("backend", ["sqlite_url", "pg_url"])
def test_the_journal_the_pipeline_wrote_is_read_without_sqlalchemy(  # type: ignore[no-untyped-def]
    backend: str, request: pytest.FixtureRequest, run_cli, copy_scenario, tmp_path: Path
) -> None:
    url = str(request.getfixturevalue(backend))
    project = copy_scenario("linear")
    where = ("--alembic-ini", project / "alembic.ini", "--url", url)
    assert run_cli(*where, "upgrade", "head").exit_code == 0
    ahead = console_run(*where, "status", cwd=tmp_path)
    assert ahead.returncode == 0, ahead.stderr
    assert ahead.stdout == run_cli(*where, "status").stdout
    assert "upgrade" in ahead.stdout  # the last run, from the journal
    # The journal's rows came through the driver (on PostgreSQL, the read-ahead's child).
    assert "sqlalchemy imported: False" in ahead.stderr
    if backend == "pg_url":
        assert "psycopg imported: False" in ahead.stderr


def test_a_refused_connection_is_reported_as_without_read_ahead(  # type: ignore[no-untyped-def]
    run_cli, run_cli_process, copy_scenario, pg_url: str
) -> None:
    project = copy_scenario("linear")
    for url in (
        "postgresql+psycopg://abparts:Sup3rSecret@127.0.0.1:1/abparts",
        pg_url.replace("postgres@", "no_such_role:Pw0rd@"),
    ):
        for command in ("status", "history"):
            args = ("--alembic-ini", project / "alembic.ini", "--url", url, command)
            console = run_cli_process(*args)  # the real entry point: it reads ahead
            inline = run_cli(*args)
            assert console.exit_code == inline.exit_code == 2
            assert console.stderr == inline.stderr
            assert "cannot connect" in console.stderr
            assert "Sup3rSecret" not in console.stderr and "Pw0rd" not in console.stderr


def test_a_process_that_did_not_allow_it_reads_inline(  # type: ignore[no-untyped-def]
    copy_scenario, pg_url: str, tmp_path: Path
) -> None:
    # Only the console entry point allows reading ahead: an application calling abmigrate
    # (or a test worker) may hold threads and connections a fork would copy.
    project = copy_scenario("linear")
    where = ("--alembic-ini", project / "alembic.ini", "--url", pg_url)
    inline = console_run(*where, "status", cwd=tmp_path, read_ahead=False)
    assert inline.returncode == 0, inline.stderr
    assert "psycopg imported: True" in inline.stderr
    assert prefetch.start(pg_url, [('"alembic_version"', None)]) is False
    assert prefetch.claim(pg_url, '"alembic_version"', None) is prefetch.NOT_READ
