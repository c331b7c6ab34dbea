"""Before anything runs: will the schema at the target match the models?

``plan`` (and the pipeline's plan step) compares the models with the schema the revisions
produce at head, replayed on a scratch database, by the comparison the verification after a
run makes; the target database is never touched. ``plan`` replays only with ``--models``
(otherwise it answers from the cache); with ``verify_models = "fail"`` a predicted new
difference refuses the upgrade before anything runs, and ``--override`` lets it through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runner_helpers import make_project, query, versions
from terminal import NARROW, assert_fits_80_columns

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAD = "c4d0000000d1"  # check_models_drift's only revision


def _drift_project(copy_scenario: Any, policy: dict[str, object] | None = None) -> Path:
    """check_models_drift: its models widen users.email and add users.nickname, which no
    revision does."""
    root: Path = copy_scenario("check_models_drift")
    lines = ['alembic_ini = "alembic.ini"', 'models = "models:Base.metadata"', ""]
    lines += ["[environments.development]", 'url_env = "DATABASE_URL"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in (policy or {}).items()]
    (root / "abmigrate.toml").write_text("\n".join(lines) + "\n")
    return root


def _from_models_line(text: str) -> str:
    """The output from the prediction's first line on (the plan's header line, which names
    the whole database URL, is not this test's concern)."""
    return text[text.index("models:") :]


