"""A fleet's inventory, shards and cohorts: what a user writes, what abmigrate makes of it."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from abmigrate.config.settings import load_settings
from abmigrate.errors import ConfigError, RevisionError
from abmigrate.fleet.inventory import Target, load_fleet, parse_target_lines
from abmigrate.fleet.rollout import check_target, cohorts
from abmigrate.fleet.shard import Shard, parse_shard

SERVER = "postgresql+psycopg://app:pw@db.internal/main"


def _project(tmp_path: Path, fleets: str) -> Path:
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = .\n", encoding="utf-8")
    (tmp_path / "abmigrate.toml").write_text(
        'alembic_ini = "alembic.ini"\ndefault_env = "production"\n'
        "[environments.production]\n"
        f'url = "{SERVER}"\n'
        "require_confirmation = true\n" + fleets,
        encoding="utf-8",
    )
    return tmp_path / "abmigrate.toml"


def test_target_lines_name_databases_files_and_schemas() -> None:
    targets = parse_target_lines(
        [
            "# tenants",
            "",
            "acme=postgresql+psycopg://app:secret@db1/acme",
            "postgresql+psycopg://app@db2/globex?sslmode=require",
            "sqlite:///data/initech.db",
            "schema:umbrella",
            "hooli=schema:hooli_schema",
        ],
        origin="targets.txt",
        default_url=SERVER,
    )
    assert [(t.name, t.schema) for t in targets] == [
        ("acme", None),
        ("globex", None),
        ("initech", None),
        ("umbrella", "umbrella"),
        ("hooli", "hooli_schema"),
    ]
    assert targets[0].database == "postgresql+psycopg://app:***@db1/acme"
    assert targets[3].url == targets[4].url == SERVER
    # Schemas of one database share its lock; the files and databases do not.
    assert targets[3].database_key == targets[4].database_key != targets[0].database_key


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("acme=not a url", "targets.txt:1: not a database URL or schema:NAME"),
        ("bad name=postgresql://h/db", "target name 'bad name' is not usable"),
        ("schema:no-dash", "not a schema name"),
    ],
)
def test_a_bad_target_line_is_one_clear_error(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_target_lines([line], origin="targets.txt", default_url=SERVER)


def test_a_schema_needs_the_environments_database() -> None:
    with pytest.raises(ConfigError, match="needs the environment's database URL"):
        parse_target_lines(["schema:acme"], origin="t", default_url=None)


def test_configured_fleet_from_urls_schemas_file_and_command(tmp_path: Path) -> None:
    (tmp_path / "more.txt").write_text("c=sqlite:///c.db\n", encoding="utf-8")
    (tmp_path / "list.py").write_text("print('d=sqlite:///d.db')\n", encoding="utf-8")
    config = _project(
        tmp_path,
        "[fleets.tenants]\n"
        'environment = "production"\n'
        'urls = ["a=postgresql+psycopg://app@db1/a"]\n'
        'schemas = ["b"]\n'
        'targets_file = "more.txt"\n'
        f'command = ["{sys.executable}", "list.py"]\n'
        'canary = ["b"]\n'
        "concurrency = 8\n"
        "failure_budget = 2\n",
    )
    fleet = load_fleet(load_settings(config))
    assert [(t.name, t.schema) for t in fleet.targets] == [
        ("a", None),
        ("b", "b"),
        ("c", None),
        ("d", None),
    ]
    assert fleet.environment.name == "production"
    assert fleet.environment.policy.require_confirmation
    assert (fleet.canary, fleet.concurrency, fleet.failure_budget) == (["b"], 8, 2)


def test_configured_fleet_from_a_directory_query(tmp_path: Path) -> None:
    import sqlite3

    directory = tmp_path / "directory.db"
    with sqlite3.connect(directory) as connection:
        connection.execute("CREATE TABLE tenants (name text, url text, schema text)")
        connection.execute("INSERT INTO tenants VALUES ('a', 'sqlite:///a.db', NULL)")
        connection.execute("INSERT INTO tenants VALUES ('b', NULL, 'tenant_b')")
    config = _project(
        tmp_path,
        "[fleets.tenants]\n"
        'environment = "production"\n'
        'query = "SELECT name, url, schema FROM tenants ORDER BY name"\n'
        'query_url_env = "TENANT_DIRECTORY_URL"\n',
    )
    monkey = pytest.MonkeyPatch()
    monkey.setenv("TENANT_DIRECTORY_URL", f"sqlite:///{directory}")
    try:
        fleet = load_fleet(load_settings(config))
    finally:
        monkey.undo()
    assert [(t.name, t.url, t.schema) for t in fleet.targets] == [
        ("a", "sqlite:///a.db", None),
        ("b", SERVER, "tenant_b"),
    ]


@pytest.mark.parametrize(
    ("fleets", "message"),
    [
        ("[fleets.t]\nurl = []\n", "unknown key 'url' in fleets.t"),
        ("[fleets.t]\nurls = ['a=sqlite:///a.db', 'a=sqlite:///b.db']\n", "names repeat: a"),
        ("[fleets.t]\nurls = ['a=sqlite:///a.db']\ncanary = ['zz']\n", "unknown targets: zz"),
        ("[fleets.t]\nurls = ['a=sqlite:///a.db']\nconcurrency = 0\n", "concurrency"),
        ("[fleets.t]\ncommand = 'false'\n", "command: false exited with 1"),
    ],
)
def test_fleet_configuration_mistakes_are_named(tmp_path: Path, fleets: str, message: str) -> None:
    config = _project(tmp_path, fleets)
    with pytest.raises(ConfigError, match=message):
        load_fleet(load_settings(config))


def test_which_fleet_when_several_are_configured(tmp_path: Path) -> None:
    config = _project(
        tmp_path,
        "[fleets.eu]\nurls = ['a=sqlite:///a.db']\n[fleets.us]\nurls = ['b=sqlite:///b.db']\n",
    )
    with pytest.raises(ConfigError, match="which fleet\\? configured: eu, us"):
        load_fleet(load_settings(config))
    assert [t.name for t in load_fleet(load_settings(config), "us").targets] == ["b"]


def test_shards_are_stable_disjoint_and_cover_everything() -> None:
    targets = [Target(f"tenant-{n}", f"sqlite:///{n}.db") for n in range(500)]
    shards = [Shard(k, 4) for k in range(1, 5)]
    chosen = [{t.name for t in shard.select(targets)} for shard in shards]
    assert sorted(n for names in chosen for n in names) == sorted(t.name for t in targets)
    assert all(80 < len(names) < 170 for names in chosen)  # roughly even
    # The same name lands in the same shard whatever the order and the other members.
    assert {t.name for t in shards[0].select(list(reversed(targets))[:100])} <= chosen[0]
    assert parse_shard("2/4") == Shard(2, 4)
    for bad in ("0/4", "5/4", "2", "a/b"):
        with pytest.raises(ConfigError, match="expected K/N"):
            parse_shard(bad)


def test_cohorts_canaries_first_then_waves() -> None:
    targets = [Target(name, f"sqlite:///{name}.db") for name in "abcdefg"]
    groups = cohorts(targets, ["e", "b"], wave_size=2)
    assert [(name, [t.name for t in members]) for name, members in groups] == [
        ("canary", ["b", "e"]),
        ("wave 1", ["a", "c"]),
        ("wave 2", ["d", "f"]),
        ("wave 3", ["g"]),
    ]
    assert [name for name, _ in cohorts(targets, [], 0)] == ["wave 1"]


@pytest.mark.parametrize("target", ["-1", "+2", "ae10+1"])
def test_a_fleet_refuses_relative_targets(target: str) -> None:
    with pytest.raises(RevisionError, match="absolute target"):
        check_target("downgrade", target)


def test_alembic_proxies_answer_per_thread() -> None:
    """Two threads inside their own EnvironmentContext each see their own `context`."""
    from alembic import context
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    from abmigrate.bridge.threads import thread_local_proxies

    thread_local_proxies()
    seen: dict[str, object] = {}
    inside = threading.Barrier(2)

    def run(name: str) -> None:
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent))
        config.set_main_option("name", name)
        with EnvironmentContext(config, ScriptDirectory.__new__(ScriptDirectory)):
            inside.wait(timeout=30)
            seen[name] = context.config.get_main_option("name")
            inside.wait(timeout=30)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("acme", "globex")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"acme": "acme", "globex": "globex"}


def test_fleet_drift_compares_with_the_revision_or_says_why_it_compared_peers() -> None:
    from abmigrate.db.fingerprint import Fingerprint
    from abmigrate.fleet.survey import _drift_groups
    from abmigrate.results import TargetState

    table = {"table t": {"columns": ["id"]}}
    extra = {**table, "table stray": {"columns": ["id"]}}
    states = [
        TargetState(name=name, database="db", schema=None, state="up_to_date", current=["r2"])
        for name in ("a", "b", "c")
    ]
    prints = {
        "a": Fingerprint("postgresql", extra),
        "b": Fingerprint("postgresql", extra),
        "c": Fingerprint("postgresql", table),
    }
    key = ("r2", "postgresql")
    # Against r2's replayed schema: the two alike with a stray table both differ.
    [group] = _drift_groups(states, prints, {key: Fingerprint("postgresql", table)})
    assert (group["compared_with"], group["identical"]) == ("revision", 1)
    assert [item["name"] for item in group["differ"]] == ["a", "b"]
    # r2 cannot be replayed: the majority is the reference, and the group says why.
    [group] = _drift_groups(states, prints, {key: "baseline undeclared"})
    assert (group["compared_with"], group["identical"]) == ("peers", 2)
    assert [item["name"] for item in group["differ"]] == ["c"]
    assert "baseline undeclared" in group["note"]


def test_a_worker_thread_of_env_py_sees_the_one_active_context() -> None:
    """env.py may run its migrations in a thread of its own (tests/scenarios/worker_thread_env):
    with the per-thread proxies installed, that thread sees the process's only context."""
    import pathlib
    import threading

    from alembic import context
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    from abmigrate.bridge.threads import thread_local_proxies

    thread_local_proxies()
    config = Config()
    scripts = pathlib.Path(__file__).resolve().parents[1] / "scenarios" / "linear" / "migrations"
    config.set_main_option("script_location", str(scripts))
    seen: list[object] = []
    with EnvironmentContext(config, ScriptDirectory.from_config(config)):
        worker = threading.Thread(target=lambda: seen.append(context.config))
        worker.start()
        worker.join()
    assert seen == [config]
