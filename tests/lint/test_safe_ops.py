"""The linter and ``abmigrate.ops`` agree: what the safe operations render is not flagged, and
the rules whose fix is a safe operation name that call in their hint and their docs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from test_rules import make_project

from abmigrate.lint import lint_project
from abmigrate.lint.registry import rule_by_code

SETUP = """
op.create_table("customers", sa.Column("id", sa.Integer(), primary_key=True))
op.create_table(
    "orders",
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("customer_id", sa.Integer()),
    sa.Column("name", sa.String(50)),
    sa.Column("qty", sa.Integer()),
)
op.create_index("ix_orders_qty", "orders", ["qty"])
"""

EVERY_SAFE_OPERATION = """
from abmigrate import ops
op.add_column("orders", sa.Column("note", sa.Text()))
ops.backfill("orders", "note = name", where="note IS NULL", batch_size=100)
ops.set_not_null("orders", "note")
ops.add_foreign_key("fk_orders_customer", "orders", "customers", ["customer_id"], ["id"])
ops.add_check("ck_orders_qty", "orders", "qty >= 0")
ops.create_index_concurrently("ix_orders_name", "orders", ["name"], unique=True)
ops.drop_index_concurrently("ix_orders_qty", "orders")
"""

THE_SAME_WITHOUT_OPS = """
op.add_column("orders", sa.Column("note", sa.Text()))
op.execute("UPDATE orders SET note = name WHERE note IS NULL")
op.alter_column("orders", "note", existing_type=sa.Text(), nullable=False)
op.create_foreign_key("fk_orders_customer", "orders", "customers", ["customer_id"], ["id"])
op.create_check_constraint("ck_orders_qty", "orders", "qty >= 0")
op.create_index("ix_orders_name", "orders", ["name"], unique=True)
op.drop_index("ix_orders_qty", table_name="orders")
"""

# rule -> the abmigrate.ops function its fix names
FIXED_BY = {
    "AM101": "create_index_concurrently",
    "AM102": "drop_index_concurrently",
    "AM103": "create_index_concurrently",
    "AM104": "add_foreign_key",
    "AM105": "add_check",
    "AM106": "set_not_null",
    "AM107": "backfill",
    "AM108": "backfill",
    "AM109": "create_index_concurrently",
    "AM110": "backfill",
    "AM304": "set_not_null",
    "AM501": "backfill",
    "AM502": "backfill",
}


def lint_codes(tmp_path: Path, upgrade: str) -> list[str]:
    project = make_project(
        tmp_path,
        [
            {"id": "a1", "upgrade": SETUP, "message": "create tables"},
            {"id": "b2", "down": "a1", "upgrade": upgrade, "message": "change orders"},
        ],
    )
    result = lint_project(project, assume_lock_timeout=True)
    return sorted(finding.code for finding in result.findings if finding.revision == "b2")


def test_what_the_safe_operations_render_is_not_flagged(tmp_path: Path) -> None:
    assert lint_codes(tmp_path / "ops", EVERY_SAFE_OPERATION) == []
    # The same changes with plain operations: each one is flagged, by the rule named for it.
    assert lint_codes(tmp_path / "plain", THE_SAME_WITHOUT_OPS) == [
        "AM101",
        "AM102",
        "AM104",
        "AM105",
        "AM106",
        "AM501",
        "AM502",
    ]


@pytest.mark.parametrize(("code", "function"), sorted(FIXED_BY.items()))
def test_fix_names_the_safe_operation(code: str, function: str) -> None:
    rule = rule_by_code()[code]
    assert f"`ops.{function}(" in rule.hint and "abmigrate.ops" in rule.hint, rule.hint
    doc = inspect.getdoc(rule) or ""
    use_instead = doc.split("### Use instead", 1)[1]
    assert re.search(rf"\bops\.{function}\(", use_instead), f"{code}: {use_instead}"
    assert "from abmigrate import ops" in use_instead or "abmigrate.ops" in use_instead


def test_finding_for_a_plain_index_points_at_the_safe_operation(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        [
            {"id": "a1", "upgrade": SETUP, "message": "create tables"},
            {
                "id": "b2",
                "down": "a1",
                "upgrade": 'op.create_index("ix_orders_name", "orders", ["name"])',
                "message": "index orders by name",
            },
        ],
    )
    (finding,) = [f for f in lint_project(project).findings if f.code == "AM101"]
    assert finding.hint.startswith('use `ops.create_index_concurrently("ix", "t", ["c"])`')
