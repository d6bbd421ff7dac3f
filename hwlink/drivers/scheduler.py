"""Timing of pulses and pulse trains off the caller's thread, with microsecond resolution.

A board owns one scheduler thread. It sleeps on a condition until shortly before the next edge and then
spins for the last stretch, because ``time.sleep`` overshoots by tens of microseconds to milliseconds.
The time each edge was actually executed is recorded, so achieved widths can be reported.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

import numpy as np

from hwlink.clock import MasterClock

SPIN_WINDOW_NS = 1_500_000


class PulseTrain:
    """A scheduled series of pulses on one line; filled in with achieved edge times as it runs."""

    def __init__(self, line_id: int, width_usec: int, count: int = 1, period_usec: int = 0, on_value: int = 1,
                 off_value: int = 0, analog: bool = False) -> None:
        self.line_id = line_id
        self.width_usec = width_usec
        self.count = count
        self.period_usec = period_usec
        self.on_value = on_value
        self.off_value = off_value
        self.analog = analog
        self.planned_usec = np.zeros(2 * count, dtype=np.int64)
        self.achieved_usec = np.full(2 * count, -1, dtype=np.int64)
        self._executed = 0
        self._cancelled = False
        self._done = threading.Event()
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the train finished (or was cancelled); True if it finished in time."""
        return self._done.wait(timeout)

    @property
    def achieved_widths_usec(self) -> np.ndarray:
        """Width of every completed pulse, from the executed rising to the executed falling edge."""
        edges = self.achieved_usec[: self._executed - self._executed % 2]
        return edges[1::2] - edges[0::2]

    @property
    def width_errors_usec(self) -> np.ndarray:
        return self.achieved_widths_usec - self.width_usec

    @property
    def end_usec(self) -> int:
        return int(self.planned_usec[-1])


class EdgeScheduler:
    """Runs ``write(line_id, value, analog)`` at planned master-clock times, in its own thread."""

    def __init__(self, clock: MasterClock, write: Callable[[int, int, bool], None],
                 name: str = "hwlink-pulses") -> None:
        self._clock = clock
        self._write = write
        self._heap: list[tuple[int, int, PulseTrain, int]] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False
        self._line_busy_until: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def schedule(self, train: PulseTrain, earliest_usec: int) -> PulseTrain:
        """Plan the train's edges; trains on the same line run one after another, never interleaved."""
        with self._condition:
            if self._stopped:
                raise RuntimeError("scheduler is stopped")
            start = max(earliest_usec, self._line_busy_until.get(train.line_id, 0))
            offsets = np.arange(train.count, dtype=np.int64) * train.period_usec
            train.planned_usec[0::2] = start + offsets
            train.planned_usec[1::2] = start + offsets + train.width_usec
            self._line_busy_until[train.line_id] = train.end_usec
            for index, planned in enumerate(train.planned_usec):
                heapq.heappush(self._heap, (int(planned), next(self._sequence), train, index))
            self._condition.notify()
        return train

    def cancel_line(self, line_id: int) -> None:
        """Drop pending edges of a line (an explicit write overrides a running train)."""
        with self._condition:
            for _, _, train, _ in self._heap:
                if train.line_id == line_id:
                    train._cancelled = True
                    train._done.set()
            self._heap = [item for item in self._heap if item[2].line_id != line_id]
            heapq.heapify(self._heap)
            self._line_busy_until.pop(line_id, None)

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            for _, _, train, _ in self._heap:
                train._cancelled = True
                train._done.set()
            self._heap.clear()
            self._condition.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _next_due(self) -> tuple[int, PulseTrain, int] | None:
        """Wait for the next edge; returns it at its due time, or None when stopped."""
        clock = self._clock
        with self._condition:
            while True:
                if self._stopped:
                    return None
                if not self._heap:
                    self._condition.wait()
                    continue
                due_ns = self._heap[0][0] * 1000
                remaining = due_ns - clock.now_ns()
                if remaining > SPIN_WINDOW_NS:
                    self._condition.wait((remaining - SPIN_WINDOW_NS) / 1e9)
                    continue
                planned, _, train, index = heapq.heappop(self._heap)
                break
        while clock.now_ns() < due_ns:  # spin the last stretch outside the lock
            time.sleep(0)
        return planned, train, index

    def _run(self) -> None:
        while (item := self._next_due()) is not None:
            _, train, index = item
            value = train.on_value if index % 2 == 0 else train.off_value
            try:
                train.achieved_usec[index] = self._clock.now_usec()
                self._write(train.line_id, value, train.analog)
            except BaseException as error:  # noqa: BLE001 - reported through the train, thread keeps serving
                train.error = error
                self.cancel_line(train.line_id)
                continue
            train._executed = index + 1
            if index == 2 * train.count - 1:
                train._done.set()
