"""The round trip's walk between steps: what it finds after each step, and what a step costs.

Between two steps the walk looks at the schema (PostgreSQL: a digest taken on a connection
of abmigrate's own, in the search path env.py set; elsewhere a fingerprint on env.py's
connection, inside the next step's transaction). These tests hold it to finding what the
three steps per revision are there for, on every backend, and to one transaction per
migration step: the looks add none.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from abmigrate.db.scratch import SCRATCH_PREFIX

BACKENDS = ["sqlite", "postgresql", "mariadb"]

ENV_PY = """
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config


def run_migrations_online():
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
{prelude}
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
"""

TENANT_PRELUDE = """\
        connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS tenant_a")
        connection.exec_driver_sql("SET search_path TO tenant_a")
        connection.commit()
"""


def write_project(root: Path, revisions: list[tuple[str, str]], prelude: str = "") -> Path:
    """A linear history: ``revisions`` is a list of (upgrade body, downgrade body)."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\nsqlalchemy.url = sqlite://\n"
    )
    (root / "migrations" / "env.py").write_text(
        ENV_PY.replace("{prelude}", prelude or "        pass")
    )
    previous = None
    for number, (up, down) in enumerate(revisions, start=1):
        revision = f"a{number:011d}"
        body = (
            "import sqlalchemy as sa\n"
            "from alembic import op\n\n"
            f"revision = {revision!r}\n"
            f"down_revision = {previous!r}\n"
            "branch_labels = None\n"
            "depends_on = None\n\n\n"
            f"def upgrade():\n{_indented(up)}\n\n"
            f"def downgrade():\n{_indented(down)}"
        )
        (versions / f"{revision}.py").write_text(body)
        previous = revision
    return root


def _indented(code: str) -> str:
    return textwrap.indent(textwrap.dedent(code).strip(), "    ") + "\n"


HEALTHY = [
    (
        """
        op.create_table(
            "parts",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(40), nullable=False, server_default="x"),
        )
        """,
        'op.drop_table("parts")',
    ),
    (
        """
        op.add_column("parts", sa.Column("code", sa.String(20)))
        op.create_index("ix_parts_code", "parts", ["code"])
        """,
        """
        op.drop_index("ix_parts_code", table_name="parts")
        op.drop_column("parts", "code")
        """,
    ),
    (
        """
        op.create_table(
            "bins",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("part_id", sa.Integer, sa.ForeignKey("parts.id")),
        )
        """,
        'op.drop_table("bins")',
    ),
]

# Its downgrade leaves a row behind: no schema comparison sees it, the upgrade run again
# trips on it (what the third step of each revision is for).
ROW_LEFT_BEHIND = (
    """
    op.create_table("labels", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO parts (id, name) VALUES (1, 'first')")
    """,
    'op.drop_table("labels")',
)

INDEX_LEFT_BEHIND = (
    'op.create_index("ix_parts_name", "parts", ["name"])',
    "pass  # forgets op.drop_index",
)


# Its upgrade changes its own module's state, as neutron's c33da356b165 does (it pops a key
# from each dict of a module-level template): run twice from one loaded module it raises
# KeyError, while each `alembic` command loads the file anew.
MODULE_STATE = (
    """
    template = globals().setdefault("TEMPLATE_RULES", [{"name": "ssh", "note": "allow ssh"}])
    rules = op.create_table(
        "rules",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("note", sa.String(200)),
    )
    op.bulk_insert(rules, [{"name": r["name"], "note": r.pop("note")} for r in template])
    """,
    'op.drop_table("rules")',
)


@pytest.fixture(params=BACKENDS)
def server_args(request: pytest.FixtureRequest) -> list[str]:
    """The --url option pointing check at a server (none: temporary SQLite files)."""
    if request.param == "sqlite":
        return []
    fixture = "pg_url" if request.param == "postgresql" else "mariadb_url"
    return ["--url", request.getfixturevalue(fixture)]


def round_trip(run_cli: Callable[..., Any], project: Path, server_args: list[str]) -> Any:
    result = run_cli(
        "--alembic-ini",
        project / "alembic.ini",
        "check",
        "--checks",
        "round_trip",
        "--format",
        "json",
        *server_args,
    )
    data = json.loads(result.stdout)
    [outcome] = data["checks"]
    return result, outcome


@pytest.fixture
def scratch_commits() -> Iterator[list[str]]:
    """The database of every commit made on a round trip's scratch database meanwhile."""
    commits: list[str] = []

    def on_commit(connection: Connection) -> None:
        database = str(connection.engine.url.database or "")
        if f"{SCRATCH_PREFIX}round_trip" in database:
            commits.append(database)

    event.listen(Engine, "commit", on_commit)
    try:
        yield commits
    finally:
        event.remove(Engine, "commit", on_commit)


def test_an_upgrade_that_fails_when_run_again_is_named_and_the_walk_goes_on(
    run_cli: Callable[..., Any], tmp_path: Path, server_args: list[str]
) -> None:
    project = write_project(tmp_path / "p", [HEALTHY[0], ROW_LEFT_BEHIND, HEALTHY[2]])
    result, outcome = round_trip(run_cli, project, server_args)
    assert result.exit_code == 1, result
    [failure] = outcome["failures"]
    assert failure["revision"] == "a00000000002"
    assert "the upgrade fails when run again after the downgrade" in failure["message"]
    assert "INSERT INTO parts" in failure["sql"]
    # The revision after it was reached and round-tripped.
    assert outcome["summary"] == "1 of 3 revision(s) fail"


def test_each_step_commits_once_and_the_looks_between_steps_add_no_transaction(
    run_cli: Callable[..., Any],
    tmp_path: Path,
    server_args: list[str],
    scratch_commits: list[str],
) -> None:
    counts = []
    for revisions in (2, 3):
        scratch_commits.clear()
        project = write_project(tmp_path / str(revisions), HEALTHY[:revisions])
        result, outcome = round_trip(run_cli, project, server_args)
        assert result.exit_code == 0, result
        assert outcome["summary"] == f"{revisions} revision(s) round-tripped"
        counts.append(len(scratch_commits))
    # One revision more: up, down and up again, each in its own transaction; the two looks
    # at the schema between them made it five.
    assert counts[1] - counts[0] == 3, counts


def test_a_downgrade_leaving_an_index_in_env_pys_schema_is_found_on_postgresql(
    run_cli: Callable[..., Any], tmp_path: Path, pg_url: str
) -> None:
    # env.py works in a schema of its own (a tenant's): the looks between steps must look
    # there, not at public.
    project = write_project(
        tmp_path / "p", [HEALTHY[0], INDEX_LEFT_BEHIND, HEALTHY[2]], prelude=TENANT_PRELUDE
    )
    result, outcome = round_trip(run_cli, project, ["--url", pg_url])
    assert result.exit_code == 1, result
    [failure] = outcome["failures"]
    assert failure["revision"] == "a00000000002"
    assert any("ix_parts_name" in line for line in failure["differences"]), failure
    assert outcome["summary"] == "1 of 3 revision(s) fail"


def test_an_upgrade_run_again_starts_from_its_file_loaded_anew(
    run_cli: Callable[..., Any], tmp_path: Path, server_args: list[str]
) -> None:
    project = write_project(tmp_path / "p", [HEALTHY[0], MODULE_STATE, HEALTHY[2]])
    result, outcome = round_trip(run_cli, project, server_args)
    assert result.exit_code == 0, result
    assert outcome["failures"] == []
    assert outcome["summary"] == "3 revision(s) round-tripped"
