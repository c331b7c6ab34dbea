"""Revisions run without a database, for the linter: Alembic's offline ("as SQL") migration
context, the ``op`` proxy bound to it, and a look at every operation a revision invokes.

What is recorded and how it is judged belongs to :mod:`abmigrate.lint.capture`; the Alembic
machinery it needs stays here. Alembic and SQLAlchemy are imported on first use.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

__all__ = ["invoked_operations", "offline_postgresql_context", "operations_on"]


@contextmanager
def invoked_operations(observe: Callable[[Any], None]) -> Iterator[None]:
    """Call ``observe(operation)`` with every Alembic operation this thread invokes while
    inside, before it runs (wraps ``AbstractOperations.invoke`` once for the process;
    operations of other threads, a fleet's migrations, are not observed)."""
    _wrap_invoke()
    observers = _observers()
    observers.append(observe)
    try:
        yield
    finally:
        observers.remove(observe)


_observing = threading.local()
_wrap_lock = threading.Lock()


def _observers() -> list[Callable[[Any], None]]:
    found: list[Callable[[Any], None]] | None = getattr(_observing, "observers", None)
    if found is None:
        found = _observing.observers = []
    return found


def _wrap_invoke() -> None:
    _import_alembic_operations()
    from alembic.operations.base import AbstractOperations

    with _wrap_lock:
        original = AbstractOperations.invoke
        if getattr(original, "_abmigrate_observed", False):
            return

        def invoke(self: Any, operation: Any) -> Any:
            for observe in tuple(getattr(_observing, "observers", ())):
                observe(operation)
            return original(self, operation)

        invoke._abmigrate_observed = True  # type: ignore[attr-defined]
        AbstractOperations.invoke = invoke  # type: ignore[method-assign]


def _import_alembic_operations() -> None:
    """Import Alembic's operations without Pygments where nothing has imported Mako yet.

    Alembic imports ``mako.exceptions``, which imports Pygments' lexers (a tenth of
    Alembic's import time) for highlighting the HTML page of a template error; Alembic
    neither renders that page nor does anything that runs here use Mako. Mako falls back
    to plain text when its Pygments plugin does not import. Only while this process has a
    single thread: another thread could be importing the plugin for real."""
    plugin = "mako.ext.pygmentplugin"
    if (
        "alembic.operations.base" in sys.modules
        or "mako.exceptions" in sys.modules
        or plugin in sys.modules
        or threading.active_count() != 1
    ):
        return
    # A None entry makes the import raise ImportError.
    sys.modules[plugin] = None  # type: ignore[assignment]
    try:
        import alembic.operations.base  # noqa: F401
    finally:
        if plugin in sys.modules and sys.modules[plugin] is None:
            del sys.modules[plugin]


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
