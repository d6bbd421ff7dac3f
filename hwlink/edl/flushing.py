"""One background thread that flushes every open EDL writer whose unflushed data is older than its interval.

Writers also flush on append when their interval has passed; the thread covers streams that go quiet, so a
crash never loses more than about one flush interval of data whatever the data rate.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import Protocol

TICK_SECONDS = 0.05


class Flushable(Protocol):
    def flush_if_due(self) -> None: ...

    def flush(self) -> None: ...


_writers: weakref.WeakSet[Flushable] = weakref.WeakSet()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def register(writer: Flushable) -> None:
    """Flush ``writer`` periodically until it is garbage-collected or unregistered."""
    global _thread
    with _lock:
        _writers.add(writer)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="hwlink-edl-flusher", daemon=True)
            _thread.start()


def unregister(writer: Flushable) -> None:
    with _lock:
        _writers.discard(writer)


def _run() -> None:
    while True:
        time.sleep(TICK_SECONDS)
        with _lock:
            writers = list(_writers)
        for writer in writers:
            try:
                writer.flush_if_due()
            except Exception:  # noqa: BLE001 - one writer's failure must not stop the flushing of the others
                pass
        del writers


@atexit.register
def _flush_at_exit() -> None:
    """A writer left open when the interpreter exits still gets its buffered rows onto disk."""
    with _lock:
        writers = list(_writers)
    for writer in writers:
        try:
            writer.flush()
        except Exception:
            pass
