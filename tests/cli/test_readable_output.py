"""Human output as a user reads it: the real CLI with its output captured (no terminal) and
``COLUMNS`` unset, where Rich assumes 80 columns — piped output, CI logs, ``| less``.

Nothing may be cut to ``upgr…``; a run is one journal row whatever its size; times read as
``2 min ago``; URLs read decoded with the password masked; Alembic's log lines and the
migrations' Python warnings show only with ``--verbose``; summaries say what they count.
"""

from __future__ import annotations

import json
import logging
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import make_project
from sqlalchemy.engine import make_url
from terminal import NARROW, assert_fits_80_columns

SECONDS_AGO = r"(just now|\d+ s ago|1 min ago)"  # a loaded machine is slow


def chain_of(copy_scenario: Any, extra: int) -> Path:
    """runner_chain (r1 … r5) and ``extra`` more revisions r6, r7, … each creating a table."""
    root = make_project(copy_scenario)
    for number in range(6, 6 + extra):
        (root / "versions" / f"r{number}_create_t{number}.py").write_text(
            textwrap.dedent(
                f'''\
                """create t{number}"""
                import sqlalchemy as sa
                from alembic import op

                revision = "r{number}"
                down_revision = "r{number - 1}"
                branch_labels = None
                depends_on = None


                def upgrade() -> None:
                    op.create_table("t{number}", sa.Column("id", sa.Integer, primary_key=True))


                def downgrade() -> None:
                    op.drop_table("t{number}")
                '''
            )
        )
    return root


def flat(text: str) -> str:
    """The words of ``text`` on one line (a long message is wrapped over several)."""
    return " ".join(text.split())


def short(run_id: str) -> str:
    return run_id.rpartition("-")[2]


def test_journal_row_per_run_and_steps_on_request(copy_scenario, run_cli, sqlite_url):
    root = chain_of(copy_scenario, extra=20)  # r1 … r25
    env = {"DATABASE_URL": sqlite_url, **NARROW}
    first = run_cli("upgrade", "r2", "--format", "json", cwd=root, env=env)
    assert first.exit_code == 0, first
    big = run_cli("upgrade", "--format", "json", cwd=root, env=env)
    assert big.exit_code == 0, big
    first_id, big_id = json.loads(first.stdout)["run_id"], json.loads(big.stdout)["run_id"]

    shown = run_cli("journal", cwd=root, env=env)
    assert shown.exit_code == 0, shown
    out = shown.stdout
    assert_fits_80_columns(out)
    lines = out.splitlines()
    # One row per run, however many revisions it applied: 23 revisions are not 23 lines.
    [big_row] = [line for line in lines if short(big_id) in line]
    assert big_row.split() == [
        short(big_id),
        *big_row.split()[1:3],
        "upgrade",
        "r2",
        "→",
        "r25",
        "succeeded",
    ]
    assert re.search(r"^ +23 revisions, \d+\.\d+ s, by \S+$", out, re.M), out
    [first_row] = [line for line in lines if short(first_id) in line]
    assert first_row.split()[3:] == ["upgrade", "(none)", "→", "r2", "succeeded"]
    assert re.search(r"^ +2 revisions, \d+\.\d+ s, by \S+$", out, re.M), out
    assert not re.search(r"\br1[0-9]\b", out)  # no revision of the run listed one by one
    assert len(lines) <= 12, out  # heading, header, 2 lines per run, footer

    # The steps of one run, by the short id the list shows (or any unique prefix).
    steps = run_cli("journal", short(big_id)[:5], cwd=root, env=env)
    assert steps.exit_code == 0, steps
    assert_fits_80_columns(steps.stdout)
    assert f"run {big_id}: upgrade of development, succeeded" in steps.stdout
    assert re.search(r"^from → to +r2 → r25 \(target head\)$", steps.stdout, re.M)
    assert "steps: 23 revisions applied" in steps.stdout
    step_lines = re.findall(r"^ +(\d+)  (r\d+) +(\d+\.\d+ s)  (.+)$", steps.stdout, re.M)
    assert [(n, revision) for n, revision, _, _ in step_lines] == [
        (str(n), f"r{n + 2}") for n in range(1, 24)
    ]
    whole_id = run_cli("journal", big_id, cwd=root, env=env)
    assert whole_id.stdout.splitlines()[0] == f"run {big_id}: upgrade of development, succeeded"

    ambiguous = run_cli("journal", big_id[:8], cwd=root, env=env)  # both runs' date
    assert ambiguous.exit_code == 2, ambiguous
    assert f"'{big_id[:8]}' matches 2 runs" in ambiguous.stderr
    unknown = run_cli("journal", "ffffffff", cwd=root, env=env)
    assert unknown.exit_code == 2, unknown
    assert "no run 'ffffffff' in the journal of development" in unknown.stderr

    # JSON keeps the full records: every step with its checksum.
    records = json.loads(run_cli("journal", "--format", "json", cwd=root, env=env).stdout)
    [record] = [run for run in records["runs"] if run["run_id"] == big_id]
    assert len(record["applied"]) == 23
    assert all(len(step["script_sha256"]) == 64 for step in record["applied"])
    one = json.loads(
        run_cli("journal", short(big_id), "--format", "json", cwd=root, env=env).stdout
    )
    assert one["run"] == record


