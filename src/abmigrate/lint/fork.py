"""Part of a cold lint in a forked process, on the machine's second core.

A cold lint renders and lints every revision; the work of one revision depends on the
ones before it only through the schema state and Alembic's DDL memo (the analysis cache
keys each revision by exactly these). So the walk can be split in two: a forked process
(which shares everything already imported: Alembic, SQLAlchemy, pglast, the rules) renders
the second part from a fresh offline context while this process walks the first, then
receives the schema state the first part left and lints its revisions against it. Its
results come back pickled; the caller uses them only when the first part ended where the
forked one began (:func:`abmigrate.lint.engine.lint_project`), and walks the second part
itself when anything went wrong here (no fork, the child died, a short answer).

What a revision prints while it renders is collected in the child and written by this
process when the results are merged, so it comes out in the serial walk's order.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import pickle
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["Tail", "can_fork", "fork_tail", "stats"]

# Revisions of the forked process's part of the walk "merged" (its results used) and
# "walked again" (by this process), in this process.
stats: Counter[str] = Counter()


def can_fork() -> bool:
    """A fork is safe and useful: Linux (fork with threads or macOS frameworks is not
    safe), one thread in this process, and a second core this process may run on."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except (AttributeError, OSError):
        return False


class Tail:
    """The forked process's part of the walk, seen from this process."""

    def __init__(self, pid: int, to_child: int, from_child: int) -> None:
        self.pid = pid
        self.to_child = to_child
        self.from_child = from_child

    def finish(self, state: Any) -> Any | None:
        """Send ``state`` (None: the parts do not join, the child stops), then return the
        child's results; None when there are none."""
        try:
            with open(self.to_child, "wb") as pipe:
                pickle.dump(state, pipe)
        except OSError:
            pass  # the child is gone: its answer below is empty
        with open(self.from_child, "rb") as pipe:
            data = pipe.read()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        gc.unfreeze()
        if state is None or not data:
            return None
        try:
            results, out, err = pickle.loads(data)
        except Exception:
            return None
        if out:
            sys.stdout.write(out)
        if err:
            sys.stderr.write(err)
        return results


def fork_tail(work: Callable[[Callable[[], Any]], Any]) -> Tail | None:
    """Run ``work(receive)`` in a forked process (``receive()`` waits for what
    :meth:`Tail.finish` sends); None when the fork fails."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()  # else the child's copy of the buffers could be written twice
    # What is imported is shared with the child until written to; the cyclic collector
    # would write to every object it traverses (copying their pages in both processes).
    gc.freeze()
    try:
        pid = os.fork()
    except OSError:
        gc.unfreeze()
        for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
            os.close(fd)
        return None
    if pid == 0:  # pragma: no cover - the forked process (its coverage is not collected)
        status = 1
        try:
            os.close(to_child_w)
            os.close(from_child_r)

            def receive() -> Any:
                with open(to_child_r, "rb") as pipe:
                    return pickle.loads(pipe.read())

            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                results = work(receive)
            data = pickle.dumps((results, out.getvalue(), err.getvalue()), protocol=5)
            with open(from_child_w, "wb") as pipe:
                pipe.write(data)
            status = 0
        except BaseException:
            pass  # any failure: the parent walks this part itself
        finally:
            # Not sys.exit: the parent's atexit handlers (the analysis cache's flush) and
            # buffered output must not run again here.
            os._exit(status)
    os.close(to_child_r)
    os.close(from_child_w)
    return Tail(pid, to_child_w, from_child_r)
