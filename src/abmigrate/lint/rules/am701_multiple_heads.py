from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit
from abmigrate.lint.registry import ProjectFacts, Rule, register


@register
class MultipleHeads(Rule):
    """
    ### What it does
    Flags a revision graph with more than one head, unless each head is in its own
    labelled branch (Alembic's `branch_labels`, as expand/contract histories keep them:
    those heads are by design and `abmigrate upgrade` applies them all). A second head
    inside one labelled branch shares its label with the other and is flagged.

    ### Why is this bad?
    `alembic upgrade head` stops with "Multiple head revisions are present": the deployment
    fails until someone merges the branches (two features developed in parallel each added
    a revision on the same parent).

    ### Example
    ```text
    a1 -> b2 (add_customer_orders)
    a1 -> c3 (add_supplier_orders)
    ```

    ### Use instead
    ```bash
    abmigrate merge -m "merge customer and supplier orders"
    ```
    """

    code = "AM701"
    name = "multiple-heads"
    severity = "error"
    scope = "project"
    hint = "run `abmigrate merge -m ...` to join the heads"

    def check_project(self, facts: ProjectFacts) -> Iterator[Hit]:
        for code, message, revisions in facts.problems:
            if code == "multiple_heads":
                yield Hit(message, revision=revisions[0] if revisions else None)
