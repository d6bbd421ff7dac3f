"""The method every benchmark shares: peers alternated round by round, warm-up excluded, min and median over
rounds, the machine's load recorded, and floors (what the hardware and kernel allow for the same bytes).

Rules (issue 19): each peer in its best documented configuration doing exactly the same work; runs alternated so
every peer meets the same machine load; the first round of every peer is a warm-up and is thrown away; the
headline is the minimum over rounds (least disturbed by other jobs), the median is printed beside it.

Floors:

* ``memcpy``: ``np.copyto`` of the same bytes (into a preallocated array);
* ``fromfile``: ``np.fromfile`` of a file of the same size from the page cache;
* ``write``: ``os.write`` of the same bytes in the same burst size into a fresh file, as ``dd bs=...`` does,
  without fsync (page cache) and with ``os.fsync`` at the same points the peer flushes;
* ``pipe``: an ``os.pipe`` round trip of one small message between two processes (the kernel's floor for a
  message from one process to another and back).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them (2 cores: >= 2 means both are busy)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


@dataclass
class Timings:
    """Seconds per round of one peer, warm-up excluded."""

    label: str
    seconds: list[float] = field(default_factory=list)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def alternate(peers: Sequence[tuple[str, Callable[[], object]]], rounds: int, *, warmup: int = 1,
              setup: Callable[[], object] | None = None) -> dict[str, Timings]:
    """Run every peer once per round, in the same order, ``warmup + rounds`` times; time each run.

    ``setup`` (untimed) runs before each peer's run (e.g. removing the previous output file). Peers whose order
    matters for the page cache get the same position every round; the rounds rotate nothing else.
    """
    result = {label: Timings(label) for label, _ in peers}
    for round_index in range(warmup + rounds):
        for label, function in peers:
            if setup is not None:
                setup()
            started = time.perf_counter()
            function()
            elapsed = time.perf_counter() - started
            if round_index >= warmup:
                result[label].seconds.append(elapsed)
    return result


def min_median(seconds: Timings, scale: float = 1e3, digits: int = 1) -> str:
    return f"{seconds.min * scale:.{digits}f} / {seconds.median * scale:.{digits}f}"


# ------------------------------------------------------------------------------------------------------------
# Floors


def memcpy(source: np.ndarray) -> Callable[[], None]:
    """Copy ``source`` into a preallocated array of the same shape (the memory-bandwidth floor)."""
    target = np.empty_like(source)
    return lambda: np.copyto(target, source)


def fromfile(path: Path) -> Callable[[], np.ndarray]:
    """Read ``path`` whole with ``np.fromfile`` (from the page cache once it has been read)."""
    return lambda: np.fromfile(path, dtype=np.uint8)


def write_file(path: Path, data: bytes | memoryview | np.ndarray, burst: int, *, fsync_every: int | None = None,
               fsync_at_end: bool = False) -> Callable[[], None]:
    """``os.write`` the bytes of ``data`` into a fresh ``path`` in ``burst``-byte writes, like
    ``dd bs=burst``; ``os.fsync`` after every ``fsync_every`` bursts and/or once at the end
    (``dd conv=fsync``)."""
    view = memoryview(np.ascontiguousarray(data)).cast("B") if isinstance(data, np.ndarray) else memoryview(data)

    def run() -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for index, start in enumerate(range(0, len(view), burst)):
                chunk = view[start:start + burst]
                while chunk:
                    chunk = chunk[os.write(descriptor, chunk):]
                if fsync_every and (index + 1) % fsync_every == 0:
                    os.fsync(descriptor)
            if fsync_at_end:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)

    return run


def pipe_round_trip(count: int = 20_000, size: int = 32) -> list[float]:
    """Round-trip times (s) of ``size``-byte messages over two ``os.pipe`` s to a child process and back."""
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: echo
        try:
            os.close(to_child_w)
            os.close(to_parent_r)
            while True:
                data = os.read(to_child_r, size)
                if not data:
                    break
                os.write(to_parent_w, data)
        finally:
            os._exit(0)
    os.close(to_child_r)
    os.close(to_parent_w)
    message = b"x" * size
    times = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            os.write(to_child_w, message)
            got = 0
            while got < size:
                got += len(os.read(to_parent_r, size - got))
            times.append(time.perf_counter() - started)
    finally:
        os.close(to_child_w)
        os.close(to_parent_r)
        os.waitpid(pid, 0)
    return times[count // 10:]  # the first tenth is warm-up


def pipe_one_way_items(count: int = 300_000, size: int = 32) -> float:
    """Items per second when every ``size``-byte item is its own ``os.write`` into a pipe a child drains."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(write_end)
            while os.read(read_end, 1 << 16):
                pass
        finally:
            os._exit(0)
    os.close(read_end)
    message = b"x" * size
    try:
        started = time.perf_counter()
        for _ in range(count):
            os.write(write_end, message)
        elapsed = time.perf_counter() - started
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)
    return count / elapsed


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def pipe_wakeup_latency(count: int = 500, interval_s: float = 0.01) -> list[float]:
    """One-way latency (s) of a 30-byte ``os.pipe`` message to a process blocked in ``read``, messages
    ``interval_s`` apart (an event-driven path: the receiver sleeps between events, unlike a ping-pong flood).

    Both ends stamp with ``time.perf_counter_ns`` (CLOCK_MONOTONIC, shared by the processes)."""
    data_r, data_w = os.pipe()
    back_r, back_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(data_w)
            os.close(back_r)
            delays = []
            while True:
                data = os.read(data_r, 30)
                now = time.perf_counter_ns()
                if len(data) < 8:
                    break
                delays.append(now - int.from_bytes(data[:8], "little"))
            os.write(back_w, np.array(delays, dtype=np.int64).tobytes())
        finally:
            os._exit(0)
    os.close(data_r)
    os.close(back_w)
    try:
        for _ in range(count):
            time.sleep(interval_s)
            os.write(data_w, time.perf_counter_ns().to_bytes(8, "little") + b"x" * 22)
    finally:
        os.close(data_w)
    chunks = []
    while chunk := os.read(back_r, 1 << 16):
        chunks.append(chunk)
    os.close(back_r)
    os.waitpid(pid, 0)
    delays = np.frombuffer(b"".join(chunks), dtype=np.int64) / 1e9
    return delays[count // 10:].tolist()


def pty_wakeup_latency(count: int = 500, interval_s: float = 0.002, real_time: bool = False) -> list[float]:
    """One-way latency (s) of a 3-byte message (a Firmata port report's size) written by another process into a
    pty's master and read, raw, from its slave by this thread blocked in ``read``, ``interval_s`` apart; with
    ``real_time`` the reading thread runs at SCHED_FIFO meanwhile (as a driver's reader asks for)."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    stamps_r, stamps_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(slave)
            os.close(stamps_r)
            for _ in range(count):
                time.sleep(interval_s)
                os.write(stamps_w, time.perf_counter_ns().to_bytes(8, "little"))
                os.write(master, b"\x90\x04\x00")
        finally:
            os._exit(0)
    os.close(stamps_w)
    previous = os.sched_getscheduler(0), os.sched_getparam(0)
    if real_time:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError:
            pass
    delays = []
    try:
        for _ in range(count):
            got = 0
            while got < 3:
                got += len(os.read(slave, 3 - got))
            now = time.perf_counter_ns()
            sent = int.from_bytes(os.read(stamps_r, 8), "little")
            delays.append((now - sent) / 1e9)
    finally:
        os.sched_setscheduler(0, previous[0], previous[1])
        os.close(slave)
        os.close(master)
        os.close(stamps_r)
        os.waitpid(pid, 0)
    return delays[count // 10:]
