from __future__ import annotations

import ast
from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register

_NOT_SCHEMA = {"SelectStmt", "VariableSetStmt", "TransactionStmt"}


@register
class EmptyDowngrade(Rule):
    """
    ### What it does
    Flags a revision that changes the schema but whose `downgrade()` is missing or does
    nothing (`pass`, a docstring, `...`).

    ### Why is this bad?
    `abmigrate downgrade` (and `alembic downgrade`) then "succeeds" while leaving the schema
    at the newer version: the version table and the schema disagree, and the next upgrade
    fails on objects that already exist.

    ### Example
    ```python
    def upgrade():
        op.add_column("parts", sa.Column("unit", sa.String(50)))

    def downgrade():
        pass
    ```

    ### Use instead
    ```python
    def downgrade():
        op.drop_column("parts", "unit")
    # or, when it truly cannot be undone, say so:
    def downgrade():
        raise NotImplementedError("irreversible: the old values are gone")
    ```
    """

    code = "AM601"
    name = "empty-downgrade"
    severity = "warning"
    hint = "undo the upgrade in downgrade(), or raise NotImplementedError saying why"

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        if unit.is_merge or not any(s.kind not in _NOT_SCHEMA for s in unit.parsed()):
            return
        try:
            tree = ast.parse(unit.source)
        except SyntaxError:
            return
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
                if all(_is_noop(statement) for statement in node.body):
                    yield Hit(
                        "downgrade() does nothing but upgrade() changes the schema", node.lineno
                    )
                return
        yield Hit("the revision has no downgrade() but upgrade() changes the schema")


def _is_noop(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Pass):
        return True
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
