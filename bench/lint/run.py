"""Benchmark: `abmigrate lint` over a generated 300-revision Alembic project, against the
pipeline a team would use instead: `alembic upgrade head --sql` piped to squawk.

    .venv/bin/pip install squawk-cli     # or: pip install -e '.[bench]'
    .venv/bin/python bench/lint/run.py [--revisions 300] [--repeat 3]

Both sides run as the commands a user types (new processes, interpreter start included),
measured in the same run; the medians and their ratio are printed. abmigrate runs warm (its
analysis and revision-graph caches filled by an untimed first run) and cold (an empty cache
folder every run, as after a checkout, an edit of env.py or an upgrade of abmigrate): the
goals (issue #14) are warm <= 0.5x and cold <= 1.2x the pipeline. Then the findings are
compared for the safety rules both tools have: for each pair of rules, the revisions squawk
flags, the revisions abmigrate flags, and the ones squawk flags that abmigrate does not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BIN = Path(sys.executable).parent

# squawk rule -> the abmigrate rule that covers the same hazard
SHARED_RULES = {
    "require-concurrent-index-creation": "AM101",
    "require-concurrent-index-deletion": "AM102",
    "ban-concurrent-index-creation-in-transaction": "AM103",
    "adding-foreign-key-constraint": "AM104",
    "adding-not-nullable-field": "AM106",
    "changing-column-type": "AM107",
    "adding-field-with-default": "AM108",
    "disallowed-unique-constraint": "AM109",
    "adding-serial-primary-key-field": "AM110",
    "require-lock-timeout": "AM111",
    "ban-drop-table": "AM201",
    "ban-drop-column": "AM202",
    "renaming-table": "AM301",
    "renaming-column": "AM302",
    "adding-required-field": "AM304",
}

ENV_PY = """
from alembic import context

config = context.config


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    raise SystemExit("offline only")
"""

PATTERNS = [
    # (message, upgrade body) with {t} the table of this cycle and {p} the previous one
    (
        "create table {t}",
        'op.create_table("{t}", sa.Column("id", sa.Integer(), primary_key=True),'
        ' sa.Column("name", sa.String(50)), sa.Column("qty", sa.Integer()),'
        ' sa.Column("ref_id", sa.Integer()), sa.Column("note", sa.Text()))\n'
        '    op.create_index("ix_{t}_qty", "{t}", ["qty"])',
    ),
    ("add {t}.extra", 'op.add_column("{t}", sa.Column("extra", sa.Text()))'),
    ("index {t}.name", 'op.create_index("ix_{t}_name", "{t}", ["name"])'),
    (
        "require {t}.name",
        'op.alter_column("{t}", "name", existing_type=sa.String(50), nullable=False)',
    ),
    ("link {t} to {p}", 'op.create_foreign_key("fk_{t}_ref", "{t}", "{p}", ["ref_id"], ["id"])'),
    ("backfill {t}.qty", 'op.execute("UPDATE {t} SET qty = 0 WHERE qty IS NULL")'),
    (
        "widen {t}.qty",
        'op.alter_column("{t}", "qty", type_=sa.BigInteger(), existing_type=sa.Integer())',
    ),
    ("add {t}.code", 'op.add_column("{t}", sa.Column("code", sa.String(20), nullable=False))'),
    ("unique {t}.code", 'op.create_unique_constraint("uq_{t}_code", "{t}", ["code"])'),
    ("drop {t}.note", 'op.drop_column("{t}", "note")'),
    ("rename {t}.extra", 'op.alter_column("{t}", "extra", new_column_name="details")'),
    (
        "index {t}.code concurrently",
        "with op.get_context().autocommit_block():\n"
        '        op.create_index("ix_{t}_code", "{t}", ["code"], postgresql_concurrently=True)',
    ),
    ("drop index {t}.qty", 'op.drop_index("ix_{t}_qty", table_name="{t}")'),
    (
        "add {t}.token",
        'op.add_column("{t}", sa.Column("token", sa.Uuid(),'
        ' server_default=sa.text("gen_random_uuid()")))',
    ),
    ("add {t}.seq", 'op.execute("ALTER TABLE {t} ADD COLUMN seq bigserial")'),
    (
        "create {t}_aux",
        'op.create_table("{t}_aux", sa.Column("id", sa.Integer(), primary_key=True))',
    ),
    ("rename {t}_aux", 'op.rename_table("{t}_aux", "{t}_old")'),
    ("drop {t}_old", 'op.drop_table("{t}_old")'),
]


def generate(root: Path, count: int) -> None:
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "migrations" / "script.py.mako").write_text("")
    (root / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\nsqlalchemy.url = postgresql+psycopg://\n"
    )
    previous = None
    for number in range(count):
        cycle, step = divmod(number, len(PATTERNS))
        message, body = PATTERNS[step]
        names = {"t": f"t{cycle}", "p": f"t{max(cycle - 1, 0)}"}
        revision = f"{number + 1:012x}"
        (versions / f"{revision}.py").write_text(
            f'"""{message.format(**names)}\n\nRevision ID: {revision}\n"""\n'
            "from alembic import op\nimport sqlalchemy as sa\n\n"
            f"revision = {revision!r}\ndown_revision = {previous!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade():\n    {body.format(**names)}\n\n\n"
            "def downgrade():\n    raise NotImplementedError\n"
        )
        previous = revision


GOALS = {"lint warm": 0.5, "lint cold": 1.2}


def timed(
    command: list[str], cwd: Path, stdout_path: Path | None = None, cache: Path | None = None
) -> tuple[float, float, str]:
    """Wall-clock seconds, CPU seconds (user + system of the child) and standard output;
    ``cache``: abmigrate's cache folder ($ABMIGRATE_CACHE_DIR)."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users run with cached bytecode
    if cache is not None:
        env["ABMIGRATE_CACHE_DIR"] = str(cache)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if stdout_path is not None:
        stdout_path.write_text(result.stdout)
    return elapsed, cpu, result.stdout


