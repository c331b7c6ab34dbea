from __future__ import annotations

from collections.abc import Iterator

from abmigrate.lint.model import Hit, RevisionUnit
from abmigrate.lint.registry import Rule, register
from abmigrate.lint.sql import alter_commands, column_constraints, column_type, label

_SERIAL = {"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"}


@register
class SerialColumn(Rule):
    """
    ### What it does
    Flags adding a `serial`/`bigserial` or `GENERATED ... AS IDENTITY` column to an existing
    table.

    ### Why is this bad?
    Every existing row needs its own value from the sequence: PostgreSQL rewrites the whole
    table under an ACCESS EXCLUSIVE lock.

    ### Example
    ```python
    op.add_column("events", sa.Column("seq", sa.BigInteger(), sa.Identity()))
    ```

    ### Use instead
    ```python
    # add a plain nullable column, create the sequence, set the default, backfill in
    # batches, then add NOT NULL with a validated CHECK first (abmigrate.ops).
    op.add_column("events", sa.Column("seq", sa.BigInteger()))
    op.execute("CREATE SEQUENCE events_seq_seq OWNED BY events.seq")
    op.alter_column("events", "seq", server_default=sa.text("nextval('events_seq_seq')"))
    ops.backfill("events", "seq = nextval('events_seq_seq')", where="seq IS NULL")
    ops.set_not_null("events", "seq")
    ```
    """

    code = "AM110"
    name = "serial-column"
    severity = "error"
    judged_by = "size"
    hint = (
        "add a plain column, attach a sequence default, fill existing rows with"
        " `ops.backfill(...)` and make it NOT NULL with `ops.set_not_null(...)` (abmigrate.ops)"
    )

    def check(self, unit: RevisionUnit) -> Iterator[Hit]:
        for statement, table, command in alter_commands(unit.parsed()):
            if label(command.subtype) != "AT_AddColumn" or unit.is_new_table(table):
                continue
            column_def = command.def_
            type_name, _ = column_type(column_def.typeName)
            identity = any(
                label(c.contype) == "CONSTR_IDENTITY" for c in column_constraints(column_def)
            )
            if type_name in _SERIAL or identity:
                yield Hit(
                    f"adding {'an identity' if identity else 'a ' + type_name} column"
                    f" {table}.{column_def.colname} rewrites the table under an ACCESS"
                    " EXCLUSIVE lock",
                    statement.line,
                    statement.sql,
                    tables=(table,) if table else (),
                )
