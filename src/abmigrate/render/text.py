"""Plain-text pieces of the human renderings: relative times, durations, counts, short
revision ids and lines that fit the console's width.

Output is often read without a terminal (piped, in CI logs), where Rich assumes 80 columns:
these helpers wrap at word boundaries and never cut a value short.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

__all__ = [
    "ago",
    "clock",
    "duration",
    "elapsed_between",
    "field_lines",
    "parse_time",
    "plural",
    "shortener",
    "table_lines",
    "wrap",
]


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (naive ones are taken as UTC), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """``just now``, ``42 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``; older than a month,
    the date."""
    if moment is None:
        return "at an unknown time"
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 0:  # another host's clock runs ahead
        return "just now" if seconds > -60 else f"on {clock(moment)} (ahead of this clock)"
    if seconds < 5:
        return "just now"
    for limit, divisor, unit in ((60, 1, "s"), (3600, 60, "min"), (86400, 3600, "h")):
        if seconds < limit:
            return f"{int(seconds // divisor)} {unit} ago"
    if seconds < 31 * 86400:
        return f"{int(seconds // 86400)} d ago"
    return f"on {moment.astimezone(UTC):%Y-%m-%d}"


def clock(moment: datetime, *, seconds: bool = False) -> str:
    """``2026-11-28 03:24 UTC`` (with ``:05`` seconds when asked)."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M{':%S' if seconds else ''}} UTC"


def duration(seconds: float | None) -> str:
    """``0.04 s``, ``1.2 s``, ``12.1 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if seconds is None:
        return "?"
    if seconds < 0.1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def elapsed_between(start: object, end: object) -> float | None:
    """Seconds between two ISO timestamps, or None if either is missing."""
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None:
        return None
    return max((last - first).total_seconds(), 0.0)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 revision``, ``120 revisions``."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def shortener(revisions: Iterable[str], length: int = 8) -> Callable[[str], str]:
    """Shortens revision ids to their first ``length`` characters, when that keeps the given
    ids distinct; otherwise leaves them whole."""
    unique = set(revisions)
    if len({revision[:length] for revision in unique}) < len(unique):
        return lambda revision: revision
    return lambda revision: revision[:length]


def wrap(text: str, width: int, indent: int = 0, *, lead: str | None = None) -> list[str]:
    """``text`` wrapped at spaces to ``width`` columns, its lines indented by ``indent``
    spaces, the first line starting with ``lead`` instead when given. A word longer than a
    line is kept whole: a value is never cut."""
    margin = " " * indent
    lines = textwrap.wrap(
        text,
        width=max(width, indent + 20),
        initial_indent=margin if lead is None else lead,
        subsequent_indent=margin,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.rstrip() for line in lines] or [(margin if lead is None else lead).rstrip()]


def field_lines(fields: Sequence[tuple[str, str]], width: int) -> list[str]:
    """``label  value`` lines, labels padded to one column, long values wrapped under their
    value column."""
    label_width = max((len(label) for label, _ in fields), default=0) + 2
    lines: list[str] = []
    for label, value in fields:
        lines.extend(wrap(value, width, label_width, lead=label.ljust(label_width)))
    return lines


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Columns aligned by hand (two spaces apart), the last one wrapped under itself when a
    row is wider than ``width``: no cell is ever cut short."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    indent = sum(widths) + 2 * len(widths)
    lines = []
    for row in [header, *rows]:
        lead = "  ".join(
            cell.ljust(cell_width) for cell, cell_width in zip(row, widths, strict=False)
        )
        lines.extend(wrap(row[-1], width, indent, lead=lead + "  "))
    return lines
