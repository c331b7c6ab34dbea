"""The ``--format json`` contracts: what scripts and CI jobs parse must not change shape.

Every command's JSON on the ABParts reference project (SQLite) is reduced to its shape (keys,
and the JSON types each key holds) and compared with ``tests/contracts/json_shapes.json``.
Internal refactors (typed records instead of dicts, say) must leave these shapes alone; a
deliberate change of a contract updates the file (``ABMIGRATE_UPDATE_CONTRACTS=1``) and says
so in the changelog of the command.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = REPO_ROOT / "tests" / "contracts" / "json_shapes.json"
ROOT_REVISION = "4f2a9c1e7b30"


def shape(value: Any) -> Any:
    """Keys and JSON types, with every element of a list merged into one shape."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            merged = _merge(merged, shape(item))
        return [merged] if merged is not None else []
    if value is None:
        return "null"
    return {bool: "bool", int: "number", float: "number", str: "string"}[type(value)]


def _merge(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        return {key: _merge(a.get(key), b.get(key)) for key in sorted(a.keys() | b.keys())}
    if isinstance(a, list) and isinstance(b, list):
        return [_merge(a[0] if a else None, b[0] if b else None)] if a or b else []
    if a == b:
        return a
    names = set(str(a).split("|")) | set(str(b).split("|"))
    return "|".join(sorted(names))


def test_json_output_of_every_command_keeps_its_shape(run_cli, tmp_path: Path) -> None:
    project = tmp_path / "abparts"
    shutil.copytree(REPO_ROOT / "examples" / "abparts", project)
    (project / "abmigrate.toml").write_text(
        'alembic_ini = "alembic.ini"\n[environments.development]\nurl = "sqlite:///dev.db"\n'
    )
    database = project / "dev.db"

    def json_of(*args: str, expect: int = 0) -> Any:
        result = run_cli("--format", "json", *args, cwd=project)
        assert result.exit_code == expect, result
        return json.loads(result.stdout)

    shapes: dict[str, Any] = {}
    shapes["status (empty)"] = json_of("status")
    shapes["plan --sql"] = json_of("plan", "--sql")
    shapes["lint"] = json_of("lint")
    upgraded = json_of("upgrade", "--yes")
    shapes["upgrade"] = upgraded
    shapes["status"] = json_of("status")
    shapes["current"] = json_of("current")
    shapes["heads"] = json_of("heads")
    shapes["history"] = json_of("history")
    journal = json_of("journal")
    shapes["journal"] = journal
    shapes["journal RUN"] = json_of("journal", journal["runs"][0]["run_id"])
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO machines (id, customer_organization_id, model_type, name, serial_number)"
            " VALUES ('m1', 'o1', 'V4.0', 'press', 'S-1')"
        )
    shapes["plan --down"] = json_of("plan", "--down", ROOT_REVISION)
    shapes["downgrade --dry-run"] = json_of("downgrade", ROOT_REVISION, "--dry-run", "--yes")
    shapes["backup"] = json_of("backup")
    shapes["backups"] = json_of("backups")
    shapes["diagnose"] = json_of("diagnose")
    fleet = project / "targets.txt"
    fleet.write_text(f"dev=sqlite:///{database}\nfresh=sqlite:///{project / 'fresh.db'}\n")
    shapes["fleet plan"] = json_of("fleet", "plan", "--targets", str(fleet))
    shapes["fleet upgrade"] = json_of("fleet", "upgrade", "--targets", str(fleet), "--yes")
    shapes["fleet status"] = json_of("fleet", "status", "--targets", str(fleet))
    shapes["fleet diagnose"] = json_of("fleet", "diagnose", "--targets", str(fleet))
    shapes["graph"] = json_of("graph")
    shapes["report"] = json_of("report")

    found = {command: shape(output) for command, output in shapes.items()}
    if os.environ.get("ABMIGRATE_UPDATE_CONTRACTS") == "1":
        CONTRACTS.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    expected = json.loads(CONTRACTS.read_text())
    for command in expected:
        assert found.get(command) == expected[command], f"the JSON of `{command}` changed shape"
    assert found.keys() == expected.keys()
