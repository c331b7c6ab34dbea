from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit
from abmigrate.lint.registry import ProjectFacts, Rule, register


@register
class MultipleRoots(Rule):
    """
    ### What it does
    Flags a revision graph with more than one root (several revisions with
    `down_revision = None`), unless each root is in its own labelled branch (Alembic's
    "multiple bases", declared with `branch_labels`).

    ### Why is this bad?
    Two roots usually mean someone started a second history (a copied `versions/` folder, an
    `alembic init` run twice): upgrading a new database creates both, in an order nobody
    chose.

    ### Example
    ```python
    # 4f2a9c1e7b30_initial_schema.py
    down_revision = None
    # 9d0e1f2a3b4c_initial.py
    down_revision = None
    ```

    ### Use instead
    ```python
    # 9d0e1f2a3b4c_initial.py: hang it on the real history
    down_revision = "4f2a9c1e7b30"
    ```
    """

    code = "AM702"
    name = "multiple-roots"
    severity = "error"
    scope = "project"
    hint = "give all but one root a down_revision in the existing history"

    def check_project(self, facts: ProjectFacts) -> Iterator[Hit]:
        for code, message, revisions in facts.problems:
            if code == "multiple_roots":
                yield Hit(message, revision=revisions[0] if revisions else None)
