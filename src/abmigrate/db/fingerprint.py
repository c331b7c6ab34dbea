"""Schema fingerprints: a canonical description of a live schema, a stable hash, and a diff.

A fingerprint describes what a migration can change and a person can notice: tables; columns
(type, nullability, server default, identity/generated expression, comment); primary keys;
unique constraints; indexes (columns or expressions, uniqueness, predicate, method, included
columns); foreign keys (columns, referred table/columns, ON DELETE/ON UPDATE); CHECK
constraints; views; and on PostgreSQL enum types (values in order) and sequences. Column
order, data and statistics are not part of it. ``alembic_version`` and abmigrate's own
``abmigrate_*`` tables are left out. Only the connection's default schema is described.

Two fingerprints compare only within one dialect: they are built from SQLAlchemy's
reflection (``Inspector.get_multi_*``) completed by catalog queries where reflection is
silent — enum types and sequence settings (PostgreSQL), CHECK constraints (MariaDB/MySQL),
expression and partial indexes (SQLite, whose reflection skips them).

Usage::

    from abmigrate.db.fingerprint import fingerprint_url, diff

    live = fingerprint_url("postgresql+psycopg://app@db/prod")
    live.digest                       # sha256 hex of the canonical description
    live.to_record()                  # JSON-able; Fingerprint.from_record() reads it back
    for difference in diff(expected, live):
        print(difference.describe())  # e.g. "extra column users.nickname: VARCHAR(50) NULL"

``fingerprint_connection(connection)`` does the same on an open SQLAlchemy Connection. It
only reads; a SQLite file that does not exist gives an empty fingerprint and is not created.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.engine.reflection import Inspector

__all__ = [
    "FORMAT_VERSION",
    "TABLE_CHILD_KINDS",
    "Difference",
    "Fingerprint",
    "changed_keys",
    "diff",
    "distance",
    "excluded_table",
    "fingerprint_connection",
    "fingerprint_url",
]

# Objects that belong to one table: their name is "<table>.<object>", and they are folded
# into the table's own difference when the whole table is extra or missing.
TABLE_CHILD_KINDS = frozenset({"column", "primary_key", "unique", "index", "foreign_key", "check"})
_VERSION_TABLE = "alembic_version"
# Part of every cached fingerprint's key: bump it whenever the description changes shape.
FORMAT_VERSION = 2
_OWN_PREFIX = "abmigrate_"
_WS = re.compile(r"\s+")

Change = Literal["extra", "missing", "changed"]


def excluded_table(name: str, version_table: str = _VERSION_TABLE) -> bool:
    """True for tables a fingerprint ignores: the version table and abmigrate's own."""
    return name == version_table or name.startswith(_OWN_PREFIX)


def _norm(text: Any) -> str | None:
    if text is None:
        return None
    return _WS.sub(" ", str(text)).strip()


