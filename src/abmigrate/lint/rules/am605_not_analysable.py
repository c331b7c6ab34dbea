from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register


@register
class NotAnalysable(Rule):
    """
    ### What it does
    Reports a revision whose `upgrade()` cannot be rendered offline, or whose SQL does not
    parse as PostgreSQL, so the other rules could not look at (all of) it.

    ### Why is this bad?
    Whatever the unanalysed part does is unchecked. An `upgrade()` that reads the database
    (`op.get_bind().execute(select ...)`) cannot be previewed with `plan --sql` either.

    ### Example
    ```python
    def upgrade():
        rows = op.get_bind().execute(sa.text("SELECT id FROM parts")).fetchall()
    ```

    ### Use instead
    ```python
    def upgrade():
        op.execute("UPDATE parts SET ... WHERE ...")  # SQL that renders offline
    ```
    """

    code = "AM605"
    name = "not-analysable"
    severity = "warning"
    hint = "express the change as operations or SQL that render offline (`plan --sql`)"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        if unit.capture_error:
            yield Hit(
                f"upgrade() cannot be rendered offline ({unit.capture_error}); statements"
                " after that point were not checked",
                unit.capture_line,
            )
        for statement in unit.statements:
            if statement.parse_error:
                yield Hit(
                    f"SQL does not parse as PostgreSQL ({statement.parse_error})",
                    statement.line,
                    statement.sql,
                )
