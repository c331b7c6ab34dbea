"""Alembic's ``op`` and ``context`` for several migrations at once, one per thread.

Alembic makes ``alembic.op`` and ``alembic.context`` module-level proxies: entering an
``EnvironmentContext`` (or ``Operations.context``) writes the instance into the module's
globals, and every ``op.create_table`` calls whatever instance was written last. Two env.py
runs in two threads would send one target's revisions to the other target's connection.

:func:`thread_local_proxies` makes each thread see its own instance: the module's ``_proxy``
becomes a dispatcher to the instance the calling thread entered last, and the proxied
attributes (``context.config``) are answered by the module's ``__getattr__`` the same way.
A thread that entered none (a worker thread an env.py starts to run its migrations in) is
answered by the one instance active in the process, as plain Alembic would; with several
active at once (a fleet's threads) that is ambiguous, and it is refused with a hint. A
single-threaded run behaves exactly as before. Installed once, for the process's life.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from typing import Any

from alembic.util.langhelpers import ModuleClsProxy

__all__ = ["environment_turns", "thread_local_proxies"]

_local = threading.local()
_install_lock = threading.Lock()
_installed = False
# Every instance active in any thread, per class: what a thread that entered none sees.
_active: dict[type[Any], list[Any]] = {}
_active_lock = threading.Lock()


def _stack(cls: type[Any]) -> list[Any]:
    stacks: dict[type[Any], list[Any]] | None = getattr(_local, "stacks", None)
    if stacks is None:
        stacks = _local.stacks = {}
    return stacks.setdefault(cls, [])


def _current(cls: type[Any]) -> Any | None:
    """This thread's instance; else the process's only active one; else None."""
    stack = _stack(cls)
    if stack:
        return stack[-1]
    with _active_lock:
        active = list(_active.get(cls, ()))
    if len(active) > 1:
        raise RuntimeError(
            f"Alembic's {cls.__name__} was used from a thread of env.py's own while several"
            " migrations run at once: run the fleet with --concurrency 1"
        )
    return active[0] if active else None


class _Dispatch:
    """Stands in for a proxy module's ``_proxy``: each lookup reaches this thread's instance."""

    def __init__(self, cls: type[Any]) -> None:
        self._cls = cls

    def __getattr__(self, name: str) -> Any:
        current = _current(self._cls)
        if current is None:
            raise NameError(
                f"Can't invoke {name!r}: no Alembic {self._cls.__name__} is active in this thread"
            )
        return getattr(current, name)


def _module_getattr(cls: type[Any], names: set[str]) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        current = _current(cls) if name in names else None
        if current is not None:
            return getattr(current, name)
        raise AttributeError(name)

    return __getattr__


def _install(self: ModuleClsProxy) -> None:
    cls = type(self)
    names, modules = self._setups[cls]
    _stack(cls).append(self)
    with _active_lock:
        _active.setdefault(cls, []).append(self)
    for globals_, _ in modules:
        _dispatch_module(globals_, cls, names)


def _dispatch_module(globals_: MutableMapping[str, Any], cls: type[Any], names: set[str]) -> None:
    if not isinstance(globals_.get("_proxy"), _Dispatch):
        globals_["_proxy"] = _Dispatch(cls)
        globals_["__getattr__"] = _module_getattr(cls, names)
    for name in names:
        globals_.pop(name, None)


def _remove(self: ModuleClsProxy) -> None:
    _drop_last(_stack(type(self)), self)
    with _active_lock:
        _drop_last(_active.get(type(self), []), self)


def _drop_last(instances: list[Any], instance: Any) -> None:
    for index in range(len(instances) - 1, -1, -1):
        if instances[index] is instance:
            del instances[index]
            return


def thread_local_proxies() -> None:
    """From now on, ``alembic.op`` and ``alembic.context`` answer per thread."""
    global _installed
    with _install_lock:
        if _installed:
            return
        ModuleClsProxy._install_proxy = _install  # type: ignore[method-assign]
        ModuleClsProxy._remove_proxy = _remove  # type: ignore[method-assign]
        _installed = True


class _EnvironmentTurns:
    """The process's environment variables, shared by env.py runs, taken whole by a scratch
    job that points them at a scratch database (:func:`~abmigrate.bridge.env_run.pointing_env_at`).

    An env.py that reads ``$DATABASE_URL`` in one thread must not see another thread's
    scratch database there. Runs share; a scratch job waits for the runs in flight, and new
    runs wait for it (it goes first once it asks). Both nest within one thread.
    """

    def __init__(self) -> None:
        self._turn = threading.Condition()
        self._readers: dict[int, int] = {}
        self._writer: int | None = None
        self._writer_depth = 0
        self._writers_waiting = 0

    def shared(self) -> _Turn:
        return _Turn(self, exclusive=False)

    def exclusive(self) -> _Turn:
        return _Turn(self, exclusive=True)

    def acquire(self, *, exclusive: bool) -> None:
        me = threading.get_ident()
        with self._turn:
            if self._writer == me:
                if exclusive:
                    self._writer_depth += 1
                else:
                    self._readers[me] = self._readers.get(me, 0) + 1
                return
            if not exclusive:
                if me not in self._readers:
                    self._turn.wait_for(lambda: self._writer is None and not self._writers_waiting)
                self._readers[me] = self._readers.get(me, 0) + 1
                return
            self._writers_waiting += 1
            try:
                # A thread holding a shared turn does not wait for itself.
                self._turn.wait_for(
                    lambda: self._writer is None and not (set(self._readers) - {me})
                )
            finally:
                self._writers_waiting -= 1
            self._writer, self._writer_depth = me, 1

    def release(self, *, exclusive: bool) -> None:
        me = threading.get_ident()
        with self._turn:
            if exclusive:
                self._writer_depth -= 1
                if self._writer_depth == 0:
                    self._writer = None
            else:
                self._readers[me] -= 1
                if not self._readers[me]:
                    del self._readers[me]
            self._turn.notify_all()


class _Turn:
    def __init__(self, turns: _EnvironmentTurns, *, exclusive: bool) -> None:
        self.turns, self.exclusive = turns, exclusive

    def __enter__(self) -> None:
        self.turns.acquire(exclusive=self.exclusive)

    def __exit__(self, *exc: object) -> None:
        self.turns.release(exclusive=self.exclusive)


environment_turns = _EnvironmentTurns()