def test_status_tells_the_last_run_and_backup_in_words(copy_scenario, run_cli, sqlite_url):
    root = make_project(copy_scenario)
    env = {"DATABASE_URL": sqlite_url, **NARROW}
    upgraded = run_cli("upgrade", "r3", "--format", "json", cwd=root, env=env)
    assert upgraded.exit_code == 0, upgraded
    backup = run_cli("backup", "--format", "json", cwd=root, env=env)
    assert backup.exit_code == 0, backup
    run_id, backup_id = json.loads(upgraded.stdout)["run_id"], json.loads(backup.stdout)["id"]

    status = run_cli("status", cwd=root, env=env)
    assert status.exit_code == 0, status
    out = status.stdout
    assert_fits_80_columns(out)
    assert re.search(
        rf"^last run     upgrade succeeded {SECONDS_AGO}, 3 revisions, \d+\.\d+ s, by \S+$",
        out,
        re.M,
    ), out
    assert re.search(rf"^ +details: abmigrate journal {short(run_id)}$", out, re.M), out
    assert re.search(
        rf"^last backup  {backup_id} {SECONDS_AGO}, \d+\.\d KiB, revision r3, verified$",
        out,
        re.M,
    ), out
    # Not the record's raw keys and microsecond timestamps.
    assert "run_id=" not in out and "started_at" not in out
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", out)


def test_failed_run_in_the_journal_and_status(copy_scenario, run_cli, sqlite_url):
    root = make_project(copy_scenario)
    env = {"DATABASE_URL": sqlite_url, **NARROW}
    failed = run_cli("upgrade", "r3", cwd=root, env={**env, "RUNNER_FAIL": "r2"})
    assert failed.exit_code == 1, failed
    run_id = next(
        run
        for run in json.loads(run_cli("journal", "--format", "json", cwd=root, env=env).stdout)[
            "runs"
        ]
    )["run_id"]

    journal = run_cli("journal", cwd=root, env=env)
    assert_fits_80_columns(journal.stdout)
    [row] = [line for line in journal.stdout.splitlines() if short(run_id) in line]
    assert row.split()[3:] == ["upgrade", "(none)", "→", "r1", "failed"]
    assert re.search(r"^ +1 of 3 revisions, \d+\.\d+ s, by \S+$", journal.stdout, re.M)
    assert re.search(r"\berror: .*simulated failure in r2", flat(journal.stdout))

    steps = run_cli("journal", short(run_id), cwd=root, env=env)
    assert_fits_80_columns(steps.stdout)
    assert "steps: 1 of 3 revisions applied" in steps.stdout
    assert re.search(r"^  1  r1 +\d+\.\d+ s  create items$", steps.stdout, re.M), steps.stdout
    assert re.search(r"^  2  r2 +—  +\(failed here\)$", steps.stdout, re.M), steps.stdout
    assert re.search(r"^  3  r3 +—  +\(not run\)$", steps.stdout, re.M), steps.stdout

    status = run_cli("status", cwd=root, env=env)
    assert_fits_80_columns(status.stdout)
    assert re.search(
        rf"^last run     upgrade failed {SECONDS_AGO} in r2, 1 of 3 revisions,", status.stdout, re.M
    ), status.stdout
    assert re.search(r"\berror: .*simulated failure in r2", flat(status.stdout))


def test_sqlite_path_shown_as_written(copy_scenario, run_cli, tmp_path: Path):
    root = make_project(copy_scenario)
    folder = tmp_path / "données"
    folder.mkdir()
    url = f"sqlite:///{folder / 'dev.db'}"
    env = {"DATABASE_URL": url, **NARROW}
    upgraded = run_cli("upgrade", cwd=root, env=env)
    assert upgraded.exit_code == 0, upgraded
    for result in (
        upgraded,
        run_cli("status", cwd=root, env=env),
        run_cli("journal", cwd=root, env=env),
    ):
        shown = result.stdout + result.stderr
        assert "/données/dev.db" in shown, shown
        assert "%C3" not in shown


