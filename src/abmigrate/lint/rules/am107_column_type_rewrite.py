from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, column_type, label

# Target types every source in _TEXTUAL converts to without a rewrite (binary coercible).
_TEXTUAL = {"varchar", "text", "bpchar", "char"}


@register
class ColumnTypeRewrite(Rule):
    """
    ### What it does
    Flags `ALTER COLUMN ... TYPE` on an existing table, except the changes PostgreSQL does
    without rewriting the table: to `text` or unbounded `varchar`, and widening a
    `varchar(n)` or `numeric(p, s)` whose old type the operation names (`existing_type`).

    ### Why is this bad?
    Most type changes rewrite the whole table and rebuild its indexes under an ACCESS
    EXCLUSIVE lock: the table is unreadable and unwritable for the duration.

    ### Example
    ```python
    op.alter_column("orders", "quantity", type_=sa.BigInteger(),
                    existing_type=sa.Integer())
    ```

    ### Use instead
    ```python
    # expand / contract: add the new column, backfill it in batches, switch the code,
    # then drop the old column in a later release.
    op.add_column("orders", sa.Column("quantity_big", sa.BigInteger()))
    ops.backfill("orders", "quantity_big = quantity", where="quantity_big IS NULL")  # abmigrate.ops
    ```
    """

    code = "AM107"
    name = "column-type-rewrite"
    severity = "error"
    judged_by = "size"
    hint = (
        "add a new column, fill it with `ops.backfill(...)` from abmigrate.ops and switch"
        " over (expand/contract)"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        existing = {
            (captured.op.table_name, captured.op.column_name): captured.op.existing_type
            for captured in unit.ops_of("AlterColumnOp")
        }
        for statement, table, command in alter_commands(unit.parsed()):
            if label(command.subtype) != "AT_AlterColumnType" or unit.is_new_table(table):
                continue
            column_def = command.def_
            new_name, new_mods = column_type(column_def.typeName)
            if column_def.raw_default is None and _no_rewrite(
                new_name, new_mods, existing.get((table, command.name))
            ):
                continue
            yield Hit(
                f"changing the type of {table}.{command.name} to {new_name}"
                f"{'(' + ', '.join(map(str, new_mods)) + ')' if new_mods else ''} rewrites the"
                " table under an ACCESS EXCLUSIVE lock",
                statement.line,
                statement.sql,
                tables=(table,) if table else (),
            )


def _no_rewrite(name: str, mods: tuple[int, ...], old: Any) -> bool:
    if name == "text" or (name == "varchar" and not mods):
        return old is None or _old_name(old) in _TEXTUAL
    if old is None:
        return False
    old_name = _old_name(old)
    if name == "varchar" and old_name == "varchar":
        old_length = getattr(old, "length", None)
        return old_length is not None and mods[0] >= old_length
    if name == "numeric" and old_name == "numeric":
        precision, scale = getattr(old, "precision", None), getattr(old, "scale", None)
        if precision is None or len(mods) < 1:
            return False
        return mods[0] >= precision and (mods[1] if len(mods) > 1 else 0) == (scale or 0)
    return False


def _old_name(old: Any) -> str:
    visit = getattr(old, "__visit_name__", "")
    return {
        "string": "varchar",
        "unicode": "varchar",
        "VARCHAR": "varchar",
        "text": "text",
        "unicode_text": "text",
        "TEXT": "text",
        "CHAR": "char",
        "numeric": "numeric",
        "NUMERIC": "numeric",
    }.get(str(visit), str(visit))
