from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, column_constraints, enum_name, label, walk

# Functions whose result does not change within a statement: a default calling only these is
# evaluated once and stored in the catalog (no rewrite since PostgreSQL 11).
_NOT_VOLATILE = {
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_date",
    "lower",
    "upper",
    "coalesce",
    "jsonb_build_object",
    "json_build_object",
    "to_jsonb",
    "make_interval",
}


@register
class VolatileDefault(Rule):
    """
    ### What it does
    Flags `ADD COLUMN` on an existing table with a default that calls a volatile function
    (`gen_random_uuid()`, `random()`, `clock_timestamp()`, `nextval()` …) or with a stored
    generated expression.

    ### Why is this bad?
    Since PostgreSQL 11 a constant default is stored once in the catalog, but a volatile
    default must be computed for every existing row: the whole table is rewritten under an
    ACCESS EXCLUSIVE lock.

    ### Example
    ```python
    op.add_column("orders", sa.Column("token", sa.Uuid(),
                  server_default=sa.text("gen_random_uuid()")))
    ```

    ### Use instead
    ```python
    op.add_column("orders", sa.Column("token", sa.Uuid()))          # no default: instant
    op.alter_column("orders", "token", server_default=sa.text("gen_random_uuid()"))
    ops.backfill("orders", "token = gen_random_uuid()", where="token IS NULL")  # abmigrate.ops
    ```
    """

    code = "AM108"
    name = "volatile-default"
    severity = "error"
    judged_by = "size"
    hint = (
        "add the column without the default, set the default afterwards, then fill existing"
        " rows with `ops.backfill(...)` from abmigrate.ops"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement, table, command in alter_commands(unit.parsed()):
            if label(command.subtype) != "AT_AddColumn" or unit.is_new_table(table):
                continue
            for constraint in column_constraints(command.def_):
                kind = label(constraint.contype)
                volatile = None
                if kind == "CONSTR_DEFAULT":
                    volatile = _volatile_call(constraint.raw_expr)
                elif kind == "CONSTR_GENERATED":
                    volatile = "a stored generated expression"
                if volatile:
                    yield Hit(
                        f"new column {table}.{command.def_.colname} defaults to {volatile}:"
                        " every existing row is rewritten under an ACCESS EXCLUSIVE lock",
                        statement.line,
                        statement.sql,
                        tables=(table,) if table else (),
                    )


def _volatile_call(expr: object) -> str | None:
    for node in walk(expr):
        if type(node).__name__ == "FuncCall":
            name = enum_name(node.funcname)
            if name not in _NOT_VOLATILE:
                return f"{name}()"
    return None
