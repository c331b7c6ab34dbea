"""``--shard K/N``: a stable subset of a fleet, so N copies of one command (a Kubernetes
Indexed Job, a CI matrix) cover every target exactly once.

A target belongs to shard ``sha256(name) mod N``, plus one: the same name lands in the same
shard on every machine and every run, whatever the order or the other members of the list.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from abmigrate.errors import ConfigError
from abmigrate.fleet.inventory import Target

__all__ = ["Shard", "parse_shard"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    def holds(self, name: str) -> bool:
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def select(self, targets: Sequence[Target]) -> list[Target]:
        return [target for target in targets if self.holds(target.name)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(value: str) -> Shard:
    match = _SHARD.match(value)
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ConfigError(
            f"--shard {value!r}: expected K/N with 1 ≤ K ≤ N",
            hint="e.g. --shard 2/4; a Kubernetes Indexed Job passes"
            " $((JOB_COMPLETION_INDEX + 1))/N",
        )
    return Shard(int(match.group(1)), int(match.group(2)))
