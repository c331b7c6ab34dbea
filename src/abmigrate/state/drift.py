"""Drift: how a live schema differs from the models, or from what the migrations produce.

Both comparisons return :class:`abmigrate.db.fingerprint.Difference` items, with the models
(or the revision) as *expected* and the database as *actual*: ``extra`` = only in the
database, ``missing`` = only in the models/revision, ``changed`` = both, different.

- :func:`compare_to_models` runs Alembic's own autogenerate comparison
  (``alembic.autogenerate.compare_metadata``) with type and server-default comparison on,
  and adds what autogenerate does not look at: the values of PostgreSQL enum types.
  ``alembic_version`` and ``abmigrate_*`` tables are never reported.
- :func:`compare_to_revision` compares fingerprints: the live one against the one the
  migrations produce at a revision (replayed in a scratch database, see
  :mod:`abmigrate.state.replay`).

Usage::

    from abmigrate.state.drift import compare_url_to_models
    for difference in compare_url_to_models(url, Base.metadata):
        print(difference.describe())   # "extra column users.nickname: VARCHAR(50) NULL ..."

Everything here only reads the target database.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abmigrate.db.dialects import dialect_for
from abmigrate.db.fingerprint import Difference, diff, excluded_table, fingerprint_url
from abmigrate.results import Record

if TYPE_CHECKING:
    from sqlalchemy import Connection, MetaData
    from sqlalchemy.engine import Dialect

    from abmigrate.config.workspace import Workspace


__all__ = [
    "DriftReport",
    "compare_to_models",
    "compare_to_revision",
    "compare_url_to_models",
    "drift_report",
]

IncludeFilter = Callable[..., bool]


def compare_url_to_models(
    url: str,
    metadata: MetaData | Sequence[MetaData],
    *,
    include_object: IncludeFilter | None = None,
    include_name: IncludeFilter | None = None,
) -> list[Difference]:
    """:func:`compare_to_models` on a URL (read only; a missing SQLite file is empty)."""
    from abmigrate.db.database import connect, sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.exists():
        # Connecting would create the file: an in-memory database is just as empty.
        url = "sqlite://"
    with connect(url) as connection:
        return compare_to_models(
            connection, metadata, include_object=include_object, include_name=include_name
        )


def compare_to_models(
    connection: Connection,
    metadata: MetaData | Sequence[MetaData],
    *,
    include_object: IncludeFilter | None = None,
    include_name: IncludeFilter | None = None,
) -> list[Difference]:
    """Differences between the schema behind ``connection`` and ``metadata``.

    ``include_object``/``include_name`` are the usual Alembic autogenerate filters (a
    project's env.py ones, typically); abmigrate's own tables are filtered out in any case.
    """
    from sqlalchemy import MetaData as MetaDataType
    from sqlalchemy.exc import SAWarning

    from abmigrate.bridge.autogenerate import compare_schema

    metadata_list = [metadata] if isinstance(metadata, MetaDataType) else list(metadata)

    def name_filter(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "table" and name is not None and excluded_table(name):
            return False
        return include_name(name, type_, parent_names) if include_name else True

    def object_filter(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        if type_ == "table" and name is not None and excluded_table(name):
            return False
        return include_object(obj, name, type_, reflected, other) if include_object else True

    # Autogenerate warns about what it cannot compare (expression indexes on SQLite, ...);
    # a drift report is not the place for those warnings to become errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        warnings.simplefilter("ignore", UserWarning)
        raw = compare_schema(
            connection,
            metadata_list,
            include_name=name_filter,
            include_object=object_filter,
        )
    differences = _convert(raw, connection.dialect)
    if dialect_for(connection).has_enum_types:
        differences.extend(_enum_differences(connection, metadata_list))
    return sorted(differences, key=lambda d: (d.kind != "table", d.name, d.kind))


@dataclass
class DriftReport(Record):
    """The differences between one environment's live schema and the models or a revision."""

    environment: str
    database: str
    against: str
    source: str
    differences: list[dict[str, Any]] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.differences)


def compare_to_revision(workspace: Workspace, revision: str) -> list[Difference]:
    """Differences between the live schema and the one the migrations produce at ``revision``."""
    from abmigrate.state.replay import expected_fingerprint, expected_state_fingerprint

    if revision == "heads":  # every head applied, as `upgrade heads` leaves it
        expected = expected_state_fingerprint(workspace, workspace.project.heads())
    else:
        expected = expected_fingerprint(workspace, revision)
    live = fingerprint_url(workspace.url, schema=workspace.project.version_table.schema)
    return diff(expected, live)