def _tables(url: str) -> list[str]:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return []
        rows = query(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return sorted(str(row[0]) for row in rows)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


def test_abparts_models_match_the_schema_at_head(run_cli, url, tmp_path):
    env = {"ABMIGRATE_CACHE_DIR": str(tmp_path / "cache")}
    first = run_cli("--url", url, "plan", "--models", "--format", "json", cwd=REPO_ROOT, env=env)
    assert first.exit_code == 0, first
    models = json.loads(first.stdout)["models"]
    assert models["status"] == "match", models
    assert models["differences"] == [] and models["cached"] is False
    assert models["source"] == "env.py target_metadata"
    # Nothing reached the target database: the replay ran on a scratch one.
    assert _tables(url) == []
    # The next plan answers from the cache, without --models.
    again = run_cli("--url", url, "plan", cwd=REPO_ROOT, env={**env, **NARROW})
    assert again.exit_code == 0, again
    assert "models: the schema at" in again.stdout
    assert "will match the models (env.py target_metadata)" in " ".join(again.stdout.split())
    assert_fits_80_columns(_from_models_line(again.stdout))


def test_plan_lists_the_differences_before_anything_runs(copy_scenario, run_cli, url, tmp_path):
    root = _drift_project(copy_scenario)
    env = {"DATABASE_URL": url, "ABMIGRATE_CACHE_DIR": str(tmp_path / "cache")}
    # Not in the cache, and plain `plan` does not replay: it says so and how to get it.
    cheap = run_cli("plan", "--format", "json", cwd=root, env=env)
    assert cheap.exit_code == 0, cheap
    assert json.loads(cheap.stdout)["models"]["status"] == "not_predicted"
    assert "plan --models" in json.loads(cheap.stdout)["models"]["reason"]

    human = run_cli("plan", "--models", cwd=root, env={**env, **NARROW})
    assert human.exit_code == 0, human
    shown = human.stdout
    assert_fits_80_columns(_from_models_line(shown))
    words = " ".join(shown.split())
    assert f"models: the schema at {HEAD} will differ from the models" in words
    assert "in 2 place(s):" in words
    assert "missing column users.nickname: VARCHAR(40) NULL (in the models, no revision" in words
    assert "changed column users.email: type VARCHAR(200) → VARCHAR(100)" in words

    recorded = run_cli("plan", "--format", "json", cwd=root, env=env)
    models = json.loads(recorded.stdout)["models"]
    assert models["status"] == "differ" and models["count"] == 2 and models["cached"] is True
    assert models["command"] == "abmigrate plan --models --format json"
    assert any("users.nickname" in difference for difference in models["differences"])
    # The target database is exactly as before: nothing created, nothing recorded.
    assert _tables(url) == []
    assert versions(url) == []


def test_prediction_and_verification_agree(copy_scenario, run_cli, sqlite_url, tmp_path):
    root = _drift_project(copy_scenario)
    env = {"DATABASE_URL": sqlite_url, "ABMIGRATE_CACHE_DIR": str(tmp_path / "cache")}
    plan = run_cli("plan", "--models", "--format", "json", cwd=root, env=env)
    predicted = json.loads(plan.stdout)["models"]["differences"]
    run = run_cli("upgrade", "--format", "json", cwd=root, env=env)
    assert run.exit_code == 0, run
    record = json.loads(run.stdout)
    assert record["verification"]["drift"] == predicted
    assert record["models_prediction"]["differences"] == predicted


def test_verify_models_fail_refuses_before_anything_runs(copy_scenario, run_cli, url, tmp_path):
    root = _drift_project(copy_scenario, {"verify_models": "fail"})
    env = {"DATABASE_URL": url, "ABMIGRATE_CACHE_DIR": str(tmp_path / "cache"), **NARROW}
    refused = run_cli("upgrade", cwd=root, env=env)
    assert refused.exit_code == 1, refused
    assert "Traceback" not in refused.stderr
    assert_fits_80_columns(_from_models_line(refused.stderr))
    words = " ".join(refused.stderr.split())
    assert "error: upgrade of development refused by its policy" in words
    assert f"predicted: the schema at {HEAD} will differ from the models in 2 place(s)" in words
    assert 'verify_models = "fail" would fail the run after the revisions are in' in words
    assert "--override REASON" in words
    # Refused at the gate: nothing applied, nothing journaled, no incident.
    assert versions(url) == []
    assert _tables(url) == []
    assert not (root / "incidents").exists()

    through = run_cli("upgrade", "--override", "models catch up next release", cwd=root, env=env)
    assert through.exit_code == 0, through
    assert versions(url) == [HEAD]
    # The overridden differences are a warning after the run, not a failure.
    assert "predicted before the run; the refusal was overridden" in " ".join(
        through.stdout.split()
    )
    assert_fits_80_columns(through.stdout)
    runs = run_cli("journal", "--format", "json", cwd=root, env=env)
    (run,) = json.loads(runs.stdout)["runs"]
    assert run["outcome"] == "succeeded"
    assert [override["gate"] for override in run["overrides"]] == ["models"]
    assert run["overrides"][0]["reason"] == "models catch up next release"
    assert run["models_prediction"]["status"] == "differ"


def test_differences_already_in_the_database_do_not_refuse(
    copy_scenario, run_cli, sqlite_url, tmp_path
):
    root = _drift_project(copy_scenario, {"verify_models": "fail"})
    env = {"DATABASE_URL": sqlite_url, "ABMIGRATE_CACHE_DIR": str(tmp_path / "cache")}
    assert run_cli("upgrade", "--override", "first install", cwd=root, env=env).exit_code == 0
    # A new revision that changes nothing the models care about: the same two differences
    # are predicted, but they are in the database already, so the run would not fail.
    (root / "migrations" / "versions" / "c4d0000000d2.py").write_text(
        '"""a note table"""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        'revision = "c4d0000000d2"\ndown_revision = "c4d0000000d1"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        '    op.create_index("ix_users_email", "users", ["email"])\n\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_index("ix_users_email", "users")\n'
    )
    (root / "models.py").write_text(
        (root / "models.py")
        .read_text()
        .replace("sa.String(200), nullable=False)", "sa.String(200), nullable=False, index=True)")
    )
    result = run_cli("upgrade", "--format", "json", cwd=root, env=env)
    assert result.exit_code == 0, result
    record = json.loads(result.stdout)
    assert record["models_prediction"]["count"] == 2
    assert record["overrides"] == []
    assert versions(sqlite_url) == ["c4d0000000d2"]


def test_off_no_models_and_a_failing_replay(copy_scenario, run_cli, sqlite_url, tmp_path):
    cache = {"ABMIGRATE_CACHE_DIR": str(tmp_path / "cache")}
    off = _drift_project(copy_scenario, {"verify_models": "off"})
    result = run_cli("plan", "--models", cwd=off, env={"DATABASE_URL": sqlite_url, **cache})
    assert result.exit_code == 0, result
    assert "models:" not in result.stdout
    as_json = run_cli(
        "plan", "--models", "--format", "json", cwd=off, env={"DATABASE_URL": sqlite_url, **cache}
    )
    assert json.loads(as_json.stdout)["models"]["status"] == "off"

    # runner_chain declares no models: nothing said, "no_models" in JSON.
    plain = make_project(copy_scenario)
    env = {"DATABASE_URL": sqlite_url, **cache}
    result = run_cli("plan", "--models", cwd=plain, env=env)
    assert result.exit_code == 0, result
    assert "models:" not in result.stdout
    as_json = run_cli("plan", "--models", "--format", "json", cwd=plain, env=env)
    assert json.loads(as_json.stdout)["models"]["status"] == "no_models"

    # A migration that fails on an empty database: one line, and the plan still stands.
    broken = copy_scenario("check_models_drift", tmp_path / "broken")
    (broken / "abmigrate.toml").write_text(
        'alembic_ini = "alembic.ini"\nmodels = "models:Base.metadata"\n\n'
        '[environments.development]\nurl_env = "DATABASE_URL"\n'
    )
    script = broken / "migrations" / "versions" / "c4d0000000d1.py"
    script.write_text(
        script.read_text().replace(
            "def upgrade() -> None:\n",
            'def upgrade() -> None:\n    op.execute("UPDATE legacy_users SET id = id")\n',
        )
    )
    result = run_cli("plan", "--models", cwd=broken, env={**env, **NARROW})
    assert result.exit_code == 0, result
    words = " ".join(result.stdout.split())
    assert f"models: not predicted: cannot replay the migrations up to {HEAD}:" in words
    assert "legacy_users" in words
    assert_fits_80_columns(_from_models_line(result.stdout))


def test_a_warm_plan_recalls_the_prediction_until_a_model_changes(
    copy_scenario, run_cli_process, sqlite_url, tmp_path
):
    root = _drift_project(copy_scenario)
    log = tmp_path / "models-imported.log"
    models = root / "models.py"
    # The models module notes each time it is imported (by a real, new process each run).
    models.write_text(
        models.read_text() + f"\nwith open({str(log)!r}, 'a') as _log:\n    _log.write('x')\n"
    )
    env = {"DATABASE_URL": sqlite_url, "ABMIGRATE_CACHE_DIR": str(tmp_path / "cache")}

    def plan(*args: str) -> dict[str, Any]:
        done = run_cli_process("plan", *args, "--format", "json", cwd=root, env=env)
        assert done.exit_code == 0, done
        return dict(json.loads(done.stdout)["models"])

    replayed = plan("--models")
    assert replayed["status"] == "differ" and replayed["count"] == 2
    first = plan()  # from the prediction cache: the models are loaded to key it
    assert first["differences"] == replayed["differences"]
    imports = len(log.read_text())
    again = plan()  # nothing changed: recalled without loading the models
    assert again == first
    assert len(log.read_text()) == imports
    # A model changes: loaded again, and predicted again.
    nickname = "    nickname: Mapped[str | None] = mapped_column(sa.String(40))\n"
    assert nickname in models.read_text()
    models.write_text(models.read_text().replace(nickname, ""))
    changed = plan("--models")
    assert len(log.read_text()) > imports
    assert changed["status"] == "differ" and changed["count"] == 1
    assert not any("nickname" in difference for difference in changed["differences"])