def test_postgres_url_shown_decoded_and_masked(copy_scenario, run_cli, pg_url):
    root = make_project(copy_scenario)
    server = make_url(pg_url)
    url = server.set(
        password=server.password or "s3cr@t/pw",  # trust authentication ignores it
        query={**server.query, "application_name": "abmigrate test/ci"},
    ).render_as_string(hide_password=False)
    assert "%2F" in url  # what SQLAlchemy writes, and used to show
    env = {"DATABASE_URL": url, **NARROW}
    results = [
        run_cli("upgrade", "r1", cwd=root, env=env),
        run_cli("status", cwd=root, env=env),
        run_cli("journal", cwd=root, env=env),
        run_cli("plan", cwd=root, env=env),
    ]
    for result in results:
        assert result.exit_code == 0, result
        shown = result.stdout + result.stderr
        assert f"{server.drivername}://{server.username}:***@" in shown, shown
        assert "application_name=abmigrate%20test/ci" in shown, shown
        assert "%2F" not in shown and "%40" not in shown
        assert str(make_url(url).password) not in shown


NOISY_LOGGING = """
[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""


@pytest.fixture
def noisy_project(copy_scenario) -> Path:
    """linear, with `alembic init`'s logging (alembic at INFO) and a revision that warns."""
    project = copy_scenario("linear")
    ini = project / "alembic.ini"
    text = ini.read_text()
    ini.write_text(text[: text.index("[loggers]")] + NOISY_LOGGING)
    revision = project / "migrations" / "versions" / "a1f0c0de0002.py"
    source = revision.read_text()
    assert "def upgrade() -> None:\n" in source
    revision.write_text(
        source.replace(
            "def upgrade() -> None:\n",
            "def upgrade() -> None:\n"
            "    import logging\n"
            "    sa.util.warn('a migration warning')\n"
            "    logging.getLogger('alembic.runtime.migration').warning('an alembic warning')\n",
        )
    )
    return project


def test_alembic_logging_and_warnings_only_with_verbose(noisy_project, run_cli, sqlite_url):
    def cli(*args: str) -> Any:
        return run_cli(
            "--alembic-ini",
            noisy_project / "alembic.ini",
            "--url",
            sqlite_url,
            *args,
            cwd=noisy_project,
            env=NARROW,
        )

    quiet = cli("upgrade")
    assert quiet.exit_code == 0, quiet
    for noise in ("INFO", "WARNI", "[alembic", "SAWarning", "a migration warning"):
        assert noise not in quiet.stderr + quiet.stdout, quiet
    assert "✓ upgrade a1f0c0de0002" in quiet.stderr
    assert cli("downgrade", "base").exit_code == 0

    # As another project's env.py leaves it in this process (logging.config.fileConfig
    # disables the loggers its ini does not name, and none enables them again): --verbose
    # must still show Alembic's lines.
    logging.getLogger("alembic.runtime.migration").disabled = True
    verbose = cli("--verbose", "upgrade")
    assert verbose.exit_code == 0, verbose
    assert "INFO  [alembic.runtime.migration] Running upgrade a1f0c0de0001 -> a1f0c0de0002" in (
        verbose.stderr
    )
    assert "SAWarning: a migration warning" in verbose.stderr
    assert "WARNI [alembic.runtime.migration] an alembic warning" in verbose.stderr
    assert "✓ upgrade a1f0c0de0002" in verbose.stderr


def test_check_counts_say_what_they_count(copy_scenario, run_cli):
    project = copy_scenario("check_not_implemented")
    # c2b0000000b2's upgrade fails too: c2b0000000b3 after it cannot be reached.
    broken = project / "migrations" / "versions" / "c2b0000000b2.py"
    broken.write_text(
        broken.read_text().replace(
            "def upgrade() -> None:\n", "def upgrade() -> None:\n    raise RuntimeError('broken')\n"
        )
    )
    result = run_cli(
        "--alembic-ini",
        project / "alembic.ini",
        "check",
        "--checks",
        "round_trip,single_head",
        cwd=project,
        env=NARROW,
    )
    assert result.exit_code == 1, result
    out = result.stdout
    assert_fits_80_columns(out)
    # The check's line counts revisions: one fails, one is not reached ...
    assert re.search(r"✗ round_trip +1 of 3 revision\(s\) fail, 1 not checked ", out), out
    assert len(re.findall(r"^round_trip: revision c2b0000000b2 ", out, re.M)) == 1
    assert re.search(r"^round_trip: 1 revision\(s\) not checked", out, re.M), out
    # ... and the verdict counts checks, as the lines above it do.
    assert out.rstrip().endswith("FAILED: 1 of 2 checks (round_trip)"), out
