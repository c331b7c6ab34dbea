"""Revisions run without a database, for the linter: Alembic's offline ("as SQL") migration
context, the ``op`` proxy bound to it, and a look at every operation a revision invokes.

What is recorded and how it is judged belongs to :mod:`abmigrate.lint.capture`; the Alembic
machinery it needs stays here. Alembic and SQLAlchemy are imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

__all__ = ["invoked_operations", "offline_postgresql_context", "operations_on"]


@contextmanager
def invoked_operations(observe: Callable[[Any], None]) -> Iterator[None]:
    """Call ``observe(operation)`` with every Alembic operation invoked while inside, before
    it runs (wraps ``AbstractOperations.invoke``; single-threaded)."""
    from alembic.operations.base import AbstractOperations

    original = AbstractOperations.invoke

    def invoke(self: Any, operation: Any) -> Any:
        observe(operation)
        return original(self, operation)

    AbstractOperations.invoke = invoke  # type: ignore[method-assign]
    try:
        yield
    finally:
        AbstractOperations.invoke = original  # type: ignore[method-assign]


def offline_postgresql_context(output_buffer: Any) -> MigrationContext:
    """An offline MigrationContext for PostgreSQL that writes each rendered statement to
    ``output_buffer`` with literal values."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.dialects import postgresql

    return MigrationContext.configure(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        opts={"as_sql": True, "output_buffer": output_buffer, "literal_binds": True},
    )


@contextmanager
def operations_on(context: MigrationContext) -> Iterator[None]:
    """Alembic's ``op`` bound to ``context`` while inside."""
    from alembic.operations import Operations

    with Operations.context(context):
        yield
