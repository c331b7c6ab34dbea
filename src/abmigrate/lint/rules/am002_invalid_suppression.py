from __future__ import annotations

from abmigrate.lint.registry import Rule, register


@register
class InvalidSuppression(Rule):
    """
    ### What it does
    Reports an `# abmigrate: ignore[...]` comment without a reason, or naming an unknown
    rule code. Such a comment suppresses nothing.

    ### Why is this bad?
    A suppression is a decision someone made about production data; without the reason,
    the next reviewer cannot tell a considered exception from a silenced alarm.

    ### Example
    ```python
    op.drop_column("users", "legacy_role")  # abmigrate: ignore[AM202]
    ```

    ### Use instead
    ```python
    op.drop_column("users", "legacy_role")  # abmigrate: ignore[AM202] reason: unused since v2.3
    ```
    """

    code = "AM002"
    name = "invalid-suppression"
    severity = "error"
    scope = "meta"
    hint = "write `# abmigrate: ignore[CODE] reason: why this is safe`"
