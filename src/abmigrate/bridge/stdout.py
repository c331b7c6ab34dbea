"""Standard output during the project's own code: it goes to standard error.

Standard output carries abmigrate's result, and ``--format json`` is parsed by programs. The
project's code that abmigrate runs (env.py, its revisions' ``upgrade()``/``downgrade()``, online
or rendered offline) may print there: airflow's revisions print progress ("converting dag run
conf. batch=1") and, in offline mode, SQL comments meant for ``alembic upgrade --sql``'s
script; a logger the project configures on ``sys.stdout`` (structlog's default) writes there
too. While that code runs, ``sys.stdout`` is standard error, where the user still sees it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["project_stdout_to_stderr"]

_stdout_lock = threading.Lock()
_stdout_users = 0
_stdout_saved: TextIO | None = None


@contextmanager
def project_stdout_to_stderr() -> Iterator[None]:
    """While inside, ``sys.stdout`` is standard error. Counted rather than nested like
    ``redirect_stdout``: scratch runs of env.py can overlap in threads, and the last one to
    end restores standard output."""
    global _stdout_users, _stdout_saved
    with _stdout_lock:
        if _stdout_users == 0:
            _stdout_saved = sys.stdout
            sys.stdout = sys.stderr
        _stdout_users += 1
    try:
        yield
    finally:
        with _stdout_lock:
            _stdout_users -= 1
            if _stdout_users == 0 and _stdout_saved is not None:
                sys.stdout, _stdout_saved = _stdout_saved, None