def drift_report(workspace: Workspace, against: str = "models") -> DriftReport:
    """``against`` is ``models`` (the project's model metadata), ``head``, or a revision."""
    from abmigrate.bridge.models import load_models, why_no_models
    from abmigrate.errors import ConfigError

    if against == "models":
        source = load_models(workspace)
        if source is None:
            raise ConfigError(
                f"no models to compare with: {why_no_models(workspace)} and the"
                " configuration has no 'models'",
                hint="set models = 'app.models:Base.metadata', or use --against head",
            )
        differences = compare_url_to_models(
            workspace.url,
            source.metadata,
            include_object=source.include_object,
            include_name=source.include_name,
        )
        origin = source.origin
    else:
        from abmigrate.state.replay import resolve_revision

        several = against == "heads" and len(workspace.project.heads()) > 1
        revision = "heads" if several else resolve_revision(workspace, against)
        differences = compare_to_revision(workspace, revision)
        origin = f"the migrations replayed up to {revision}"
        against = revision if against in ("head", "heads") else against
    return DriftReport(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        against=against,
        source=origin,
        differences=[difference.to_record() for difference in differences],
    )


# --------------------------------------------------------------------------- conversion


def _convert(raw: Sequence[Any], dialect: Dialect) -> list[Difference]:
    differences: list[Difference] = []
    for item in raw:
        if isinstance(item, list):
            change = _column_change(item, dialect)
            if change is not None:
                differences.append(change)
        else:
            converted = _object_change(item, dialect)
            if converted is not None:
                differences.append(converted)
    return differences


def _object_change(item: tuple[Any, ...], dialect: Dialect) -> Difference | None:
    operation = item[0]
    adds = operation.startswith("add_")
    attributes: dict[str, Any]
    change = "missing" if adds else "extra"
    if operation in ("add_table", "remove_table"):
        table = item[1]
        attributes = {"columns": sorted(column.name for column in table.columns)}
        return _make(change, "table", table.name, attributes)
    if operation in ("add_column", "remove_column"):
        _, _, table_name, column = item
        return _make(change, "column", f"{table_name}.{column.name}", _column(column, dialect))
    if operation in ("add_index", "remove_index"):
        index = item[1]
        attributes = {
            "columns": [getattr(expr, "name", str(expr)) for expr in index.expressions],
            "unique": bool(index.unique),
        }
        return _make(change, "index", f"{index.table.name}.{index.name}", attributes)
    if operation in ("add_constraint", "remove_constraint"):
        constraint = item[1]
        kind = {"unique_constraint": "unique", "check_constraint": "check"}.get(
            constraint.__visit_name__, constraint.__visit_name__
        )
        attributes = {"columns": [column.name for column in constraint.columns]}
        name = constraint.name or "(" + ",".join(attributes["columns"]) + ")"
        return _make(change, kind, f"{constraint.table.name}.{name}", attributes)
    if operation in ("add_fk", "remove_fk"):
        fk = item[1]
        attributes = {
            "columns": [column.name for column in fk.columns],
            "referred_table": fk.referred_table.name,
            "referred_columns": [element.column.name for element in fk.elements],
            "ondelete": fk.ondelete.upper() if fk.ondelete else None,
            "onupdate": fk.onupdate.upper() if fk.onupdate else None,
        }
        name = fk.name or "(" + ",".join(attributes["columns"]) + ")"
        return _make(change, "foreign_key", f"{fk.table.name}.{name}", attributes)
    if operation in ("add_table_comment", "remove_table_comment"):
        table = item[1]
        return Difference(
            "changed",
            "table",
            table.name,
            {"comment": table.comment if adds else None},
            {"comment": item[2] if adds else table.comment},
        )
    return Difference("changed", "other", str(operation), None, {"detail": repr(item)})


def _make(change: str, kind: str, name: str, attributes: dict[str, Any]) -> Difference:
    if change == "missing":
        return Difference("missing", kind, name, attributes, None)
    return Difference("extra", kind, name, None, attributes)


