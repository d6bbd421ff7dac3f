"""The master clock: monotonic microseconds since the start of the run.

Every timestamp hwlink hands out (readings, pulses, frames, signal blocks) is on this clock, so data from
different devices can be compared without conversion. It is built on the platform's fine-grained monotonic
counter (CLOCK_MONOTONIC on Linux, ``hwlink.platform.clock_ns``), which is shared by all processes of the
machine, so a worker process re-creates the same clock from the start value alone.
"""

from __future__ import annotations

import threading

from hwlink.platform import clock_ns


class MasterClock:
    """Microseconds since ``start_ns`` on the system-wide monotonic clock."""

    __slots__ = ("start_ns",)

    def __init__(self, start_ns: int | None = None) -> None:
        self.start_ns: int = clock_ns() if start_ns is None else int(start_ns)

    def now_usec(self) -> int:
        return (clock_ns() - self.start_ns) // 1000

    def now_ns(self) -> int:
        return clock_ns() - self.start_ns

    def usec_to_monotonic_ns(self, usec: int) -> int:
        """Absolute monotonic ns of a master timestamp, for sleeping until it."""
        return self.start_ns + int(usec) * 1000

    def __repr__(self) -> str:
        return f"MasterClock(start_ns={self.start_ns})"


_lock = threading.Lock()
_run_clock: MasterClock | None = None


def run_clock() -> MasterClock:
    """The clock of the current run, created on first use (one per run, shared by everything)."""
    global _run_clock
    with _lock:
        if _run_clock is None:
            _run_clock = MasterClock()
        return _run_clock


def start_run(start_ns: int | None = None) -> MasterClock:
    """Begin a new run: time zero is now (or ``start_ns``, to join a run started by another process)."""
    global _run_clock
    with _lock:
        _run_clock = MasterClock(start_ns)
        return _run_clock
