from __future__ import annotations

import re
from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register

_VAGUE = {
    "",
    "update",
    "updates",
    "fix",
    "fixes",
    "change",
    "changes",
    "migration",
    "new migration",
    "wip",
    "misc",
    "stuff",
    "temp",
    "test",
    "auto",
    "autogenerate",
    "empty message",
    "db changes",
    "schema changes",
    "update schema",
    "update db",
    "update models",
}


@register
class VagueMessage(Rule):
    """
    ### What it does
    Flags a revision whose message says nothing about what it does ("update", "fix",
    "changes", "empty message", …). Merge revisions are exempt.

    ### Why is this bad?
    The message is what `history`, `plan` and the journal show. At 2 a.m., during an
    incident, "update" does not say which revision dropped the column.

    ### Example
    ```bash
    abmigrate revision --autogenerate -m "update"
    ```

    ### Use instead
    ```bash
    abmigrate revision --autogenerate -m "add unit_of_measure to parts"
    ```
    """

    code = "AM604"
    name = "vague-message"
    severity = "warning"
    hint = "say what the revision changes, e.g. 'add unit_of_measure to parts'"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        if unit.is_merge:
            return
        normalized = re.sub(r"[\s_\-.]+", " ", unit.message).strip().lower()
        if normalized in _VAGUE:
            yield Hit(f"the message {unit.message!r} does not say what the revision does", 1)
