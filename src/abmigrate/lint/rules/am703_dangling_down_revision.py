from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit
from abmigrate.lint.registry import ProjectFacts, Rule, register


@register
class DanglingDownRevision(Rule):
    """
    ### What it does
    Flags a `down_revision` that names no revision (often a file name instead of an id, or
    a revision deleted after the fact), and a revision graph Alembic cannot load.

    ### Why is this bad?
    Alembic cannot build the revision graph: `upgrade`, `history` and `current` all stop
    with "Revision ... referenced from ... is not present".

    ### Example
    ```python
    down_revision = "0b4d8f2c6e35_add_unit_of_measure_to_parts"
    ```

    ### Use instead
    ```python
    down_revision = "0b4d8f2c6e35"
    ```
    """

    code = "AM703"
    name = "dangling-down-revision"
    severity = "error"
    scope = "project"
    hint = "set down_revision to the parent's revision id (see `abmigrate history`)"

    def check_project(self, facts: ProjectFacts) -> Iterator[Hit]:
        for code, message, revisions in facts.problems:
            if code in ("dangling_parent", "graph_broken"):
                yield Hit(message, revision=revisions[0] if revisions else None)
