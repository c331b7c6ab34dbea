"""Maintenance windows: ``"Sat 22:00-Sun 04:00 UTC"``, ``"Mon-Fri 01:00-03:00 Europe/Berlin"``,
``"22:00-04:00"`` (every day, UTC), several separated by commas.

A window without an end day ends on the start day, or the next day when it wraps midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from abmigrate.errors import ConfigError

__all__ = ["Window", "in_window", "parse_windows"]

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEK = 7 * 1440
_PATTERN = re.compile(
    r"^(?:(?P<d1>[A-Za-z]{3})[a-z]*(?:\s*-\s*(?P<d2>[A-Za-z]{3})[a-z]*)?\s+)?"
    r"(?P<t1>\d{1,2}:\d{2})\s*-\s*(?:(?P<d3>[A-Za-z]{3})[a-z]*\s+)?(?P<t2>\d{1,2}:\d{2})"
    r"(?:\s+(?P<tz>\S+))?$"
)


@dataclass(frozen=True)
class Window:
    spans: tuple[tuple[int, int], ...]  # (start, end) in minutes from Monday 00:00
    zone: tzinfo
    text: str

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        minute = local.weekday() * 1440 + local.hour * 60 + local.minute
        return any(
            start <= minute < end or start <= minute + _WEEK < end for start, end in self.spans
        )


def _day(token: str, text: str) -> int:
    try:
        return _DAYS.index(token.lower())
    except ValueError:
        raise ConfigError(
            f"maintenance_window {text!r}: unknown day {token!r}",
            hint="days are Mon Tue Wed Thu Fri Sat Sun",
        ) from None


def _minutes(token: str, text: str) -> int:
    hours, minutes = (int(part) for part in token.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ConfigError(f"maintenance_window {text!r}: bad time {token!r}")
    return hours * 60 + minutes


def _zone(name: str | None, text: str) -> tzinfo:
    if name is None or name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"maintenance_window {text!r}: unknown time zone {name!r}",
            hint="use UTC or an IANA name such as Europe/Berlin",
        ) from None


def parse_windows(text: str) -> list[Window]:
    windows = []
    for part in (piece.strip() for piece in text.split(",")):
        match = _PATTERN.match(part)
        if match is None:
            raise ConfigError(
                f"cannot read maintenance_window {part!r}",
                hint="write it like 'Sat 22:00-Sun 04:00 UTC', 'Mon-Fri 01:00-03:00"
                " Europe/Berlin' or '22:00-04:00'",
            )
        start_min, end_min = _minutes(match["t1"], part), _minutes(match["t2"], part)
        if match["d1"] is None:
            days = list(range(7))
        elif match["d2"] is None:
            days = [_day(match["d1"], part)]
        else:
            first, last = _day(match["d1"], part), _day(match["d2"], part)
            days = [(first + offset) % 7 for offset in range((last - first) % 7 + 1)]
        spans = []
        for day in days:
            start = day * 1440 + start_min
            if match["d3"] is not None:
                end = _day(match["d3"], part) * 1440 + end_min
                if end <= start:
                    end += _WEEK
            else:
                end = day * 1440 + end_min
                if end <= start:
                    end += 1440
            spans.append((start, end))
        windows.append(Window(tuple(spans), _zone(match["tz"], part), part))
    return windows


def in_window(text: str, moment: datetime | None = None) -> bool:
    moment = moment or datetime.now(UTC)
    return any(window.contains(moment) for window in parse_windows(text))
