"""EDL recording of signal blocks: hwlink's recorder vs the best plain h5py loop vs the floor (os.write, like dd).

Throughput (issue 19 method): the same SignalBlocks (a fresh data array per block, as an acquisition delivers
them) are written (a) through ``hwlink record``'s Recorder into an EDL collection (HDF5 signal writer, 4 MiB
buffer, one burst + ``File.flush()`` per full buffer), (b) by a plain h5py loop buffered the same way (blocks
copied into a 4 MiB numpy buffer; per full buffer one resize + slice write per dataset and one
``File.flush()``: the same bursts, the same flush points; same chunk shape), (c) by the naive plain h5py loop
(resize + write per block), and (d) the floor: ``os.write`` of the same bytes (data and timestamps) in the
same 4 MiB bursts into one file, as ``dd bs=4M`` does. Each twice: to the page cache, and with ``os.fsync`` of
every file written at the end (``dd conv=fsync``). Peers alternated round by round, first round dropped, min
and median over rounds. The recorder's time includes creating the collection and its manifests.

CPU share: a 64 ch x 30 kHz int16 stream is delivered in real time (blocks of 1000 samples from a feeder
thread, as a driver's acquisition thread would) through the recorder's queue and writer loop; process CPU time
over wall time, next to the same for the buffered plain loop flushing at the same 0.5 s interval. Goal: < 10 %
of a core.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from benchmarks import _harness as harness
from hwlink.cli.record_cmds import Recorder, drain_inbox
from hwlink.drivers import Board, open_board
from hwlink.edl import Collection
from hwlink.edl.signals import CHUNK_BYTES, SignalWriter
from hwlink.lines import SignalBlock

CASES = (  # name, channels, rate (Hz), dtype, samples per block
    ("64 ch x 30 kHz int16", 64, 30_000, np.int16, 1_000),
    ("16 ch x 100 kHz float32", 16, 100_000, np.float32, 5_000),
)


def _blocks(channels: int, rate: int, dtype: type, block: int, seconds: float) -> list[SignalBlock]:
    rng = np.random.default_rng(0)
    count = int(rate * seconds) // block
    step_usec = 1e6 / rate
    return [SignalBlock(np.rint(np.arange(i * block, (i + 1) * block) * step_usec).astype(np.int64),
                        (rng.standard_normal((block, channels)) * 1000).astype(dtype), tuple(range(channels)),
                        i * block) for i in range(count)]


def _payload_mb(blocks: list[SignalBlock]) -> float:
    return sum(block.data.nbytes + block.timestamps.nbytes for block in blocks) / 1e6


def _recorder(board: Board, folder: Path, name: str) -> Recorder:
    """The recorder of ``hwlink record`` on a new collection (the board only names the lines)."""
    return Recorder(board, Collection.create(folder, name), modes={})


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


def record_with_hwlink(board: Board, folder: Path, blocks: list[SignalBlock], fsync: bool = False) -> None:
    recorder = _recorder(board, folder, "hwlink")
    for block in blocks:
        recorder.add_signal_block(block)
    recorder.close()
    if fsync:
        _fsync_tree(folder)


def record_with_signal_writer(folder: Path, blocks: list[SignalBlock], fsync: bool = False) -> None:
    """hwlink's HDF5 signal writer alone (what the recorder uses per stream, without the EDL collection)."""
    channels = blocks[0].data.shape[1]
    with SignalWriter(folder / "signal.h5", [f"ch{i}" for i in range(channels)], blocks[0].data.dtype) as writer:
        for block in blocks:
            writer.append_block(block)
    if fsync:
        _fsync_tree(folder)


