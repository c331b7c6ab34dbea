"""Reading the database ahead, while a read-only command loads.

A warm `status` or `history` on PostgreSQL spent a third of its time importing psycopg
(about 90 ms of 250) to ask one or two questions (the version table's rows, the journal's)
whose answers it needs near the end. A
command started from the console (:func:`allow`) forks a child as soon as it knows the URL:
the child imports psycopg, asks the questions on one connection and hands the rows back
through a pipe, while the command itself loads the revision graph, the records and the
renderer on the other core. The command never imports psycopg when every answer came back.

The child only answers. A question it could not answer (a refused connection, an error, a
value it cannot pass on) is simply missing from its reply, and the command asks it again in
its own process, which reports any failure exactly as without read-ahead. Only read-only
commands read ahead, so an answer stays true for the whole command: nothing it does moves
the database.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

from abmigrate.db.database import NOT_READ, READ_AHEAD, _psycopg_options

__all__ = ["NOT_READ", "allow", "claim", "start"]

# (url, quoted relation, sql or None for "is the relation there")
_Key = tuple[str, str, str | None]


_allowed = False
_pending: list[_Reply] = []


def allow() -> None:
    """Let this process read ahead: called by the console entry point only. Forking is
    safe there (one thread, nothing connected yet); it is not inside a test runner's
    worker or an application that calls abmigrate's API."""
    global _allowed
    _allowed = True


def start(url: str, questions: Sequence[tuple[str, str | None]]) -> bool:
    """Ask ``questions`` (each ``(quoted relation, sql)`` as ``database._peek_postgresql``
    takes them) of the PostgreSQL database at ``url`` in a forked child; False when this
    process does not read ahead."""
    if not (_allowed and hasattr(os, "fork") and threading.active_count() == 1):
        return False
    if _psycopg_options(url) is None or "psycopg" in sys.modules:
        return False  # nothing to gain: psycopg cannot answer, or is loaded already
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return False
    if pid == 0:  # the child: answer, write, and leave without running the parent's exits
        os.close(read_end)
        code = 1
        try:
            _write_all(write_end, _answers(url, questions))
            code = 0
        except BaseException:
            pass
        finally:
            os._exit(code)
    os.close(write_end)
    if claim not in READ_AHEAD:
        READ_AHEAD.append(claim)
    _pending.append(_Reply(pid, read_end, [(url, quoted, sql) for quoted, sql in questions]))
    return True


def claim(url: str, quoted: str, sql: str | None) -> Any:
    """The rows (or None: no such relation) read ahead for this question, or ``NOT_READ``."""
    key = (url, quoted, sql)
    for reply in _pending:
        if key in reply.keys:
            return reply.answers().get(key, NOT_READ)
    return NOT_READ


class _Reply:
    """What one child answers, read (and the child reaped) on the first claim."""

    def __init__(self, pid: int, read_end: int, keys: list[_Key]) -> None:
        self.pid = pid
        self.read_end = read_end
        self.keys = keys
        self._answers: dict[_Key, Any] | None = None

    def answers(self) -> dict[_Key, Any]:
        if self._answers is None:
            self._answers = {}
            with os.fdopen(self.read_end, "rb") as pipe:
                reply = pipe.read()
            _, status = os.waitpid(self.pid, 0)
            try:
                decoded = json.loads(reply) if status == 0 else []
            except ValueError:
                decoded = []  # a reply cut short: every question is asked again here
            if len(decoded) == len(self.keys):
                for key, answer in zip(self.keys, decoded, strict=True):
                    if answer is not None:
                        self._answers[key] = None if answer == "absent" else answer
        return self._answers


def _answers(url: str, questions: Sequence[tuple[str, str | None]]) -> bytes:
    from abmigrate.db.database import _CANNOT, peek_postgresql_many

    encoded: list[object] = []
    for rows in peek_postgresql_many(url, questions):
        if rows is None:
            encoded.append("absent")
        elif rows is _CANNOT or not all(
            value is None or isinstance(value, str | int) for row in rows for value in row
        ):
            encoded.append(None)
        else:
            encoded.append([list(row) for row in rows])
    return json.dumps(encoded).encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)
