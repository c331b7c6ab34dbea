"""Running one function over many targets on N threads, one target of a database at a time.

Targets that share a database (schemas of one database) share its migration lock: they are
never migrated together, so no thread of the fleet waits on a lock another thread holds.
With one thread, everything runs in the calling thread (signals and Ctrl-C behave as in a
single run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from abmigrate.fleet.inventory import Target

__all__ = ["run_each"]


def run_each(
    targets: Sequence[Target],
    work: Callable[[Target], None],
    *,
    concurrency: int,
    stop: Callable[[], bool] = lambda: False,
    one_per_database: bool = True,
) -> list[Target]:
    """Call ``work(target)`` for each target until ``stop()`` says so; returns the targets
    never started. ``work`` must not raise (each target's failure is its own outcome).
    ``one_per_database=False`` (reading only, no lock) lets targets of one database overlap."""
    if concurrency > 1:
        from abmigrate.bridge.threads import thread_local_proxies

        thread_local_proxies()  # alembic.op and alembic.context per thread, from now on
    pending = list(targets)
    busy: set[str] = set()
    turn = threading.Condition()
    interrupted: list[BaseException] = []

    def next_target() -> Target | None:
        with turn:
            while pending and not stop() and not interrupted:
                for index, target in enumerate(pending):
                    if target.database_key not in busy:
                        if one_per_database:
                            busy.add(target.database_key)
                        return pending.pop(index)
                turn.wait()
            return None

    def worker() -> None:
        while (target := next_target()) is not None:
            try:
                work(target)
            finally:
                with turn:
                    busy.discard(target.database_key)
                    turn.notify_all()

    if concurrency <= 1 or len(targets) <= 1:
        worker()
        return pending
    threads = [
        threading.Thread(target=worker, name=f"abmigrate-fleet-{number}", daemon=True)
        for number in range(min(concurrency, len(targets)))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt as exc:
        # Nothing new starts; the targets in flight finish (each consistent), then it stops.
        with turn:
            interrupted.append(exc)
            turn.notify_all()
        for thread in threads:
            thread.join()
        raise
    return pending
