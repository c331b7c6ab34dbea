from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
        downgrade = getattr(unit.module, "downgrade", None)
        code = getattr(downgrade, "__code__", None)
        if code is None:
            yield Hit("the revision has no downgrade() but upgrade() changes the schema")
        elif _returns_none_only(code):
            yield Hit(
                "downgrade() does nothing but upgrade() changes the schema", code.co_firstlineno
            )


def _noop() -> None:
    pass


def _returns_none_only(code: Any) -> bool:
    """`pass`, a docstring and `...` all compile to the same "return None" opcodes."""
    reference = _noop.__code__.co_code
    if len(code.co_code) != len(reference) or code.co_code[::2] != reference[::2]:
        return False
    loaded = [code.co_consts[arg] for arg in code.co_code[1::2][1:2]]
    return loaded == [None]
