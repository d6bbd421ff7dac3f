"""Timing of pulses and pulse trains off the caller's thread, with microsecond resolution.

A board owns one scheduler thread. It sleeps until shortly before the next edge and spins for the last
stretch, because every blocking wait overshoots by tens of microseconds (and now and then milliseconds).

A train starts as soon as the thread gets to it; its later rising edges are planned from the *achieved* first
edge and every falling edge from its own achieved rising edge, so a late wake-up shifts a pulse a little
but never shortens it, and lateness does not accumulate over a train. Trains on the same line run one
after another.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable

import numpy as np

from hwlink.clock import MasterClock
from hwlink.platform import Waker, make_thread_timely, wait_granularity_ns

SPIN_WINDOW_NS = 600_000


class PulseTrain:
    """A series of pulses on one line; filled in with achieved edge times as it runs."""

    def __init__(self, line_id: int, width_usec: int, count: int = 1, period_usec: int = 0, on_value: int = 1,
                 off_value: int = 0, analog: bool = False) -> None:
        self.line_id = line_id
        self.width_usec = width_usec
        self.count = count
        self.period_usec = period_usec
        self.on_value = on_value
        self.off_value = off_value
        self.analog = analog
        offsets = np.arange(count, dtype=np.int64) * period_usec
        self._offsets = np.empty(2 * count, dtype=np.int64)
        self._offsets[0::2], self._offsets[1::2] = offsets, offsets + width_usec
        self.requested_start_usec = 0
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
        """Block until the train finished (or was cancelled); True if it ended in time."""
        return self._done.wait(timeout)

    @property
    def start_delay_usec(self) -> int:
        """How long after the request the first edge happened (-1 before it did)."""
        if self._executed == 0:
            return -1
        return int(self.achieved_usec[0] - self.requested_start_usec)

    @property
    def achieved_widths_usec(self) -> np.ndarray:
        """Width of every completed pulse, from the executed rising to the executed falling edge."""
        edges = self.achieved_usec[: self._executed - self._executed % 2]
        return edges[1::2] - edges[0::2]

    @property
    def width_errors_usec(self) -> np.ndarray:
        return self.achieved_widths_usec - self.width_usec

    def _plan(self, start_usec: int) -> None:
        self.planned_usec[:] = start_usec + self._offsets

    def _finish(self, cancelled: bool = False) -> None:
        self._cancelled = self._cancelled or cancelled
        self._done.set()


class EdgeScheduler:
    """Runs ``write(line_id, value, analog)`` at planned master-clock times, in its own thread."""

    def __init__(self, clock: MasterClock, write: Callable[[int, int, bool], None],
                 name: str = "hwlink-pulses") -> None:
        self._clock = clock
        self._write = write
        self._heap: list[tuple[int, int, PulseTrain, int]] = []
        self._sequence = itertools.count()
        self._lock = threading.Lock()
        self._stopped = False
        self._active: dict[int, PulseTrain] = {}
        self._queued: dict[int, deque[PulseTrain]] = {}
        self._waker = Waker()
        self._spin_window_ns = SPIN_WINDOW_NS + wait_granularity_ns()  # coarse timers (Windows): wake earlier
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def schedule(self, train: PulseTrain, earliest_usec: int) -> PulseTrain:
        """Start the train at ``earliest_usec`` or, if its line is busy, right after the trains before it."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("scheduler is stopped")
            train.requested_start_usec = earliest_usec
            if train.line_id in self._active:
                self._queued.setdefault(train.line_id, deque()).append(train)
            else:
                self._activate(train, earliest_usec)
        return train

    def _activate(self, train: PulseTrain, start_usec: int) -> None:
        self._active[train.line_id] = train
        train._plan(start_usec)
        self._push(train, 0)

    def _push(self, train: PulseTrain, index: int) -> None:
        heapq.heappush(self._heap, (int(train.planned_usec[index]), next(self._sequence), train, index))
        self._wake()

    def _wake(self) -> None:
        self._waker.wake()

    def cancel_line(self, line_id: int) -> None:
        """Drop the running and queued trains of a line (an explicit write overrides them)."""
        with self._lock:
            self._heap = [item for item in self._heap if item[2].line_id != line_id]
            heapq.heapify(self._heap)
            for train in (self._active.pop(line_id, None), *self._queued.pop(line_id, ())):
                if train is not None:
                    train._finish(cancelled=True)

    def stop(self) -> None:
        """Cancel everything pending and end the thread; later calls do nothing."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            for line_id in list(self._active):
                for train in (self._active.pop(line_id), *self._queued.pop(line_id, ())):
                    train._finish(cancelled=True)
            self._heap.clear()
            self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
            self._waker.close()

    def _next_due(self) -> tuple[int, PulseTrain, int] | None:
        """Wait for the next edge; returns it at its due time, or None when stopped.

        Waiting is a select() on a waker (precise with a small timer slack, and interrupted when an earlier edge
        is planned), then a spin over the last stretch, which absorbs the wake-up jitter; where timed waits are
        coarse the stretch grows by the platform's wait granularity.
        """
        clock = self._clock
        while True:
            with self._lock:
                if self._stopped:
                    return None
                timeout = None
                if self._heap:
                    due_ns = self._heap[0][0] * 1000
                    remaining = due_ns - clock.now_ns()
                    if remaining <= self._spin_window_ns:
                        planned, _, train, index = heapq.heappop(self._heap)
                        break
                    timeout = (remaining - self._spin_window_ns) / 1e9
            self._waker.wait(timeout)
        # Spin the last stretch without yielding: sched_yield() would hand the core to any other runnable
        # process for a whole time slice. Holding the GIL this long is below the interpreter's switch interval.
        while clock.now_ns() < due_ns:
            pass
        return planned, train, index

    def _run(self) -> None:
        make_thread_timely()
        while (item := self._next_due()) is not None:
            _, train, index = item
            value = train.on_value if index % 2 == 0 else train.off_value
            try:
                achieved = self._clock.now_usec()
                self._write(train.line_id, value, train.analog)
            except BaseException as error:  # noqa: BLE001 - reported through the train, thread keeps serving
                train.error = error
                self.cancel_line(train.line_id)
                continue
            train.achieved_usec[index] = achieved
            train._executed = index + 1
            with self._lock:
                if self._active.get(train.line_id) is not train:
                    continue  # cancelled while this edge was being written
                if index == 0:
                    train._plan(achieved)  # later rising edges keep their spacing from the real start
                if index % 2 == 0:
                    train.planned_usec[index + 1] = achieved + train.width_usec  # a late rise keeps its width
                if index + 1 < 2 * train.count:
                    self._push(train, index + 1)
                    continue
                del self._active[train.line_id]
                train._finish()
                queue = self._queued.get(train.line_id)
                if queue:
                    following = queue.popleft()
                    self._activate(following, max(following.requested_start_usec, self._clock.now_usec()))