@dataclass(frozen=True)
class Fingerprint:
    """The canonical description of one schema: ``objects`` maps "kind name" to attributes."""

    dialect: str
    objects: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @cached_property
    def digest(self) -> str:
        canonical = json.dumps(
            {"dialect": self.dialect, "objects": self.objects},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def tables(self) -> list[str]:
        return sorted(key.split(" ", 1)[1] for key in self.objects if key.startswith("table "))

    def to_record(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "digest": self.digest, "objects": dict(self.objects)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Fingerprint:
        return cls(str(record["dialect"]), dict(record["objects"]))


@dataclass(frozen=True)
class Difference:
    """One object that is extra in, missing from, or changed in the actual schema."""

    change: Change
    kind: str
    name: str
    expected: Mapping[str, Any] | None = None
    actual: Mapping[str, Any] | None = None

    @property
    def table(self) -> str | None:
        if self.kind == "table":
            return self.name
        if self.kind in TABLE_CHILD_KINDS:
            return self.name.split(".", 1)[0]
        return None

    def changed_attributes(self) -> dict[str, tuple[Any, Any]]:
        expected, actual = self.expected or {}, self.actual or {}
        return {
            key: (expected.get(key), actual.get(key))
            for key in sorted(set(expected) | set(actual))
            if expected.get(key) != actual.get(key)
        }

    def describe(self) -> str:
        """One line for people, e.g. ``changed column users.email: type VARCHAR(100) → ...``."""
        if self.change == "changed":
            parts = [
                f"{key} {_show(old)} → {_show(new)}"
                for key, (old, new) in self.changed_attributes().items()
            ]
            return f"changed {self.kind} {self.name}: {'; '.join(parts)}"
        attributes = self.actual if self.change == "extra" else self.expected
        summary = _summary(self.kind, attributes or {})
        where = "in the database only" if self.change == "extra" else "not in the database"
        return f"{self.change} {self.kind} {self.name}{summary} ({where})"

    def to_record(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "kind": self.kind,
            "name": self.name,
            "description": self.describe(),
            "expected": dict(self.expected) if self.expected is not None else None,
            "actual": dict(self.actual) if self.actual is not None else None,
        }


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(str(item) for item in value) + ")"
    return str(value)


def _summary(kind: str, attributes: Mapping[str, Any]) -> str:
    if kind == "column":
        text = str(attributes.get("type"))
        text += " NULL" if attributes.get("nullable") else " NOT NULL"
        if attributes.get("default") is not None:
            text += f" DEFAULT {attributes['default']}"
        return f": {text}"
    if kind == "table":
        columns = attributes.get("columns")
        return f" ({len(columns)} columns: {', '.join(columns)})" if columns else ""
    if kind == "index":
        what = attributes.get("expressions") or attributes.get("columns") or []
        text = ("UNIQUE " if attributes.get("unique") else "") + _show(what)
        if attributes.get("where"):
            text += f" WHERE {attributes['where']}"
        return f": {text}"
    if kind in ("unique", "primary_key"):
        return f": {_show(attributes.get('columns'))}"
    if kind == "foreign_key":
        return (
            f": {_show(attributes.get('columns'))} → {attributes.get('referred_table')}"
            f"{_show(attributes.get('referred_columns'))}"
        )
    if kind == "check":
        return f": {attributes.get('sqltext')}"
    if kind == "enum":
        return f": {_show(attributes.get('values'))}"
    return ""


def diff(expected: Fingerprint, actual: Fingerprint) -> list[Difference]:
    """What ``actual`` has that ``expected`` lacks (extra), lacks (missing), or has otherwise.

    The objects of a table that is extra or missing as a whole are not listed one by one:
    the table's difference names its columns.
    """
    differences: list[Difference] = []
    keys = sorted(changed_keys(expected, actual))
    whole_tables: set[str] = set()
    for key in keys:
        if key.startswith("table ") and (key in expected.objects) != (key in actual.objects):
            whole_tables.add(key.split(" ", 1)[1])
    for key in keys:
        kind, name = key.split(" ", 1)
        old, new = expected.objects.get(key), actual.objects.get(key)
        if kind in TABLE_CHILD_KINDS and name.split(".", 1)[0] in whole_tables:
            continue
        if kind == "table" and name in whole_tables:
            side = expected if old is not None else actual
            columns = {"columns": _columns_of(side, name)}
            old = {**old, **columns} if old is not None else None
            new = {**new, **columns} if new is not None else None
        if old is None:
            differences.append(Difference("extra", kind, name, None, new))
        elif new is None:
            differences.append(Difference("missing", kind, name, old, None))
        else:
            differences.append(Difference("changed", kind, name, old, new))
    return differences


def changed_keys(expected: Fingerprint, actual: Fingerprint) -> set[str]:
    """The "kind name" keys of every object that differs (cheaper than :func:`diff`)."""
    old, new = expected.objects, actual.objects
    keys = {key for key in old if new.get(key) != old[key]}
    keys.update(key for key in new if key not in old)
    return keys


def distance(expected: Fingerprint, actual: Fingerprint) -> int:
    """How many objects differ (each column, index ... of a whole extra table counts)."""
    return len(changed_keys(expected, actual))


def _columns_of(fingerprint: Fingerprint, table: str) -> list[str]:
    prefix = f"column {table}."
    return sorted(key[len(prefix) :] for key in fingerprint.objects if key.startswith(prefix))


# --------------------------------------------------------------------------- building


def fingerprint_url(
    url: str, *, version_table: str = _VERSION_TABLE, schema: str | None = None
) -> Fingerprint:
    """The fingerprint of the database at ``url`` (read only; a missing SQLite file is empty),
    of ``schema`` when given (PostgreSQL: a tenant's schema), else of the default one."""
    from abmigrate.db.database import connect, sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.exists():
        return Fingerprint("sqlite", {})
    with connect(url, schema=schema) as connection:
        return fingerprint_connection(connection, version_table=version_table)


def fingerprint_connection(
    connection: Connection, *, version_table: str = _VERSION_TABLE
) -> Fingerprint:
    """The fingerprint of the schema ``connection`` sees by default. Reads only."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SAWarning

    dialect = connection.dialect.name
    objects: dict[str, dict[str, Any]] = {}
    inspector = inspect(connection)
    tables = [
        name for name in inspector.get_table_names() if not excluded_table(name, version_table)
    ]
    # Reflection warns about what it cannot describe (expression indexes on SQLite, unknown
    # types); the catalog queries below fill those gaps, so the warnings are noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        if tables and dialect == "sqlite":
            _describe_sqlite_tables(connection, inspector, tables, objects)
        elif tables:
            _describe_tables(connection, inspector, tables, objects)
        for view in inspector.get_view_names():
            if excluded_table(view, version_table):
                continue
            try:
                definition = _norm(inspector.get_view_definition(view))
            except NotImplementedError:  # pragma: no cover - every supported dialect has it
                definition = None
            objects[f"view {view}"] = {"definition": definition}
    # What each dialect's catalog adds to SQLAlchemy's reflection (which does not describe
    # these on that dialect): reading them is the fingerprint's own business, kept here.
    if dialect == "postgresql":
        _postgresql_extras(connection, inspector, objects)
    elif dialect in ("mysql", "mariadb"):
        _mysql_checks(connection, set(tables), objects)
    elif dialect == "sqlite":
        _sqlite_indexes(connection, set(tables), objects)
    return Fingerprint(dialect, dict(sorted(objects.items())))


def _multi(inspector: Inspector, method: str, tables: list[str]) -> dict[str, Any]:
    getter = getattr(inspector, method)
    try:
        found = getter(filter_names=tables)
    except NotImplementedError:
        return {}
    return {table: value for (_, table), value in found.items()}


# SQLite: a table's description, by what decides it (see _describe_sqlite_tables).
_SQLITE_DESCRIBED: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
_SQLITE_DESCRIBED_LIMIT = 4096


def _describe_sqlite_tables(
    connection: Connection,
    inspector: Inspector,
    tables: list[str],
    objects: dict[str, dict[str, Any]],
) -> None:
    """:func:`_describe_tables` for SQLite, reflecting only tables not described before.

    SQLite keeps each table's whole definition as its CREATE TABLE text: a table whose text
    (and that of the tables its foreign keys refer to, whose primary key a foreign key
    without referred columns takes) is one this process described already has the same
    description. Reflection costs tens of milliseconds per table; a round trip fingerprints
    the schema after every step, and a step changes one or two tables.
    """
    from sqlalchemy import text

    definitions = {
        str(name): str(sql)
        for name, sql in connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        )
    }
    referred: dict[str, set[str]] = {}
    for name, parent in connection.execute(
        text(
            'SELECT m.name, f."table" FROM sqlite_master m,'
            " pragma_foreign_key_list(m.name) f WHERE m.type = 'table'"
        )
    ):
        referred.setdefault(str(name), set()).add(str(parent))
    for table in tables:
        parts = [table, definitions.get(table, "")]
        parts += [definitions.get(parent, "") for parent in sorted(referred.get(table, ()))]
        key = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
        described = _SQLITE_DESCRIBED.get(key)
        if described is None:
            described = {}
            _describe_tables(connection, inspector, [table], described)
            _SQLITE_DESCRIBED[key] = described
            if len(_SQLITE_DESCRIBED) > _SQLITE_DESCRIBED_LIMIT:
                _SQLITE_DESCRIBED.popitem(last=False)
        else:
            _SQLITE_DESCRIBED.move_to_end(key)
        objects.update({key: dict(value) for key, value in described.items()})


def _describe_tables(
    connection: Connection,
    inspector: Inspector,
    tables: list[str],
    objects: dict[str, dict[str, Any]],
) -> None:
    dialect = connection.dialect
    # SQLAlchemy's reflection per dialect: CHECKs on MySQL/MariaDB and SQLite's indexes are
    # read from the catalog instead (see fingerprint_connection).
    is_mysql = dialect.name in ("mysql", "mariadb")
    columns = _multi(inspector, "get_multi_columns", tables)
    primary_keys = _multi(inspector, "get_multi_pk_constraint", tables)
    uniques = _multi(inspector, "get_multi_unique_constraints", tables)
    foreign_keys = _multi(inspector, "get_multi_foreign_keys", tables)
    checks = {} if is_mysql else _multi(inspector, "get_multi_check_constraints", tables)
    indexes = {} if dialect.name == "sqlite" else _multi(inspector, "get_multi_indexes", tables)

    for table in tables:
        table_columns = columns.get(table, [])
        # The table's own entry stays empty: its columns are entries of their own, so a
        # column added by hand is one difference, not two.
        objects[f"table {table}"] = {}
        for column in table_columns:
            objects[f"column {table}.{column['name']}"] = _column(column, dialect, is_mysql)
        primary = primary_keys.get(table) or {}
        if primary.get("constrained_columns"):
            objects[f"primary_key {table}"] = {
                "name": primary.get("name"),
                "columns": list(primary["constrained_columns"]),
            }
        for unique in uniques.get(table, []):
            if unique.get("duplicates_index"):
                continue  # MySQL: the unique index describes it
            key = unique.get("name") or _cols(unique["column_names"])
            objects[f"unique {table}.{key}"] = {
                "columns": list(unique["column_names"]),
                **_options(unique.get("dialect_options")),
            }
        for foreign_key in foreign_keys.get(table, []):
            key = foreign_key.get("name") or (
                _cols(foreign_key["constrained_columns"]) + "->" + foreign_key["referred_table"]
            )
            options = foreign_key.get("options") or {}
            objects[f"foreign_key {table}.{key}"] = {
                "columns": list(foreign_key["constrained_columns"]),
                "referred_table": foreign_key["referred_table"],
                "referred_columns": list(foreign_key["referred_columns"]),
                "ondelete": _upper(options.get("ondelete")),
                "onupdate": _upper(options.get("onupdate")),
                "deferrable": options.get("deferrable"),
                "initially": _upper(options.get("initially")),
            }
        for check in checks.get(table, []):
            sqltext = _norm(check["sqltext"])
            key = check.get("name") or sqltext
            objects[f"check {table}.{key}"] = {"sqltext": sqltext}
        for index in indexes.get(table, []):
            if index.get("duplicates_constraint"):
                continue  # PostgreSQL: the unique constraint describes it
            objects[f"index {table}.{index['name']}"] = {
                "columns": list(index.get("column_names") or []),
                "expressions": [_norm(e) for e in index.get("expressions") or []] or None,
                "unique": bool(index.get("unique")),
                "where": _norm((index.get("dialect_options") or {}).get("postgresql_where")),
                **_options(index.get("dialect_options"), skip={"postgresql_where"}),
            }


def _column(column: Mapping[str, Any], dialect: Any, is_mysql: bool) -> dict[str, Any]:
    try:
        type_text = str(column["type"].compile(dialect=dialect))
    except Exception:  # an unknown type (NullType) cannot compile: its repr still compares
        type_text = repr(column["type"])
    described: dict[str, Any] = {
        "type": type_text,
        "nullable": bool(column.get("nullable", True)),
        "default": _norm(column.get("default")),
    }
    if column.get("comment"):
        described["comment"] = column["comment"]
    if column.get("identity"):
        described["identity"] = dict(column["identity"])
    if column.get("computed"):
        described["computed"] = {
            "sqltext": _norm(column["computed"].get("sqltext")),
            "persisted": column["computed"].get("persisted"),
        }
    if is_mysql and column.get("autoincrement") is True:
        described["autoincrement"] = True
    return described


def _options(options: Mapping[str, Any] | None, skip: Iterable[str] = ()) -> dict[str, Any]:
    # Dialect options that carry meaning; empty ones ("postgresql_include": []) are dropped
    # so that two fingerprints agree whichever SQLAlchemy version reflected them.
    kept: dict[str, Any] = {}
    for key, value in sorted((options or {}).items()):
        if key in skip or value in (None, [], False, ""):
            continue
        kept[key] = _norm(value) if not isinstance(value, list | dict | bool | int) else value
    return kept


def _cols(names: Iterable[Any]) -> str:
    return "(" + ",".join(str(name) for name in names) + ")"


def _upper(value: Any) -> str | None:
    return str(value).upper() if value is not None else None


# --------------------------------------------------------------------------- catalogs


def _postgresql_extras(
    connection: Connection, inspector: Inspector, objects: dict[str, dict[str, Any]]
) -> None:
    from sqlalchemy import text

    for enum in inspector.get_enums():  # type: ignore[attr-defined]
        if enum.get("visible", True):
            objects[f"enum {enum['name']}"] = {"values": list(enum["labels"])}
    rows = connection.execute(
        text(
            "SELECT sequencename, data_type::text, start_value, increment_by, min_value,"
            " max_value, cycle FROM pg_sequences WHERE schemaname = current_schema()"
        )
    )
    for name, data_type, start, increment, minimum, maximum, cycle in rows:
        objects[f"sequence {name}"] = {
            "data_type": data_type,
            "start": int(start),
            "increment": int(increment),
            "min": int(minimum),
            "max": int(maximum),
            "cycle": bool(cycle),
        }


def _mysql_checks(
    connection: Connection, tables: set[str], objects: dict[str, dict[str, Any]]
) -> None:
    from sqlalchemy import text

    # SQLAlchemy's MySQL reflection misses MariaDB's CHECK constraints; the catalog has them.
    # A CHECK's name is unique in its schema on MySQL but only in its table on MariaDB, which
    # names unnamed ones CONSTRAINT_1, CONSTRAINT_2, ... in each table: there the catalog's
    # CHECK_CONSTRAINTS has a TABLE_NAME to join on too.
    same_table = (
        "  AND cc.TABLE_NAME = tc.TABLE_NAME"
        if getattr(connection.dialect, "is_mariadb", False)
        else ""
    )
    rows = connection.execute(
        text(
            "SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE"
            " FROM information_schema.TABLE_CONSTRAINTS tc"
            " JOIN information_schema.CHECK_CONSTRAINTS cc"
            "   ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA"
            "  AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME"
            f"{same_table}"
            " WHERE tc.CONSTRAINT_TYPE = 'CHECK' AND tc.TABLE_SCHEMA = DATABASE()"
        )
    )
    for table, name, clause in rows:
        if table in tables:
            objects[f"check {table}.{name}"] = {"sqltext": _norm(clause)}


_QUOTES = re.compile(r'["`\[\]]')


def _sqlite_indexes(
    connection: Connection, tables: set[str], objects: dict[str, dict[str, Any]]
) -> None:
    from sqlalchemy import text

    # SQLite's reflection skips expression indexes; the CREATE INDEX text kept in
    # sqlite_master describes every index (columns, expressions, UNIQUE, WHERE) exactly.
    rows = connection.execute(
        text(
            "SELECT tbl_name, name, sql FROM sqlite_master"
            " WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
        )
    )
    for table, name, sql in rows:
        if table in tables:
            objects[f"index {table}.{name}"] = _sqlite_index(str(sql))


def _sqlite_index(sql: str) -> dict[str, Any]:
    definition = _norm(_QUOTES.sub("", sql)) or ""
    opening = definition.find("(")
    depth, closing = 0, len(definition)
    for position in range(max(opening, 0), len(definition)):
        depth += {"(": 1, ")": -1}.get(definition[position], 0)
        if depth == 0:
            closing = position
            break
    inside = definition[opening + 1 : closing] if opening >= 0 else ""
    parts, depth, current = [], 0, ""
    for char in inside:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    where = re.match(r"(?is)\s*where\s+(.*)$", definition[closing + 1 :])
    return {
        "columns": parts,
        "expressions": None,
        "unique": bool(re.match(r"(?i)create\s+unique\b", definition)),
        "where": _norm(where.group(1)) if where else None,
    }
