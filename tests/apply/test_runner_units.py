"""Pure logic of the runner: maintenance windows, lock needs from SQL, data-loss parsing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from abmigrate.apply.data_loss import dropped_objects
from abmigrate.apply.window import in_window
from abmigrate.db.pg_locks import CONFLICTS, created_tables, lock_needs
from abmigrate.errors import ConfigError

# 2026-11-28 is a Saturday.
SAT_23 = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
SUN_03 = datetime(2026, 11, 29, 3, 59, tzinfo=UTC)
SUN_04 = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
TUE_02 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "moment", "inside"),
    [
        ("Sat 22:00-Sun 04:00 UTC", SAT_23, True),
        ("Sat 22:00-Sun 04:00 UTC", SUN_03, True),
        ("Sat 22:00-Sun 04:00 UTC", SUN_04, False),
        ("Sat 22:00-Sun 04:00 UTC", TUE_02, False),
        ("22:00-04:00", TUE_02, True),
        ("Mon-Fri 01:00-03:00", TUE_02, True),
        ("Mon-Fri 01:00-03:00", SUN_03, False),
        ("Sun 22:00-Mon 02:00", datetime(2026, 11, 30, 1, 0, tzinfo=UTC), True),
        # 02:00 UTC is 03:00 in Berlin (winter): outside 01:00-02:30 local.
        ("Tue 01:00-02:30 Europe/Berlin", TUE_02, False),
        ("Tue 01:00-03:30 Europe/Berlin", TUE_02, True),
        ("Sat 10:00-11:00, Tue 01:00-03:00", TUE_02, True),
    ],
)
def test_maintenance_windows(window: str, moment: datetime, inside: bool) -> None:
    assert in_window(window, moment) is inside


@pytest.mark.parametrize(
    "window", ["Sat 22-Sun 04", "Xyz 22:00-23:00", "25:00-26:00", "22:00-23:00 Mars/Base"]
)
def test_malformed_windows_are_config_errors(window: str) -> None:
    with pytest.raises(ConfigError):
        in_window(window, SAT_23)


def test_lock_needs_per_statement_kind() -> None:
    needs = lock_needs(
        [
            "CREATE INDEX CONCURRENTLY ix ON parts (name);",
            "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (part_id) REFERENCES parts (id)"
            " NOT VALID;",
            "ALTER TABLE orders VALIDATE CONSTRAINT fk;",
            "CREATE TABLE fresh (id int);",
            "UPDATE alembic_version SET version_num='b' WHERE version_num = 'a';",
        ]
    )
    assert needs == {
        "parts": "ShareRowExclusiveLock",
        "orders": "AccessExclusiveLock",
    }
    assert lock_needs("CREATE INDEX ix ON parts (name)") == {"parts": "ShareLock"}
    assert lock_needs("ALTER TABLE t VALIDATE CONSTRAINT c") == {"t": "ShareUpdateExclusiveLock"}
    assert lock_needs("this is not SQL") == {}


def test_created_tables_are_the_ones_the_runner_need_not_look_at() -> None:
    # The runner asks pg_locks nothing before a revision about tables an earlier revision of
    # the same run created: these are the names it learns from each revision's SQL.
    assert created_tables(
        [
            "CREATE TABLE parts (id INTEGER PRIMARY KEY)",
            "CREATE TABLE archive AS SELECT * FROM orders",
            "ALTER TABLE orders ADD COLUMN note TEXT",
            "CREATE INDEX ix_parts_id ON parts (id)",
        ]
    ) == {"parts", "archive"}
    assert created_tables("this is not SQL") == set()


def test_conflict_matrix_is_symmetric() -> None:
    for mode, conflicts in CONFLICTS.items():
        for other in conflicts:
            assert mode in CONFLICTS[other], (mode, other)
    # Readers never block a concurrent index build; writers block a plain one.
    assert "AccessShareLock" not in CONFLICTS["ShareUpdateExclusiveLock"]
    assert "RowExclusiveLock" in CONFLICTS["ShareLock"]


def test_dropped_objects_from_rendered_sql() -> None:
    sql = """
-- Running downgrade r3 -> r2
ALTER TABLE items DROP COLUMN price;
ALTER TABLE "orders" DROP CONSTRAINT fk_orders_item, DROP COLUMN "note";
DROP INDEX ix_orders_item_id;
DROP TABLE IF EXISTS public.notes;
CREATE TABLE _alembic_tmp_parts (id INTEGER NOT NULL, name VARCHAR(50));
INSERT INTO _alembic_tmp_parts (id, name) SELECT parts.id, parts.name FROM parts;
DROP TABLE parts;
ALTER TABLE _alembic_tmp_parts RENAME TO parts;
"""
    tables, columns = dropped_objects(sql)
    assert tables == ["notes"]
    assert columns == {"items": ["price"], "orders": ["note"], "parts": ["!id", "!name"]}


def test_progress_lines_thin_out_as_a_long_phase_goes_on() -> None:
    from dataclasses import replace

    from abmigrate.events import IndexProgress
    from abmigrate.render.events import ProgressThrottle

    throttle = ProgressThrottle(max_gap_s=30)
    building = IndexProgress(
        revision="r1", command="CREATE INDEX", phase="building index", running_s=0.0
    )
    shown = [second for second in range(1800) if throttle.due(building, float(second))]
    assert shown[:5] == [0, 1, 3, 7, 15]  # quick at first: the user sees it moving
    assert all(b - a <= 30 for a, b in itertools.pairwise(shown))
    assert len(shown) < 80  # a 30-minute build, not 1800 lines
    # A new phase is always shown at once.
    assert throttle.due(replace(building, phase="waiting for old snapshots"), 1800.5)
