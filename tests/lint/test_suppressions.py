"""Where an inline suppression applies (pure logic, no Alembic)."""

from __future__ import annotations

from abmigrate.lint.suppressions import parse_suppressions

KNOWN = {"AM101", "AM202", "AM501"}

SOURCE = """
def upgrade():
    op.execute("-- abmigrate: ignore[AM101] reason: inside a string, not a comment")
    # abmigrate: ignore[AM101, AM501] reason: orders holds 50 rows
    with op.get_context().autocommit_block():
        op.create_index("ix", "orders", ["a"])
        op.execute("UPDATE orders SET a = 1")
    op.drop_column(  # abmigrate: ignore[AM202] reason: unused since v2
        "orders",
        "legacy",
    )
    op.drop_column("orders", "b")
"""


def test_own_line_comment_covers_the_next_statement_whole() -> None:
    suppressions, problems = parse_suppressions(SOURCE, KNOWN)
    assert problems == []
    block = suppressions[0]
    assert block.codes == ("AM101", "AM501")
    assert block.reason == "orders holds 50 rows"
    assert block.covers("AM101", 6) and block.covers("AM501", 7)
    assert not block.covers("AM101", 8) and not block.covers("AM202", 6)


def test_trailing_comment_covers_its_multi_line_statement_only() -> None:
    suppressions, _ = parse_suppressions(SOURCE, KNOWN)
    trailing = suppressions[1]
    assert (trailing.start, trailing.end) == (8, 11)
    assert trailing.covers("AM202", 8) and not trailing.covers("AM202", 12)


def test_text_inside_a_string_is_not_a_suppression() -> None:
    suppressions, _ = parse_suppressions(SOURCE, KNOWN)
    assert [s.line for s in suppressions] == [4, 8]


def test_reason_is_required_and_codes_must_exist() -> None:
    source = (
        "x = 1  # abmigrate: ignore[AM101]\n"
        "y = 2  # abmigrate: ignore[AM999] reason: typo\n"
        "z = 3  # abmigrate: ignore[] reason: nothing\n"
    )
    suppressions, problems = parse_suppressions(source, KNOWN)
    assert suppressions == []
    assert [line for line, _ in problems] == [1, 2, 3]
    assert "gives no reason" in problems[0][1]
    assert "AM999" in problems[1][1]


def test_file_level_suppression_covers_everything() -> None:
    suppressions, _ = parse_suppressions("# abmigrate: ignore-file[AM501] reason: one-off\n", KNOWN)
    assert suppressions[0].file_level and suppressions[0].covers("AM501", None)
