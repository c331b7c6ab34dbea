"""The fingerprint diff and hash, on hand-built fingerprints (pure logic)."""

from __future__ import annotations

from abmigrate.db.fingerprint import Fingerprint, diff, excluded_table


def test_digest_ignores_insertion_order_but_not_content() -> None:
    a = Fingerprint("sqlite", {"table t": {}, "column t.a": {"type": "INTEGER"}})
    b = Fingerprint("sqlite", {"column t.a": {"type": "INTEGER"}, "table t": {}})
    c = Fingerprint("sqlite", {"column t.a": {"type": "BIGINT"}, "table t": {}})
    assert a.digest == b.digest
    assert a.digest != c.digest
    assert Fingerprint("postgresql", dict(a.objects)).digest != a.digest


def test_diff_classifies_and_folds_whole_tables() -> None:
    expected = Fingerprint(
        "postgresql",
        {
            "table users": {},
            "column users.id": {"type": "INTEGER", "nullable": False, "default": None},
            "table gone": {},
            "column gone.x": {"type": "TEXT", "nullable": True, "default": None},
            "enum role": {"values": ["a", "b"]},
        },
    )
    actual = Fingerprint(
        "postgresql",
        {
            "table users": {},
            "column users.id": {"type": "BIGINT", "nullable": False, "default": None},
            "enum role": {"values": ["a", "b", "c"]},
            "index users.ix_users_id": {"columns": ["id"], "unique": False, "where": None},
        },
    )
    differences = diff(expected, actual)
    assert [(d.change, d.kind, d.name) for d in differences] == [
        ("changed", "column", "users.id"),
        ("changed", "enum", "role"),
        ("extra", "index", "users.ix_users_id"),
        ("missing", "table", "gone"),
    ]
    assert differences[0].describe() == "changed column users.id: type INTEGER → BIGINT"
    assert differences[3].table == "gone"
    assert differences[3].to_record()["description"].startswith("missing table gone (1 columns")
    assert diff(expected, expected) == []


def test_excluded_tables() -> None:
    assert excluded_table("alembic_version")
    assert excluded_table("abmigrate_journal")
    assert excluded_table("my_versions", version_table="my_versions")
    assert not excluded_table("users")
