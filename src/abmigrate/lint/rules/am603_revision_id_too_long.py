from __future__ import annotations

import re
from collections.abc import Iterator

from abmigrate.bridge.project import VERSION_NUM_LENGTH
from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register


@register
class RevisionIdTooLong(Rule):
    """
    ### What it does
    Flags a revision id longer than 32 characters.

    ### Why is this bad?
    Alembic records the applied revision in `alembic_version.version_num`, a `VARCHAR(32)`:
    the migration runs, then storing its id fails (PostgreSQL: "value too long for type
    character varying(32)") and the transaction rolls back.

    ### Example
    ```python
    revision = "20250114_add_unit_of_measure_to_parts"
    ```

    ### Use instead
    ```python
    revision = "0b4d8f2c6e35"  # keep the description in the message and the file name
    ```
    """

    code = "AM603"
    name = "revision-id-too-long"
    severity = "error"
    hint = "use a short id (alembic's default 12 hex characters); put words in the message"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        if len(unit.revision) > VERSION_NUM_LENGTH:
            match = re.search(r"^revision\b", unit.source, re.MULTILINE)
            line = unit.source.count("\n", 0, match.start()) + 1 if match else None
            yield Hit(
                f"revision id {unit.revision!r} is {len(unit.revision)} characters;"
                f" alembic_version.version_num holds {VERSION_NUM_LENGTH}",
                line,
            )
