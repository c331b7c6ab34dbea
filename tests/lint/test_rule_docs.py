"""Every rule is documented the same way, and docs/lint.md is generated from those docstrings."""

from __future__ import annotations

from pathlib import Path

import pytest

from abmigrate.lint.docs import BEGIN, END, missing_sections, rule_reference, splice
from abmigrate.lint.registry import Rule, all_rules

PAGE = Path(__file__).resolve().parents[2] / "docs" / "lint.md"


@pytest.mark.parametrize("rule", all_rules(), ids=lambda rule: rule.code)
def test_rule_has_every_section_and_attribute(rule: type[Rule]) -> None:
    assert missing_sections(rule) == [], f"{rule.code} docstring lacks {missing_sections(rule)}"
    assert rule.code.startswith("AM") and len(rule.code) == 5
    assert rule.severity in ("error", "warning")
    assert rule.name and rule.hint


def test_missing_section_is_detected() -> None:
    class Undocumented(Rule):
        """
        ### What it does
        Something.
        """

    assert missing_sections(Undocumented) == ["Why is this bad?", "Example", "Use instead"]


def test_rule_reference_in_docs_is_up_to_date() -> None:
    page = PAGE.read_text()
    assert BEGIN in page and END in page
    assert splice(page, rule_reference()) == page, (
        "docs/lint.md is stale: run scripts/gen-lint-docs"
    )