_ATTRIBUTE = {
    "modify_type": "type",
    "modify_nullable": "nullable",
    "modify_default": "default",
    "modify_comment": "comment",
}


def _column_change(changes: list[tuple[Any, ...]], dialect: Dialect) -> Difference | None:
    expected: dict[str, Any] = {}
    actual: dict[str, Any] = {}
    _, _, table_name, column_name, *_ = changes[0]
    for operation, _, _, _, _, database_value, model_value in changes:
        attribute = _ATTRIBUTE.get(operation, operation)
        model = _value(attribute, model_value, dialect)
        database = _value(attribute, database_value, dialect)
        if attribute == "default" and _same_default(model, database):
            continue
        expected[attribute], actual[attribute] = model, database
    if not expected:
        return None
    return Difference("changed", "column", f"{table_name}.{column_name}", expected, actual)


# Spellings of one default that databases report back differently: MariaDB reflects now()
# as current_timestamp() and a BOOLEAN (TINYINT) default true as 1.
_DEFAULT_SYNONYMS = {
    "now()": "current_timestamp",
    "current_timestamp(6)": "current_timestamp",
    "localtimestamp": "current_timestamp",
    "current_timestamp()": "current_timestamp",
    "true": "1",
    "false": "0",
}


def _same_default(model: Any, database: Any) -> bool:
    if model is None or database is None:
        return model is database
    # MySQL reports DEFAULT 0 of a NUMERIC(10, 2) as '0.00'.
    return _same_number(model, database) or _canonical_default(model) == _canonical_default(
        database
    )


# PostgreSQL reflects a default with the casts it applied ('draft'::character varying,
# '{}'::jsonb, 'utc'::text inside timezone(...)); the model's spelling has none.
_CAST = re.compile(
    r"::\s*[a-z_]\w*(?:\s+(?:varying|precision|(?:with|without)\s+time\s+zone))?"
    r"(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])*"
)


def _canonical_default(value: Any) -> str:
    """One spelling per default: case, casts, quotes, outer parentheses, whitespace and
    synonyms (``now()`` / ``CURRENT_TIMESTAMP``) set aside."""
    text = " ".join(str(value).split()).lower()
    text = _CAST.sub("", text)
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    text = text.strip("'\"")
    return _DEFAULT_SYNONYMS.get(text, text)


def _balanced(text: str) -> bool:
    depth = 0
    for character in text:
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth < 0:
            return False
    return depth == 0


def _same_number(first: Any, second: Any) -> bool:
    from decimal import Decimal, InvalidOperation

    try:
        return Decimal(str(first).strip("'\"")) == Decimal(str(second).strip("'\""))
    except (InvalidOperation, ValueError):
        return False


def _value(attribute: str, value: Any, dialect: Dialect) -> Any:
    if attribute == "type":
        return _type_text(value, dialect)
    if attribute == "default":
        return _default_text(value, dialect)
    return value


def _column(column: Any, dialect: Dialect) -> dict[str, Any]:
    return {
        "type": _type_text(column.type, dialect),
        "nullable": bool(column.nullable),
        "default": _default_text(column.server_default, dialect),
    }


def _type_text(type_: Any, dialect: Dialect) -> str | None:
    if type_ is None:
        return None
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:
        return repr(type_)


def _default_text(value: Any, dialect: Dialect) -> str | None:
    if value is None or value is False:
        return None
    value = getattr(value, "arg", value)
    if isinstance(value, str):
        return value
    try:
        return str(value.compile(dialect=dialect))
    except Exception:
        return str(value)


def _enum_differences(connection: Connection, metadata_list: list[MetaData]) -> list[Difference]:
    from sqlalchemy import Enum, inspect

    live = {
        enum["name"]: list(enum["labels"])
        for enum in inspect(connection).get_enums()  # type: ignore[attr-defined]
        if enum.get("visible", True)
    }
    declared: dict[str, list[str]] = {}
    for metadata in metadata_list:
        for table in metadata.tables.values():
            for column in table.columns:
                if isinstance(column.type, Enum) and column.type.native_enum and column.type.name:
                    declared[column.type.name] = list(column.type.enums)
    differences = []
    for name, values in sorted(declared.items()):
        if name in live and live[name] != values:
            differences.append(
                Difference("changed", "enum", name, {"values": values}, {"values": live[name]})
            )
    return differences