def _plain_file(path: Path, channels: int, dtype: type) -> tuple[h5py.File, h5py.Dataset, h5py.Dataset]:
    chunk_rows = max(256, CHUNK_BYTES // (np.dtype(dtype).itemsize * channels))
    file = h5py.File(path, "w")
    data = file.create_dataset("data", shape=(0, channels), maxshape=(None, channels), dtype=dtype,
                               chunks=(chunk_rows, channels))
    stamps = file.create_dataset("timestamps", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(chunk_rows,))
    return file, data, stamps


def _plain_append(data: h5py.Dataset, stamps: h5py.Dataset, block: SignalBlock) -> None:
    rows = data.shape[0]
    data.resize(rows + block.length, axis=0)
    data[rows:] = block.data
    stamps.resize(rows + block.length, axis=0)
    stamps[rows:] = block.timestamps


def record_with_h5py(folder: Path, blocks: list[SignalBlock], fsync: bool = False) -> None:
    """The naive loop: resize and write per block."""
    file, data, stamps = _plain_file(folder / "plain.h5", blocks[0].data.shape[1], blocks[0].data.dtype)
    for block in blocks:
        _plain_append(data, stamps, block)
    file.close()
    if fsync:
        _fsync_tree(folder)


class BufferedPlain:
    """A plain h5py writer buffered as the recorder is: blocks copied into a 4 MiB buffer, one burst (resize +
    slice write per dataset) and one ``File.flush()`` per full buffer or flush interval."""

    def __init__(self, path: Path, channels: int, dtype: type, flush_interval: float = 0.5) -> None:
        self.file, self.data, self.stamps = _plain_file(path, channels, dtype)
        rows = max(256, (4 << 20) // (channels * np.dtype(dtype).itemsize + 8))
        self.buffer = np.empty((rows, channels), dtype=dtype)
        self.stamp_buffer = np.empty(rows, dtype=np.int64)
        self.filled = 0
        self.flush_interval = flush_interval
        self.oldest: float | None = None

    def append(self, block: SignalBlock) -> None:
        count = block.length
        if self.filled + count > self.buffer.shape[0]:
            self.burst()
        self.buffer[self.filled:self.filled + count] = block.data
        self.stamp_buffer[self.filled:self.filled + count] = block.timestamps
        self.filled += count
        now = time.monotonic()
        if self.oldest is None:
            self.oldest = now
        elif now - self.oldest >= self.flush_interval:
            self.burst()

    def burst(self) -> None:
        if self.filled:
            rows = self.data.shape[0]
            self.data.resize(rows + self.filled, axis=0)
            self.data[rows:] = self.buffer[:self.filled]
            self.stamps.resize(rows + self.filled, axis=0)
            self.stamps[rows:] = self.stamp_buffer[:self.filled]
            self.filled = 0
        self.file.flush()
        self.oldest = None

    def close(self) -> None:
        self.burst()
        self.file.close()


def record_with_buffered_h5py(folder: Path, blocks: list[SignalBlock], fsync: bool = False) -> None:
    writer = BufferedPlain(folder / "plain.h5", blocks[0].data.shape[1], blocks[0].data.dtype)
    for block in blocks:
        writer.append(block)
    writer.close()
    if fsync:
        _fsync_tree(folder)


def _write_all(descriptor: int, pieces: list[memoryview], size: int) -> None:
    """One ``os.writev`` of the pieces (no gathering copy), finished with plain writes if it came up short."""
    done = os.writev(descriptor, pieces)
    if done < size:
        rest = memoryview(b"".join(pieces))[done:]
        while rest:
            rest = rest[os.write(descriptor, rest):]


def write_floor(folder: Path, blocks: list[SignalBlock], fsync: bool = False) -> None:
    """``dd bs=4M``: the same bytes (data then timestamps of each block), 4 MiB per ``os.writev``."""
    burst = 4 << 20
    descriptor = os.open(folder / "raw.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pending: list[memoryview] = []
        size = 0
        for block in blocks:
            for array in (block.data, block.timestamps):
                pending.append(memoryview(array).cast("B"))
                size += array.nbytes
            if size >= burst:
                _write_all(descriptor, pending, size)
                pending, size = [], 0
        if pending:
            _write_all(descriptor, pending, size)
        if fsync:
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def real_dd(folder: Path, size: int, fsync: bool = False) -> None:
    """GNU ``dd if=/dev/zero bs=4M`` of the same number of bytes (``conv=fsync`` for the fsync table)."""
    command = ["dd", "if=/dev/zero", f"of={folder / 'dd.bin'}", "bs=4M", f"count={size}", "iflag=count_bytes",
               "status=none"] + (["conv=fsync"] if fsync else [])
    subprocess.run(command, check=True)


def _fresh(base: Path, label: str) -> Path:
    folder = base / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def throughput(board: Board, base: Path, quick: bool) -> None:
    rounds = 2 if quick else 5
    for fsync in (False, True):
        where = "with `os.fsync` of every file at the end" if fsync else "to the page cache"
        print(f"\nWritten {where}; MB/s of signal data + timestamps, min over {rounds} rounds after one warm-up "
              f"(median in brackets), alternated; {harness.load()}\n")
        print("| stream | data | floor: `dd if=/dev/zero bs=4M` | floor: `os.writev` of the blocks, 4 MiB bursts | "
              "plain h5py, resize+write per block | plain h5py, buffered like the recorder | hwlink `SignalWriter` | "
              "**hwlink recorder** | recorder / dd | recorder / writev | recorder / best plain h5py | "
              "writer / dd | writer / best plain h5py |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, channels, rate, dtype, block in CASES:
            blocks = _blocks(channels, rate, dtype, block, 2.0 if quick else 10.0)
            megabytes = _payload_mb(blocks)
            size = int(megabytes * 1e6)
            timings = harness.alternate([
                ("real dd", lambda: real_dd(_fresh(base, "real-dd"), size, fsync)),
                ("dd", lambda: write_floor(_fresh(base, "dd"), blocks, fsync)),
                ("naive", lambda: record_with_h5py(_fresh(base, "naive"), blocks, fsync)),
                ("buffered", lambda: record_with_buffered_h5py(_fresh(base, "buffered"), blocks, fsync)),
                ("writer", lambda: record_with_signal_writer(_fresh(base, "writer"), blocks, fsync)),
                ("hwlink", lambda: record_with_hwlink(board, _fresh(base, "ours"), blocks, fsync)),
            ], rounds)

            def rate_of(label: str) -> str:
                row = timings[label]
                return f"{megabytes / row.min:.0f} ({megabytes / row.median:.0f})"

            ours, writer = timings["hwlink"], timings["writer"]
            best_plain = min(timings["naive"].min, timings["buffered"].min)
            best_plain_median = min(timings["naive"].median, timings["buffered"].median)
            print(f"| {name} | {megabytes:.0f} MB | {rate_of('real dd')} | {rate_of('dd')} | {rate_of('naive')} | "
                  f"{rate_of('buffered')} | {rate_of('writer')} | {rate_of('hwlink')} | "
                  f"{timings['real dd'].min / ours.min:.2f}x "
                  f"({timings['real dd'].median / ours.median:.2f}x) | {timings['dd'].min / ours.min:.2f}x "
                  f"({timings['dd'].median / ours.median:.2f}x) | {best_plain / ours.min:.2f}x "
                  f"({best_plain_median / ours.median:.2f}x) | {timings['real dd'].min / writer.min:.2f}x "
                  f"({timings['real dd'].median / writer.median:.2f}x) | {best_plain / writer.min:.2f}x "
                  f"({best_plain_median / writer.median:.2f}x) |")
            del blocks


def _paced(blocks: list[SignalBlock], rate: int, deliver: Callable[[SignalBlock], None]) -> threading.Thread:
    """Deliver blocks at the moment their last sample would have been acquired."""
    def run() -> None:
        start = time.monotonic()
        for index, block in enumerate(blocks):
            due = start + (index + 1) * block.length / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            deliver(block)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _cpu_share(work: Callable[[], None]) -> float:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def cpu_share(board: Board, base: Path, quick: bool) -> None:
    name, channels, rate, dtype, block = CASES[0]
    blocks = _blocks(channels, rate, dtype, block, 3.0 if quick else 10.0)

    def hwlink_realtime() -> None:
        recorder = _recorder(board, _fresh(base, "rt-ours"), "realtime")
        feeder = _paced(blocks, rate, recorder.inbox.put)
        while feeder.is_alive():
            drain_inbox(recorder.inbox, recorder, timeout=0.05)
        drain_inbox(recorder.inbox, recorder, timeout=None, limit=None)
        recorder.close()

    def plain_realtime() -> None:
        writer = BufferedPlain(_fresh(base, "rt-plain") / "plain.h5", channels, dtype, flush_interval=0.5)
        inbox: list[SignalBlock] = []
        lock = threading.Lock()

        def put(item: SignalBlock) -> None:
            with lock:
                inbox.append(item)

        feeder = _paced(blocks, rate, put)
        while feeder.is_alive() or inbox:
            with lock:
                pending, inbox[:] = list(inbox), []
            for item in pending:
                writer.append(item)
            if writer.oldest is not None and time.monotonic() - writer.oldest >= 0.5:
                writer.burst()  # the recorder's flusher thread does the same for a quiet stream
            time.sleep(0.05)
        writer.close()

    plain, ours = [], []
    for _ in range(1 if quick else 2):
        plain.append(_cpu_share(plain_realtime))
        ours.append(_cpu_share(hwlink_realtime))
    seconds = len(blocks) * block / rate
    print(f"\nReal-time {name} ({seconds:.0f} s, {rate * channels * np.dtype(dtype).itemsize / 1e6:.2f} MB/s), "
          "CPU time / wall time of the whole process:\n")
    print(f"({len(plain)} alternated runs each, min / max; {harness.load()})\n")
    print("| writer | CPU share of one core |")
    print("|---|---|")
    print(f"| plain h5py loop, buffered, flush every 0.5 s | {min(plain) * 100:.1f} / {max(plain) * 100:.1f} % |")
    print(f"| hwlink recorder (queue + writer, flush every 0.5 s) | {min(ours) * 100:.1f} / "
          f"{max(ours) * 100:.1f} % |")


def main(quick: bool) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-edl-"))
    try:
        with open_board("sim://") as board:
            throughput(board, base, quick)
            cpu_share(board, base, quick)
    finally:
        shutil.rmtree(base, ignore_errors=True)
