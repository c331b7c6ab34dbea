from __future__ import annotations

from abmigrate.lint.registry import Rule, register


@register
class UnusedSuppression(Rule):
    """
    ### What it does
    Reports an `# abmigrate: ignore[CODE]` comment that suppressed nothing.

    ### Why is this bad?
    A stale suppression hides the next real finding on that line, and its reason no longer
    describes the code. Usually the code changed and the comment stayed.

    ### Example
    ```python
    op.add_column("t", sa.Column("c", sa.Text()))  # abmigrate: ignore[AM101] reason: small table
    ```

    ### Use instead
    ```python
    op.add_column("t", sa.Column("c", sa.Text()))
    ```
    """

    code = "AM001"
    name = "unused-suppression"
    severity = "warning"
    scope = "meta"
    hint = "remove the comment (or fix its code)"
