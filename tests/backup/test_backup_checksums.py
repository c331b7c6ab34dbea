"""What the PostgreSQL per-table checksum (method v4, "h:") sees, and that it stays the same.

The restore test compares a restored copy's figures with the ones recorded at backup time, so
a figure must change with any change of the data (a value changed, values swapped between
rows or between columns, a NULL where a value was) and with nothing else. These tests change
the data in the ways PostgreSQL's own hash functions miss (a 32-bit fold of 64-bit values, a
numeric's scale, its special values, -0) and check that the figure moves; and they pin the
figures of a fixed table, v4 and the v3 one older backups recorded, so that a change of the
method shows as a failing test rather than as good backups reported damaged.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_backup import execute

from abmigrate.backup.postgres import PostgresBackend


def checksums(url: str, recorded: dict[str, str] | None = None) -> dict[str, str]:
    """Every table's checksum, by table name without the schema."""
    return {
        name.rpartition(".")[2]: stats.checksum
        for name, stats in PostgresBackend().table_stats(url, recorded).items()
    }


def figure_of(url: str, column_type: str, *values: str) -> str:
    """The checksum of a table (id int, x ``column_type``) holding ``values`` as x, in order."""
    rows = ", ".join(f"({number}, {value})" for number, value in enumerate(values, 1))
    execute(
        url,
        "DROP TABLE IF EXISTS t",
        f"CREATE TABLE t (id integer PRIMARY KEY, x {column_type})",
        *([f"INSERT INTO t VALUES {rows}"] if values else []),
    )
    return checksums(url)["t"]


