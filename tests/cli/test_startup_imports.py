"""Start-up stays light: what every command pays before it runs must not grow unnoticed.

`abmigrate --version`, `--help` and usage errors need neither SQLAlchemy, Alembic nor Rich;
commands import those when they use them (bench/cli_latency measures the latency itself).
"""

import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "rich", "psycopg", "pglast")


def _modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {name.split(".")[0] for name in done.stdout.split()}


def test_importing_the_package_and_the_cli_loads_no_heavy_dependency() -> None:
    loaded = _modules_after("import abmigrate, abmigrate.cli.main")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_version_loads_no_heavy_dependency() -> None:
    code = "import sys\nfrom abmigrate.cli.main import main\nassert main(['--version']) == 0\n"
    assert not _modules_after(code) & set(HEAVY)


def test_public_names_still_resolve_on_first_use() -> None:
    loaded = _modules_after(
        "import abmigrate\n"
        "assert abmigrate.Workspace.__name__ == 'Workspace'\n"
        "assert callable(abmigrate.api.status) and callable(abmigrate.load_settings)\n"
        "from abmigrate import Policy, Settings, Environment"
    )
    # the names resolved (the asserts above ran); the API itself imports SQLAlchemy only
    # where a command connects through it (a warm `status` never does)
    assert "sqlalchemy" not in loaded
