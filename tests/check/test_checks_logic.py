"""Pure logic of the checks: selection by name, data comparison, annotation escaping."""

from __future__ import annotations

from collections import Counter

import pytest

from abmigrate.check.checks import CHECKS, CheckFailure, select_checks
from abmigrate.check.datatrip import compare_snapshots
from abmigrate.errors import ConfigError
from abmigrate.render.records import github_annotation


def test_default_selection_leaves_out_the_opt_in_checks_and_keeps_registry_order() -> None:
    names = [spec.name for spec in select_checks()]
    assert names == [
        "single_head",
        "single_root",
        "graph_integrity",
        "lint",
        "models_match_head",
        "round_trip",
    ]
    assert [spec.name for spec in select_checks(["data_round_trip", "single_head"])] == [
        "single_head",
        "data_round_trip",
    ]
    assert "lint" not in [spec.name for spec in select_checks(skip=["lint"])]


def test_unknown_names_are_an_error_listing_every_valid_check() -> None:
    with pytest.raises(ConfigError) as caught:
        select_checks(["round_trip", "roundtrip"], skip=["nope"])
    assert caught.value.message == "unknown check 'roundtrip', 'nope'"
    assert caught.value.hint == "valid checks: " + ", ".join(CHECKS)
    assert caught.value.exit_code == 2


def test_every_check_explains_why_it_exists() -> None:
    for spec in CHECKS.values():
        assert spec.summary.endswith("."), spec.name
        # a rationale beyond the one-line summary
        assert len(spec.rationale) > len(spec.summary) + 80, spec.name


def snapshot(**tables: list[dict[str, object]]) -> dict[str, tuple[int, dict[str, Counter[str]]]]:
    taken = {}
    for table, rows in tables.items():
        columns: dict[str, Counter[str]] = {}
        for row in rows:
            for column, value in row.items():
                columns.setdefault(column, Counter())["NULL" if value is None else repr(value)] += 1
        taken[table] = (len(rows), columns)
    return taken


def test_data_comparison_reports_what_the_downgrade_did_not_give_back() -> None:
    before = snapshot(
        items=[{"id": 1, "price": 10}, {"id": 2, "price": 20}],
        tags=[{"id": 1}],
        notes=[{"id": 1, "text": None}],
    )
    after = snapshot(
        items=[{"id": 1, "price": None}, {"id": 2, "price": 20}],
        notes=[{"id": 1}],
        new_table=[{"id": 5}],
    )
    assert compare_snapshots(before, after) == [
        "column items.price: 1 value(s) not given back by the downgrade (e.g. 10 → NULL)",
        "table tags (1 row(s)) is gone after the downgrade",
    ]


def test_data_comparison_counts_lost_rows_and_dropped_columns_with_values() -> None:
    before = snapshot(items=[{"id": 1, "sku": "a"}, {"id": 2, "sku": "b"}])
    after = snapshot(items=[{"id": 1}])
    assert compare_snapshots(before, after) == [
        "table items: 2 row(s) before the upgrade, 1 after the downgrade",
        "column items.id: 1 value(s) not given back by the downgrade (e.g. 2)",
        "column items.sku (2 non-null value(s)) is gone after the downgrade",
    ]
    assert compare_snapshots(before, before) == []


def test_github_annotation_escapes_newlines_percent_and_property_separators() -> None:
    failure = CheckFailure(
        "round_trip",
        "revision a1 (100% done): the downgrade fails",
        path="versions/a,b:c.py",
        detail="NotImplementedError: no",
        differences=["extra index t.ix"],
        sql="DROP TABLE t;\nDROP TABLE u;",
        hint="fix it",
    )
    line = github_annotation(failure)
    assert "\n" not in line
    assert line.startswith("::error file=versions/a%2Cb%3Ac.py,title=abmigrate check round_trip::")
    assert "100%25 done" in line
    assert "%0A- extra index t.ix%0ASQL:%0ADROP TABLE t;%0ADROP TABLE u;%0Ahint: fix it" in line