def server_hashes_alike(url: str, column_type: str, a: str, b: str) -> bool:
    """Whether PostgreSQL's own record hash takes ``a`` and ``b`` (of the type) for the same."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            hashes = connection.execute(
                sa.text(
                    f"SELECT hash_record_extended(ROW(({a})::{column_type}), 0),"
                    f" hash_record_extended(ROW(({b})::{column_type}), 0)"
                )
            ).one()
    finally:
        engine.dispose()
    return bool(hashes[0] == hashes[1])


# Two different values of each type: swapped between two rows, the figure must change.
SWAPPABLE = [
    ("boolean", "true", "false"),
    ("smallint", "1", "2"),
    ("integer", "1", "2"),
    ("bigint", "1", "2"),
    ("numeric", "1.5", "2.5"),
    ("double precision", "0.1", "0.2"),
    ("text", "'bolt'", "'nut'"),
    ("varchar(10)", "'bolt'", "'nut'"),
    ("date", "'2026-01-01'", "'2026-01-02'"),
    ("time", "'03:04'", "'05:06'"),
    ("timestamp", "'2026-01-01 03:04'", "'2026-01-01 05:06'"),
    ("timestamptz", "'2026-01-01 03:04+00'", "'2026-01-01 05:06+00'"),
    ("bytea", "'\\x01'", "'\\x02'"),
    ("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'"),
    ("integer[]", "'{1,2}'", "'{3}'"),
    ("jsonb", "'{\"a\": 1}'", "'[]'"),
]


@pytest.mark.parametrize(("column_type", "a", "b"), SWAPPABLE, ids=[t for t, _, _ in SWAPPABLE])
def test_values_swapped_between_rows_change_the_figure(
    pg_url: str, column_type: str, a: str, b: str
) -> None:
    # A sum of record hashes would not see it: a record hash is linear in its columns' hashes.
    execute(
        pg_url,
        "DROP TABLE IF EXISTS t",
        f"CREATE TABLE t (id integer PRIMARY KEY, x {column_type}, y text)",
    )
    execute(pg_url, f"INSERT INTO t VALUES (1, {a}, 'first'), (2, {b}, 'second')")
    before = checksums(pg_url)["t"]
    execute(
        pg_url,
        f"UPDATE t SET x = CASE id WHEN 1 THEN ({b})::{column_type} ELSE ({a})::{column_type} END",
    )
    after = checksums(pg_url)["t"]
    assert after != before
    # And back: the figure is a function of the data, not of the rows' history or order.
    execute(
        pg_url,
        f"UPDATE t SET x = CASE id WHEN 1 THEN ({a})::{column_type} ELSE ({b})::{column_type} END",
    )
    assert checksums(pg_url)["t"] == before


def test_values_swapped_between_columns_change_the_figure(pg_url: str) -> None:
    execute(pg_url, "CREATE TABLE t (a bigint, b bigint, c text, d text)")
    execute(pg_url, "INSERT INTO t VALUES (1, 2, 'x', 'y')")
    before = checksums(pg_url)["t"]
    execute(pg_url, "UPDATE t SET a = 2, b = 1")
    assert checksums(pg_url)["t"] != before
    execute(pg_url, "UPDATE t SET a = 1, b = 2, c = 'y', d = 'x'")
    assert checksums(pg_url)["t"] != before


# Values PostgreSQL's own hash of the type takes for the same: 64 bits folded into 32.
FOLDED = [
    ("bigint", "0", "4294967297"),
    ("timestamp", "'2000-01-01 00:00'", "'2000-01-01 01:11:34.967297'"),
    ("timestamptz", "'2000-01-01 00:00+00'", "'2000-01-01 01:11:34.967297+00'"),
    ("time", "'00:00'", "'01:11:34.967297'"),
]


@pytest.mark.parametrize(("column_type", "a", "b"), FOLDED, ids=[t for t, _, _ in FOLDED])
def test_64_bit_values_the_server_hashes_alike_are_told_apart(
    pg_url: str, column_type: str, a: str, b: str
) -> None:
    assert server_hashes_alike(pg_url, column_type, a, b)  # what makes the case worth testing
    assert figure_of(pg_url, column_type, a) != figure_of(pg_url, column_type, b)


# Each group: values of one type that must all give different figures.
DISTINCT = [
    ("numeric", ["1.0", "1.00", "1", "0", "'NaN'", "'Infinity'", "'-Infinity'", "NULL"]),
    ("double precision", ["0", "'-0'", "'NaN'", "'Infinity'", "NULL"]),
    ("date", ["'2000-01-01'", "'infinity'", "'-infinity'", "'5874897-12-31'", "NULL"]),
    ("text", ["''", "NULL", "'NULL'"]),
    ("boolean", ["false", "true", "NULL"]),
    ("smallint", ["0", "NULL", "-1"]),
    ("integer", ["0", "NULL", "-1"]),
    ("bigint", ["0", "NULL", "-1", "4294967296", "-4294967296"]),
    ("timestamptz", ["'2000-01-01 00:00+00'", "NULL", "'infinity'", "'-infinity'"]),
    ("time", ["'00:00'", "NULL", "'24:00'"]),
    ("uuid", ["'00000000-0000-0000-0000-000000000000'", "NULL"]),
    ("bytea", ["''", "NULL", "'\\x00'"]),
]


@pytest.mark.parametrize(("column_type", "values"), DISTINCT, ids=[t for t, _ in DISTINCT])
def test_values_a_type_hash_would_merge_give_different_figures(
    pg_url: str, column_type: str, values: list[str]
) -> None:
    # NULL stands for a value of the type inside the hash, with a mark: both are seen.
    found = {value: figure_of(pg_url, column_type, value) for value in values}
    assert len(set(found.values())) == len(values), found


def test_the_figure_goes_by_column_name_not_position(pg_url: str) -> None:
    # A restore may lay the columns out in another order (inheritance, partitions).
    execute(
        pg_url,
        "CREATE TABLE one (a bigint, b text, c timestamptz, d numeric)",
        "CREATE TABLE two (d numeric, c timestamptz, b text, a bigint)",
        "INSERT INTO one VALUES (1, 'x', '2026-01-01+00', 1.5), (NULL, NULL, NULL, NULL)",
        "INSERT INTO two (a, b, c, d) SELECT a, b, c, d FROM one",
    )
    found = checksums(pg_url)
    assert found["one"] == found["two"]


def test_a_table_wider_than_one_chain_is_hashed_and_a_change_in_its_last_column_shows(
    pg_url: str,
) -> None:
    columns = ", ".join(f"c{n:04} bigint" for n in range(1, 1600))
    execute(pg_url, f"CREATE TABLE wide (id integer, {columns})")
    execute(pg_url, "INSERT INTO wide (id, c0001, c0800, c1599) VALUES (1, 1, 2, 3), (2, 4, 5, 6)")
    before = checksums(pg_url)["wide"]
    execute(
        pg_url, "UPDATE wide SET c1599 = 6 WHERE id = 1", "UPDATE wide SET c1599 = 3 WHERE id = 2"
    )
    assert checksums(pg_url)["wide"] != before


PINNED = (
    "CREATE TYPE mood AS ENUM ('draft', 'ready', 'final')",
    "CREATE TABLE t_pin (id integer PRIMARY KEY, flag boolean, small smallint, big bigint,"
    " name text, code varchar(8), day date, at timestamptz, local timestamp, clock time,"
    " price numeric, ratio double precision, raw bytea, uid uuid, status mood, tags text[],"
    " doc jsonb)",
    "INSERT INTO t_pin VALUES"
    " (1, true, 7, 4294967297, 'bolt', 'B-1', '2026-01-02', '2026-01-02 03:04:05.678901+00',"
    " '2026-01-02 03:04:05', '03:04:05.5', 1.50, 0.1, '\\x00ff',"
    " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ready', '{a,b}', '{\"a\": [1, 2]}'),"
    " (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL),"
    " (3, false, -1, -9223372036854775808, '', '', 'infinity', '-infinity', 'infinity',"
    " '24:00', 'NaN', '-0', '', '00000000-0000-0000-0000-000000000000', 'draft', '{}', 'null'),"
    " (4, false, 0, 0, 'x', 'y', '-infinity', 'infinity', '1999-12-31 23:59:59.999999',"
    " '00:00', '-Infinity', 'NaN', '\\x', NULL, 'final', '{NULL}', '[]'),"
    " (5, true, 32767, 9223372036854775807, 'nut', 'N', '4713-01-01 BC',"
    " '294276-12-31 23:59:59.999999+00', '2000-01-01 01:11:34.967297', '23:59:59.999999',"
    " 'Infinity', 'Infinity', '\\xdeadbeef', NULL, NULL, NULL, '{}')",
)


def test_the_figures_of_a_fixed_table_are_pinned_v4_and_v3(pg_url: str) -> None:
    # A restore test compares with figures recorded by an earlier abmigrate: a change here
    # must come as a new method (its own prefix), never as a change of an existing one.
    execute(pg_url, *PINNED)
    assert checksums(pg_url) == {"t_pin": "h:-3129704545684682433"}
    # v3, as abmigrate recorded it before v4 (computed for a backup whose figure says "c:").
    assert checksums(pg_url, {"public.t_pin": "c:-7093566387915342394"}) == {
        "t_pin": "c:-7093566387915342394"
    }
