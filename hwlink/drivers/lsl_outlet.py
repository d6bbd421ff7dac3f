"""LSL outlets that publish hwlink streams, with master-clock timestamps converted to LSL's clock.

Used by ``hwlink record --lsl`` and the ``lsl-outlet`` module kind of ``hwlink run``. One outlet per stream:

* line readings: an irregular-rate ``double64`` stream with one channel per line (labels = line names); each
  reading is one sample holding the value in its line's channel and NaN in the others (``lsl://`` reads NaN as
  "no reading on this line");
* signal blocks: a ``float32``/``int32`` stream at the block rate (irregular if unknown), one sample per row;
* table rows, control commands and line commands: ``string`` marker streams (one channel per table column; a
  single channel ``KIND[ duration][ text]`` for commands).

Every sample carries its hwlink master timestamp converted to LSL time (``pylsl.local_clock()`` seconds): both
count CLOCK_MONOTONIC, so the conversion is exact on this machine; other machines map it with liblsl's clock
offsets (LabRecorder, ``lsl://``). The outlet's XML ``desc`` says so (``hwlink/master_clock_start_ns``).

LSL consumers expect a stream's timestamps not to go backwards, and a line stream fed by several sources (lines with
a clock synchronizer and a latency each) can deliver a reading stamped earlier than one pushed just before. Such
streams go through a :class:`ReorderBuffer`: samples are held until the master clock is past their stamp by a
hold-back window learnt from how late readings actually arrive, then pushed in stamp order, stamps untouched.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwlink.clock import MasterClock
from hwlink.drivers.lsl import import_pylsl, lsl_time_of
from hwlink.lines import ControlCommand, LineCommand, LineReading


CLOSE_LINGER_S = 0.25


class ReorderBuffer:
    """Puts the samples of one stream back in stamp order before they are pushed, without changing a stamp.

    The rule: a sample stamped ``s`` is held until the master clock reads ``s + window`` or later; everything
    held is pushed sorted by stamp (ties in arrival order). A sample's *lateness* is how long after its stamp
    it reaches the buffer (``now - s``: the device's link latency, the clock sync's error and the host's
    queueing). If every sample is at most ``window`` late, the order is exact: a sample stamped ``s' < s``
    arrives by ``s' + window < s + window``, before ``s`` leaves. (A caller that releases only after taking in
    everything queued, as ``hwlink record`` does, passes the reading's host arrival time as its arrival: its own
    backlog is then never overtaken and need not widen the window.) So the window is the largest lateness seen
    over the last ``horizon_usec`` of arrivals (warm-up's larger lateness ages out), times 1.25 plus
    ``margin_usec`` for lateness not seen yet (a loaded machine's scheduling), bounded by ``max_window_usec``
    so a stalled source cannot hold the whole stream back.

    A sample that still arrives older than the last one pushed (later than the window) is pushed at once with
    its true stamp and counted in ``out_of_order``: a consumer (LabRecorder, XDF) keeps every sample and its
    exact time, and sorts on read if it needs to; its lateness widens the window for what follows.

    ``active=False`` starts as a pass-through (no latency added, for streams that are in order by
    construction) that switches to holding back the first time a sample arrives older than one already pushed.
    Pure and deterministic: the caller passes the master clock's ``now`` (µs) to every call.
    """

    def __init__(self, *, active: bool = True, horizon_usec: int = 10_000_000, margin_usec: int = 2_000,
                 max_window_usec: int = 250_000) -> None:
        self.active = active
        self.horizon_usec = horizon_usec
        self.margin_usec = margin_usec
        self.max_window_usec = max_window_usec
        self.out_of_order = 0
        self.last_pushed: int | None = None
        self._held: list[tuple[int, int, Any]] = []  # heap of (stamp, arrival order, sample)
        self._order = 0
        self._lateness: deque[tuple[int, int]] = deque()  # (arrival, lateness), lateness decreasing

    def __len__(self) -> int:
        return len(self._held)

    def window_usec(self, now_usec: int) -> int:
        """The current hold-back window (0 while passing through)."""
        if not self.active:
            return 0
        lateness = self._lateness
        while len(lateness) > 1 and lateness[0][0] < now_usec - self.horizon_usec:
            lateness.popleft()
        largest = lateness[0][1] if lateness else 0
        return min(self.max_window_usec, largest + largest // 4 + self.margin_usec)

    def add(self, sample: Any, stamp_usec: int, now_usec: int) -> list[tuple[Any, int]]:
        """Take one sample; returns what is to be pushed now (only while passing through: holding back, the
        caller pushes what :meth:`release` returns, after adding everything that has arrived)."""
        stamp_usec = int(stamp_usec)
        lateness = max(0, int(now_usec) - stamp_usec)
        while self._lateness and self._lateness[-1][1] <= lateness:
            self._lateness.pop()
        self._lateness.append((int(now_usec), lateness))
        if not self.active:
            if self.last_pushed is None or stamp_usec >= self.last_pushed:
                self.last_pushed = stamp_usec
                return [(sample, stamp_usec)]
            self.active = True
        heapq.heappush(self._held, (stamp_usec, self._order, sample))
        self._order += 1
        return []

    def release(self, now_usec: int) -> list[tuple[Any, int]]:
        """The held samples whose stamp the clock is past by the window, in stamp order."""
        due = int(now_usec) - self.window_usec(now_usec)
        out = []
        while self._held and self._held[0][0] <= due:
            out.append(self._pop())
        return out

    def flush(self) -> list[tuple[Any, int]]:
        """Everything held, in stamp order (on close)."""
        return [self._pop() for _ in range(len(self._held))]

    def next_due_usec(self, now_usec: int) -> int | None:
        """How long until the oldest held sample is due (None: nothing held)."""
        if not self._held:
            return None
        return max(0, self._held[0][0] + self.window_usec(now_usec) - int(now_usec))

    def _pop(self) -> tuple[Any, int]:
        stamp, _, sample = heapq.heappop(self._held)
        if self.last_pushed is not None and stamp < self.last_pushed:
            self.out_of_order += 1
        else:
            self.last_pushed = stamp
        return sample, stamp


class _Outlet:
    """A pylsl outlet with hwlink's description block."""

    def __init__(self, clock: MasterClock, name: str, stream_type: str, labels: Sequence[str], fmt: str,
                 rate_hz: float, source_id: str, units: Sequence[str] | None = None) -> None:
        pylsl = import_pylsl()
        self.clock = clock
        formats = {"double64": pylsl.cf_double64, "float32": pylsl.cf_float32, "int32": pylsl.cf_int32,
                   "string": pylsl.cf_string}
        info = pylsl.StreamInfo(name, stream_type, len(labels), rate_hz, formats[fmt], source_id)
        channels = info.desc().append_child("channels")
        for index, label in enumerate(labels):
            channel = channels.append_child("channel")
            channel.append_child_value("label", str(label))
            if units and units[index]:
                channel.append_child_value("unit", str(units[index]))
        meta = info.desc().append_child("hwlink")
        meta.append_child_value("master_clock_start_ns", str(clock.start_ns))
        meta.append_child_value("timestamps", "hwlink master clock converted to LSL local_clock")
        self.channel_count = len(labels)
        self.samples = 0
        self._outlet = pylsl.StreamOutlet(info, chunk_size=1, max_buffered=360)

    def push(self, sample: Sequence[Any], master_usec: int) -> None:
        self._outlet.push_sample(sample, float(lsl_time_of(self.clock, master_usec)), True)
        self.samples += 1

    def push_chunk(self, rows: np.ndarray, master_usec: np.ndarray) -> None:
        stamps = lsl_time_of(self.clock, master_usec).tolist()
        self._outlet.push_chunk(np.ascontiguousarray(rows), stamps, True)
        self.samples += len(stamps)

    def have_consumers(self) -> bool:
        return bool(self._outlet.have_consumers())

    def wait_for_consumers(self, timeout_s: float) -> bool:
        return bool(self._outlet.wait_for_consumers(timeout_s))

    def close(self) -> None:
        """Destroy the outlet; with consumers connected, first give liblsl's sender a moment: it sends
        asynchronously, and samples still in its queue would be lost with the outlet."""
        if self._outlet is not None and self._outlet.have_consumers():
            time.sleep(CLOSE_LINGER_S)
        self._outlet = None  # pylsl destroys the outlet with its last reference


class LineOutlet(_Outlet):
    """Line readings of known lines, one channel per line (NaN in the channels a reading does not touch).

    With ``reorder`` (a :class:`ReorderBuffer`), readings are held and pushed in stamp order: by whoever calls
    :meth:`release` (``hwlink record``, after each batch it has taken in), or by a thread of the outlet's own
    (:meth:`start_releasing`). Without, each reading is pushed as it comes (the stream is in order by
    construction). :meth:`close` pushes everything still held.
    """

    def __init__(self, clock: MasterClock, name: str, lines: dict[int, str], source_id: str,
                 stream_type: str = "hwlink-lines", reorder: ReorderBuffer | None = None) -> None:
        self.line_ids = list(lines)
        self._column = {line_id: index for index, line_id in enumerate(self.line_ids)}
        super().__init__(clock, name, stream_type, [lines[line_id] for line_id in self.line_ids], "double64", 0.0,
                         source_id)
        self._row = [float("nan")] * len(self.line_ids)
        self.reorder = reorder
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._releaser: threading.Thread | None = None
        self._closing = False

    def push_reading(self, reading: LineReading, time_usec: int | None = None,
                     arrival_usec: int | None = None) -> None:
        """Push (or, reordering, hold) one reading stamped ``time_usec`` (default its own ``time_usec``).
        ``arrival_usec``: when it reached the host, for the reorder window's lateness (default: now)."""
        column = self._column.get(reading.line_id)
        if column is None:
            return
        row = list(self._row)
        row[column] = float(reading.value)
        stamp = reading.time_usec if time_usec is None else time_usec
        if self.reorder is None:
            self.push(row, stamp)
            return
        with self._lock:
            arrival = self.clock.now_usec() if arrival_usec is None else arrival_usec
            for sample, sample_stamp in self.reorder.add(row, stamp, arrival):
                self.push(sample, sample_stamp)
            if self._releaser is not None and self.reorder.active:  # passing through: nothing to release
                self._wake.notify()

    def release(self) -> float | None:
        """Push the held readings that are due; returns the seconds until the next one is (None: none held)."""
        if self.reorder is None:
            return None
        with self._lock:
            return self._release_locked()

    def _release_locked(self) -> float | None:
        assert self.reorder is not None
        now = self.clock.now_usec()
        for sample, stamp in self.reorder.release(now):
            self.push(sample, stamp)
        due = self.reorder.next_due_usec(now)
        return None if due is None else due / 1e6

    def start_releasing(self) -> None:
        """Release held readings from a thread of the outlet's own, each as soon as it is due."""
        if self.reorder is None or self._releaser is not None:
            return
        self._releaser = threading.Thread(target=self._release_loop, name=f"lsl-reorder-{self.line_ids[:1]}",
                                          daemon=True)
        self._releaser.start()

    def _release_loop(self) -> None:
        with self._lock:
            while not self._closing:
                self._wake.wait(self._release_locked())

    def close(self) -> None:
        if self.reorder is not None:
            with self._lock:
                self._closing = True
                self._wake.notify()
                for sample, stamp in self.reorder.flush():
                    self.push(sample, stamp)
            if self._releaser is not None and self._releaser is not threading.current_thread():
                self._releaser.join(timeout=2)
        super().close()


class SignalOutlet(_Outlet):
    """Signal blocks (rows x channels) at their sample rate."""

    def __init__(self, clock: MasterClock, name: str, channel_names: Sequence[str], dtype: Any, rate_hz: float,
                 source_id: str, units: Sequence[str] | None = None, stream_type: str = "hwlink-signals") -> None:
        self.dtype = np.float32 if np.dtype(dtype).kind == "f" else np.int32
        super().__init__(clock, name, stream_type, channel_names, "float32" if self.dtype is np.float32 else "int32",
                         rate_hz, source_id, units)

    def push_block(self, timestamps_usec: np.ndarray, data: np.ndarray) -> None:
        rows = np.asarray(data, dtype=self.dtype).reshape(len(timestamps_usec), self.channel_count)
        self.push_chunk(rows, np.asarray(timestamps_usec))


class MarkerOutlet(_Outlet):
    """String markers: table rows (one channel per column) or commands (one channel)."""

    def __init__(self, clock: MasterClock, name: str, columns: Sequence[str], source_id: str,
                 stream_type: str = "Markers") -> None:
        super().__init__(clock, name, stream_type, columns, "string", 0.0, source_id)

    def push_row(self, row: Sequence[Any], master_usec: int) -> None:
        cells = [str(value) for value in row][: self.channel_count]
        cells += [""] * (self.channel_count - len(cells))
        self.push(cells, master_usec)

    def push_command(self, command: ControlCommand | LineCommand, master_usec: int) -> None:
        self.push([command_marker(command)], master_usec)


def command_marker(command: ControlCommand | LineCommand) -> str:
    """'START', 'STOP 500', 'STEP 0 text' for control commands; 'WRITE_DIGITAL line=13 value=1' for line commands."""
    if isinstance(command, ControlCommand):
        parts = [command.kind.name]
        if command.duration or command.command:
            parts.append(str(command.duration))
        if command.command:
            parts.append(command.command)
        return " ".join(parts)
    text = f"{command.kind.name} line={command.line_id} value={command.value}"
    if command.duration_usec:
        text += f" duration_usec={command.duration_usec}"
    return text
