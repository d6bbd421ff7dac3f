"""The source of the master clock: a system-wide monotonic nanosecond counter with sub-microsecond ticks.

``time.monotonic_ns`` is CLOCK_MONOTONIC on Linux and mach_absolute_time on macOS: fine-grained and shared by
every process, so a worker rebuilds the engine's clock from its start value alone. On Windows (Python <= 3.12)
it is GetTickCount64, 15.6 ms per tick; ``time.perf_counter_ns`` (QueryPerformanceCounter) is fine-grained and
also system-wide there. The choice is made once per process, the same way in the engine and in its workers
(they inherit ``HWLINK_PORTABLE``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hwlink.platform._switches import portable

FINE_RESOLUTION_SEC = 1e-6


def _choose() -> tuple[str, Callable[[], int]]:
    if portable("clock") or time.get_clock_info("monotonic").resolution > FINE_RESOLUTION_SEC:
        return "perf_counter", time.perf_counter_ns
    return "monotonic", time.monotonic_ns


CLOCK_NAME, clock_ns = _choose()


def clock_resolution_sec() -> float:
    return time.get_clock_info(CLOCK_NAME).resolution
