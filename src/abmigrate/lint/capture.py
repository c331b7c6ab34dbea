"""Run a revision's ``upgrade()`` offline for PostgreSQL and record what it does.

Why this way: each revision runs on its own in a fresh offline MigrationContext (no database,
no ``env.py``), so one revision's output can never bleed into another's, the target dialect
does not depend on what the project's ``env.py`` does with URLs, and the cost is one function
call per revision. Two recorders run at once:

- the output buffer records every SQL statement Alembic renders, with the line of the
  revision file that emitted it (found on the call stack) and, when an :mod:`abmigrate.ops`
  function rendered it, that function's name (rules trust the safe pattern it stands for:
  ``ops.backfill`` renders one UPDATE offline but runs it in committed batches), and
- ``AbstractOperations.invoke`` is observed (per thread) during the capture, so every Alembic
  operation object (``CreateIndexOp``, ``AlterColumnOp`` …, batch operations included) is
  recorded with its arguments and line.

``op.execute("...")`` text goes through the same buffer, so raw SQL is parsed like the rest.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abmigrate.bridge.offline import (
    invoked_operations,
    offline_postgresql_context,
    operations_on,
)
from abmigrate.bridge.stdout import project_stdout_to_stderr
from abmigrate.lint.model import CapturedOp, Statement
from abmigrate.lint.sql import parse_statements

if TYPE_CHECKING:
    from abmigrate.bridge.types import Script

__all__ = ["Capture", "OfflineContext", "capture_revision", "recording"]


@dataclass
class Capture:
    statements: list[Statement] = field(default_factory=list)
    operations: list[CapturedOp] = field(default_factory=list)
    error: str | None = None
    error_line: int | None = None


class _Recorder:
    def __init__(self) -> None:
        self.path: str | None = None
        self.chunks: list[tuple[str, int | None, str | None]] = []
        self.operations: list[CapturedOp] = []

    def line(self) -> int | None:
        """The line of the revision file currently executing (None outside it)."""
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self.path:
                return frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def safe_op(self) -> str | None:
        """The :mod:`abmigrate.ops` function the revision called that is rendering now
        (the outermost one: ``set_not_null``, not the ``add_check`` it calls)."""
        ops = sys.modules.get("abmigrate.ops")
        if ops is None:
            return None  # not imported (by any revision): none of its frames can be running
        found = None
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != self.path:
            if frame.f_code.co_filename == ops.__file__:
                found = frame.f_code.co_name
            frame = frame.f_back  # type: ignore[assignment]
        return found if frame is not None else None


# The recorder of the revision this thread is capturing (threads of a fleet capture apart).
_capturing = threading.local()


def _active() -> _Recorder | None:
    recorder: _Recorder | None = getattr(_capturing, "recorder", None)
    return recorder


class _Buffer:
    """The offline output buffer: one ``write`` per rendered statement."""

    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    def write(self, text: str) -> int:
        if text.strip():
            self.recorder.chunks.append((text, self.recorder.line(), self.recorder.safe_op()))
        return len(text)

    def flush(self) -> None:
        pass


@contextmanager
def recording() -> Iterator[None]:
    """Record the operations revisions invoke while they are captured (single-threaded)."""

    def observe(operation: Any) -> None:
        active = _active()
        if active is not None:
            active.operations.append(CapturedOp(operation, active.line()))

    with invoked_operations(observe):
        yield


class OfflineContext:
    """One offline MigrationContext for PostgreSQL, reused for every revision of a run
    (building one costs more than rendering a typical revision)."""

    def __init__(self) -> None:
        self.buffer = _Buffer(_Recorder())
        self.context = offline_postgresql_context(self.buffer)

    @property
    def memo(self) -> dict[str, Any] | None:
        """Alembic's DDL memo (PostgreSQL types this context created), as JSON; None when
        it holds something else."""
        from abmigrate.lint.facts import memo_to_json

        return memo_to_json(self.context.impl.memo)

    @memo.setter
    def memo(self, value: dict[str, Any]) -> None:
        from abmigrate.lint.facts import memo_from_json

        self.context.impl.memo.clear()
        self.context.impl.memo.update(memo_from_json(value))


def capture_revision(
    script: Script, offline: OfflineContext, direction: str = "upgrade"
) -> Capture:
    """Render ``script``'s upgrade (or downgrade) offline; call inside :func:`recording`."""
    recorder = _Recorder()
    recorder.path = script.path
    capture = Capture()
    offline.buffer.recorder = recorder
    context = offline.context
    _capturing.recorder = recorder
    try:
        with warnings.catch_warnings(), operations_on(context), project_stdout_to_stderr():
            # SQLAlchemy/Alembic warnings while rendering are not the user's problem here.
            warnings.simplefilter("ignore")
            getattr(script.module, direction)()
    except Exception as exc:
        text = str(exc).strip().splitlines()
        capture.error = f"{type(exc).__name__}: {text[0] if text else ''}"
        capture.error_line = _traceback_line(exc, script.path)
    finally:
        _capturing.recorder = None
    capture.operations = recorder.operations
    capture.statements = _statements(recorder.chunks)
    return capture


def _statements(chunks: list[tuple[str, int | None, str | None]]) -> list[Statement]:
    statements: list[Statement] = []
    in_transaction = True  # Alembic runs a PostgreSQL migration in one transaction
    for text, line, safe_op in chunks:
        for sql, node, error in parse_statements(text):
            if node is not None and type(node).__name__ == "TransactionStmt":
                kind = node.kind.name
                if kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"):
                    in_transaction = False
                elif kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
                    in_transaction = True
            statements.append(
                Statement(
                    len(statements),
                    sql,
                    node,
                    line,
                    in_transaction,
                    parse_error=error,
                    safe_op=safe_op,
                )
            )
    return statements


def _traceback_line(exc: BaseException, path: str | None) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