def squawk_by_revision(sql_path: Path, report: str) -> dict[str, set[str]]:
    """squawk rule -> revisions, from the line numbers in the concatenated SQL."""
    lines = sql_path.read_text().splitlines()
    revision_at: list[str] = []
    current = ""
    for line in lines:
        match = re.match(r"-- Running upgrade .* -> (\w+)", line)
        if match:
            current = match.group(1)
        revision_at.append(current)
    found: dict[str, set[str]] = defaultdict(set)
    for finding in json.loads(report or "[]"):
        revision = revision_at[finding["line"]]
        if revision:  # the preamble creates alembic_version itself: not a revision's SQL
            found[finding["rule_name"]].add(revision)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--revisions", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    squawk = shutil.which("squawk", path=str(BIN)) or shutil.which("squawk")
    if squawk is None:
        raise SystemExit("squawk is not installed: pip install squawk-cli")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, args.revisions)
        sql_path = root / "upgrade.sql"
        lint_cmd = [
            str(BIN / "abmigrate"),
            "--alembic-ini",
            "alembic.ini",
            "lint",
            "--format",
            "json",
        ]
        render_cmd = [str(BIN / "alembic"), "-c", "alembic.ini", "upgrade", "head", "--sql"]
        squawk_cmd = [squawk, "--reporter", "json", str(sql_path)]
        runs: dict[str, list[tuple[float, float]]] = defaultdict(list)
        warm = root / "cache-warm"
        timed(lint_cmd, root, cache=warm)  # fills the warm cache (untimed)
        for index in range(args.repeat):
            cold = root / f"cache-cold-{index}"
            wall, cpu, lint_out = timed(lint_cmd, root, cache=warm)
            runs["lint warm"].append((wall, cpu))
            wall, cpu, _ = timed(lint_cmd, root, cache=cold)
            runs["lint cold"].append((wall, cpu))
            wall, cpu, _ = timed(render_cmd, root, sql_path)
            runs["render"].append((wall, cpu))
            wall, cpu, squawk_out = timed(squawk_cmd, root)
            runs["squawk"].append((wall, cpu))
        wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
        print(f"{args.revisions} revisions, median of {args.repeat} runs   wall s   cpu s")
        for label, key in (
            ("alembic upgrade head --sql", "render"),
            ("squawk on that SQL", "squawk"),
            ("abmigrate lint, warm cache", "lint warm"),
            ("abmigrate lint, cold cache", "lint cold"),
        ):
            print(f"  {label:32} {wall[key]:7.3f} {cpu[key]:7.3f}")
        base_wall, base_cpu = wall["render"] + wall["squawk"], cpu["render"] + cpu["squawk"]
        print(f"  {'pipeline (baseline)':32} {base_wall:7.3f} {base_cpu:7.3f}")
        for key, goal in GOALS.items():
            print(
                f"  ratio {key} / pipeline: {wall[key] / base_wall:.2f}x wall,"
                f" {cpu[key] / base_cpu:.2f}x cpu (goal {goal}x)"
            )
        ours_found: dict[str, set[str]] = defaultdict(set)
        findings = json.loads(lint_out)
        for finding in findings:
            ours_found[finding["code"]].add(finding["revision"])
        theirs = squawk_by_revision(sql_path, squawk_out)
        total_squawk = len(json.loads(squawk_out or "[]"))
        print(f"\nfindings: squawk {total_squawk} (all rules), abmigrate {len(findings)}")
        print(f"{'squawk rule':45} {'code':6} {'squawk':>7} {'ours':>6} {'missed':>7}")
        for rule, code in SHARED_RULES.items():
            flagged, mine = theirs.get(rule, set()), ours_found.get(code, set())
            missed = flagged - mine
            print(f"{rule:45} {code:6} {len(flagged):7d} {len(mine):6d} {len(missed):7d}")
        others = sorted(set(theirs) - set(SHARED_RULES))
        print("\nsquawk rules without an abmigrate counterpart (revisions flagged):")
        for rule in others:
            print(f"  {rule}: {len(theirs[rule])}")


if __name__ == "__main__":
    main()
