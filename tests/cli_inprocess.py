"""Run ``abmigrate`` inside the test process, as a fresh ``python -m abmigrate`` would run it.

A subprocess costs the interpreter's start-up and every import (Alembic, SQLAlchemy, Rich,
the project) at each call; most CLI tests only need what the user sees: standard output,
standard error and the exit code. :func:`run_in_process` calls
:func:`abmigrate.cli.main.main` with what the subprocess had:

- the arguments, the working directory, the environment (applied, then restored whole),
  an empty standard input (or ``input``), no terminal anywhere;
- standard output and standard error captured apart, as UTF-8 bytes decoded the way
  ``subprocess.run(text=True)`` decodes them (universal newlines);
- ``sys.path`` as ``python -m`` builds it: the working directory first, then ``PYTHONPATH``,
  then the interpreter's own entries (not the folders pytest put there);
- Python's default warning filters (the suite turns warnings into errors; a real run does
  not), plus ``PYTHONWARNINGS``;
- the exit code from ``main()``'s return, a ``SystemExit``, or 1 with the traceback on
  standard error for an exception that escapes (as the interpreter would print it).

What a real run starts fresh and a second run in the same process would otherwise inherit is
reset around each call: the project's own modules (``env.py``'s ``models``, an application's
settings read once at import: scenarios reuse module names), removed before and after so that
each run imports them anew; the analysis cache's in-process stores and file digests
(:func:`abmigrate.analysis_cache.forget`); the set of projects that needed a fresh process
for scratch jobs (``abmigrate.isolation``); logging (handlers, levels, disabled loggers:
``env.py``'s ``fileConfig`` rewrites them); the garbage collector's thresholds.

Where a real process matters (signals, locks between two processes, start-up imports,
``ulimit``), tests use the ``run_cli_process`` fixture or their own ``subprocess``.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import io
import json
import logging
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import abmigrate

__all__ = ["run_in_process"]

_ABMIGRATE_DIR = os.path.dirname(os.path.abspath(abmigrate.__file__))


@functools.cache
def _library_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, _ABMIGRATE_DIR}
    return tuple(sorted(os.path.join(os.path.realpath(root), "") for root in roots))


@functools.cache
def _interpreter_path() -> tuple[str, ...]:
    """``sys.path`` of a fresh interpreter without ``PYTHONPATH``, minus its first entry."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return tuple(json.loads(out))


def _module_location(module: ModuleType) -> str | None:
    location = getattr(module, "__file__", None)
    if location is None:
        spec = getattr(module, "__spec__", None)
        search = list(getattr(spec, "submodule_search_locations", None) or [])
        location = search[0] if search else None
    return location if isinstance(location, str) else None


@functools.cache
def _outside_libraries(location: str) -> bool:
    real = os.path.join(os.path.realpath(location), "")
    return not real.startswith(_library_roots())


def _is_project_module(name: str, module: Any) -> bool:
    """A module a fresh run would import anew from the project (or a test's own folder):
    anything with a file outside the interpreter, the virtualenv and abmigrate itself."""
    if name == "__main__" or not isinstance(module, ModuleType):
        return False
    location = _module_location(module)
    return location is not None and _outside_libraries(location)


def _project_modules() -> dict[str, ModuleType]:
    return {
        name: module
        for name, module in list(sys.modules.items())
        if _is_project_module(name, module)
    }


