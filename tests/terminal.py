"""What people see in a terminal, as tests check it: 80 columns without a terminal."""

from __future__ import annotations

NARROW = {"COLUMNS": None}  # no terminal and no COLUMNS: Rich's 80 columns


def assert_fits_80_columns(text: str) -> None:
    """Nothing cut short, and nothing wider than 80 columns that could have been wrapped: a
    line may stick out only with one long word (a path, a URL) at its end."""
    assert "…" not in text, text
    for line in text.splitlines():
        if len(line) > 80:
            head, _, last_word = line.rstrip().rpartition(" ")
            assert len(head) <= 80 and len(last_word) > 40, f"not wrapped:\n{line}\n\n{text}"
