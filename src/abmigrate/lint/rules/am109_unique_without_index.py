from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, label


@register
class UniqueWithoutIndex(Rule):
    """
    ### What it does
    Flags a UNIQUE or PRIMARY KEY constraint added to an existing table without
    `USING INDEX` on a unique index built beforehand.

    ### Why is this bad?
    The constraint builds its unique index while holding an ACCESS EXCLUSIVE lock: the
    table can be neither read nor written for the whole build.

    ### Example
    ```python
    op.create_unique_constraint("uq_users_email", "users", ["email"])
    ```

    ### Use instead
    ```python
    from abmigrate import ops

    ops.create_index_concurrently("uq_users_email", "users", ["email"], unique=True)
    op.execute("ALTER TABLE users ADD CONSTRAINT uq_users_email UNIQUE USING INDEX uq_users_email")
    ```
    """

    code = "AM109"
    name = "unique-without-index"
    severity = "error"
    judged_by = "size"
    hint = (
        'build the index first with `ops.create_index_concurrently("uq", "t", ["c"],'
        " unique=True)` from abmigrate.ops, then ADD CONSTRAINT ... USING INDEX"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement, table, command in alter_commands(unit.parsed()):
            if label(command.subtype) != "AT_AddConstraint" or unit.is_new_table(table):
                continue
            constraint = command.def_
            kind = label(constraint.contype)
            if kind in ("CONSTR_UNIQUE", "CONSTR_PRIMARY") and not constraint.indexname:
                what = "UNIQUE" if kind == "CONSTR_UNIQUE" else "PRIMARY KEY"
                yield Hit(
                    f"{what} constraint {constraint.conname or ''} on existing table {table}"
                    " builds its index under an ACCESS EXCLUSIVE lock",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
