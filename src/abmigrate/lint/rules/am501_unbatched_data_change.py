from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import label, table_of, walk

_RANGE_OPERATORS = {"<", "<=", ">", ">="}


@register
class UnbatchedDataChange(Rule):
    """
    ### What it does
    Flags `UPDATE` and `DELETE` on an existing table that touch every matching row in one
    statement: no key range (`id >= ... AND id < ...`, `BETWEEN`) and no `LIMIT`ed
    subquery in the WHERE clause. The UPDATE rendered by `abmigrate.ops.backfill` is not
    flagged: offline it is one statement (a script cannot loop), online it runs in batches.

    ### Why is this bad?
    One statement over a large table holds row locks on everything it touches until the
    migration commits, blocks concurrent writers, bloats the table and can run for hours;
    a failure near the end rolls all of it back.

    ### Example
    ```python
    op.execute("UPDATE parts SET unit = 'pieces' WHERE unit IS NULL")
    ```

    ### Use instead
    ```python
    from abmigrate import ops

    # batches of 5000 rows, each committed; a re-run resumes (WHERE selects what is left)
    ops.backfill("parts", "unit = 'pieces'", where="unit IS NULL", batch_size=5000)
    ```
    or, with plain Alembic (a DELETE too):
    ```python
    with op.get_context().autocommit_block():
        while op.get_bind().execute(sa.text(
            "UPDATE parts SET unit = 'pieces' WHERE id IN"
            " (SELECT id FROM parts WHERE unit IS NULL LIMIT 5000)")).rowcount:
            pass
    ```
    """

    code = "AM501"
    name = "unbatched-data-change"
    severity = "warning"
    judged_by = "size"
    hint = (
        'use `ops.backfill("t", "c = 0", where="c IS NULL")` from abmigrate.ops (committed,'
        " resumable batches); delete in batches (a LIMITed subquery)"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement in unit.parsed():
            if statement.kind not in ("UpdateStmt", "DeleteStmt"):
                continue
            table = table_of(statement.node)
            if unit.is_new_table(table) or _batched(statement.node.whereClause):
                continue
            if statement.safe_op == "backfill":  # one statement offline only; batched online
                continue
            verb = "UPDATE" if statement.kind == "UpdateStmt" else "DELETE"
            yield Hit(
                f"{verb} on {table} changes every matching row in one statement",
                statement.line,
                statement.sql,
                tables=(table,) if table else (),
            )


def _batched(where: Any) -> bool:
    if where is None:
        return False
    for node in walk(where):
        kind = type(node).__name__
        if kind == "SelectStmt" and getattr(node, "limitCount", None) is not None:
            return True
        if kind == "A_Expr":
            if label(node.kind) == "AEXPR_BETWEEN":
                return True
            names = {getattr(part, "sval", "") for part in node.name or ()}
            if names & _RANGE_OPERATORS:
                return True
    return False