@contextlib.contextmanager
def _fresh_modules() -> Iterator[None]:
    stashed = _project_modules()
    for name in stashed:
        del sys.modules[name]
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for name in _project_modules():
            del sys.modules[name]
        sys.modules.update(stashed)
        importlib.invalidate_caches()


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    manager = logging.Logger.manager
    root = logging.getLogger()

    def state(logger: logging.Logger) -> tuple[Any, ...]:
        return (
            logger.level,
            list(logger.handlers),
            list(logger.filters),
            logger.disabled,
            logger.propagate,
        )

    saved_root = state(root)
    saved = {
        name: state(logger)
        for name, logger in list(manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
    }
    saved_disable = manager.disable
    try:
        yield
    finally:
        for name, logger in list(manager.loggerDict.items()):
            if not isinstance(logger, logging.Logger):
                continue
            level, handlers, filters, disabled, propagate = saved.get(
                name, (logging.NOTSET, [], [], False, True)
            )
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.filters[:] = filters
            logger.disabled = disabled
            logger.propagate = propagate
        level, handlers, filters, _, _ = saved_root
        root.setLevel(level)
        root.handlers[:] = handlers
        root.filters[:] = filters
        logging.disable(saved_disable)
        manager._clear_cache()  # type: ignore[attr-defined]


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """What the interpreter's own ``showwarning`` does (pytest records warnings instead)."""
    with contextlib.suppress(OSError):
        (file or sys.stderr).write(
            warnings.formatwarning(message, category, filename, lineno, line)
        )


def _default_warning_filters(env: Mapping[str, str]) -> None:
    """Python's start-up filters (release build, no -X dev), then PYTHONWARNINGS; warnings
    shown on standard error."""
    warnings.showwarning = _show_warning
    warnings.resetwarnings()
    warnings.filterwarnings("ignore", category=ResourceWarning)
    warnings.filterwarnings("ignore", category=ImportWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    for option in reversed([o for o in env.get("PYTHONWARNINGS", "").split(",") if o]):
        with contextlib.suppress(warnings._OptionError):  # type: ignore[attr-defined]
            warnings._setoption(option)  # type: ignore[attr-defined]


def _reset_abmigrate_state() -> None:
    from abmigrate import analysis_cache, isolation

    analysis_cache.forget()
    isolation._NEEDS_FRESH_PROCESS.clear()


def _decoded(buffer: io.BytesIO) -> str:
    text = buffer.getvalue().decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def run_in_process(
    args: tuple[str, ...], *, cwd: Path, env: Mapping[str, str], input: str | None
) -> tuple[int, str, str]:
    """``(exit_code, stdout, stderr)`` of ``abmigrate *args`` run here (see the module)."""
    from abmigrate.cli.main import main

    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace")
    err.reconfigure(line_buffering=True, write_through=True)
    python_path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    saved_path, saved_meta_path = list(sys.path), list(sys.meta_path)
    saved_argv, saved_cwd = list(sys.argv), os.getcwd()
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_gc = gc.get_threshold()
    _reset_abmigrate_state()
    code: int
    try:
        with (
            _environment(env),
            _logging_restored(),
            warnings.catch_warnings(),
            _fresh_modules(),
        ):
            _default_warning_filters(env)
            os.chdir(cwd)
            sys.path[:] = [os.fspath(cwd), *python_path, *_interpreter_path()]
            sys.argv[:] = [os.path.join(_ABMIGRATE_DIR, "__main__.py"), *args]
            sys.stdin = io.StringIO(input or "")
            sys.stdout, sys.stderr = out, err
            gc.set_threshold(20_000, 10, 10)  # as abmigrate.cli.main.run()
            try:
                try:
                    returned: Any = main(list(args))
                except SystemExit as exc:
                    returned = exc.code
                if returned is None:
                    code = 0
                elif isinstance(returned, int):
                    code = returned
                else:  # sys.exit("message")
                    print(returned, file=sys.stderr)
                    code = 1
            except Exception:
                traceback.print_exc(file=sys.stderr)
                code = 1
            finally:
                with contextlib.suppress(ValueError):
                    sys.stdout.flush()
                    sys.stderr.flush()
                _reset_abmigrate_state()  # what atexit would write, written now
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.path[:] = saved_path
        sys.meta_path[:] = saved_meta_path
        sys.argv[:] = saved_argv
        os.chdir(saved_cwd)
        gc.set_threshold(*saved_gc)
        # The runner freezes what is alive before applying (a short-lived process gains);
        # the test process lives on, so its garbage goes back to the collector.
        gc.unfreeze()
    return code, _decoded(out_bytes), _decoded(err_bytes)
