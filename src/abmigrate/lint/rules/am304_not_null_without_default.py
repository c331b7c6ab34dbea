from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, column_constraints, label


@register
class NotNullWithoutDefault(Rule):
    """
    ### What it does
    Flags `ADD COLUMN ... NOT NULL` without a server default on an existing table.

    ### Why is this bad?
    PostgreSQL refuses it as soon as the table holds one row ("column contains null
    values"): the migration passes on an empty development database and fails in
    production. Code deployed before the migration does not write the column either.

    ### Example
    ```python
    op.add_column("parts", sa.Column("unit", sa.String(50), nullable=False))
    ```

    ### Use instead
    ```python
    op.add_column("parts", sa.Column("unit", sa.String(50), nullable=False,
                                     server_default="pieces"))
    ```
    or add it nullable, backfill it, then make it NOT NULL, with `abmigrate.ops`:
    ```python
    from abmigrate import ops

    op.add_column("parts", sa.Column("unit", sa.String(50), nullable=True))
    ops.backfill("parts", "unit = 'pieces'", where="unit IS NULL")
    ops.set_not_null("parts", "unit")
    ```
    """

    code = "AM304"
    name = "not-null-without-default"
    severity = "error"
    judged_by = "any_row"
    hint = (
        "give it a server_default, or add it nullable, then `ops.backfill(...)` and"
        ' `ops.set_not_null("t", "c")` from abmigrate.ops'
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement, table, command in alter_commands(unit.parsed()):
            if label(command.subtype) != "AT_AddColumn" or unit.is_new_table(table):
                continue
            column_def = command.def_
            kinds = {label(c.contype) for c in column_constraints(column_def)}
            not_null = "CONSTR_NOTNULL" in kinds or "CONSTR_PRIMARY" in kinds
            filled = kinds & {"CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"}
            if not_null and not filled:
                yield Hit(
                    f"NOT NULL column {table}.{column_def.colname} has no default: the"
                    " migration fails if the table has any row",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
