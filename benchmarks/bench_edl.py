"""EDL recording of signal blocks: hwlink's recorder vs a plain h5py append loop, and real-time CPU share.

Throughput: the same SignalBlocks are written (a) through ``hwlink record``'s Recorder into an EDL collection
(HDF5 signal writer with its buffering and flushes) and (b) by a plain h5py loop (resize + slice assignment
per block, same chunking), alternating, best of three. Goal: recorder >= 0.8x the plain loop and >= 100 MB/s.

CPU share: a 64 ch x 30 kHz int16 stream is delivered in real time (blocks of 1000 samples from a feeder
thread, as a driver's acquisition thread would) through the recorder's queue and writer loop; process CPU time
over wall time, next to the same for the plain loop. Goal: < 10 % of a core.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from hwlink.cli.record_cmds import Recorder, drain_inbox
from hwlink.drivers import Board, open_board
from hwlink.edl import Collection
from hwlink.edl.signals import CHUNK_BYTES
from hwlink.lines import SignalBlock

CASES = (  # name, channels, rate (Hz), dtype, samples per block
    ("64 ch x 30 kHz int16", 64, 30_000, np.int16, 1_000),
    ("16 ch x 100 kHz float32", 16, 100_000, np.float32, 5_000),
)


def _blocks(channels: int, rate: int, dtype: type, block: int, seconds: float) -> list[SignalBlock]:
    rng = np.random.default_rng(0)
    count = int(rate * seconds) // block
    template = (rng.standard_normal((block, channels)) * 1000).astype(dtype)
    step_usec = 1e6 / rate
    return [SignalBlock(np.rint(np.arange(i * block, (i + 1) * block) * step_usec).astype(np.int64),
                        template, tuple(range(channels)), i * block) for i in range(count)]


def _payload_mb(blocks: list[SignalBlock]) -> float:
    return sum(block.data.nbytes + block.timestamps.nbytes for block in blocks) / 1e6


def _recorder(board: Board, folder: Path, name: str) -> Recorder:
    """The recorder of ``hwlink record`` on a new collection (the board only names the lines)."""
    return Recorder(board, Collection.create(folder, name), modes={})


def record_with_hwlink(board: Board, folder: Path, blocks: list[SignalBlock]) -> float:
    started = time.perf_counter()
    recorder = _recorder(board, folder, "hwlink")
    for block in blocks:
        recorder.add_signal_block(block)
    recorder.close()
    return time.perf_counter() - started


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


def record_with_h5py(folder: Path, blocks: list[SignalBlock]) -> float:
    started = time.perf_counter()
    file, data, stamps = _plain_file(folder / "plain.h5", blocks[0].data.shape[1], blocks[0].data.dtype)
    for block in blocks:
        _plain_append(data, stamps, block)
    file.close()
    return time.perf_counter() - started


def _fresh(base: Path, label: str) -> Path:
    folder = base / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def throughput(board: Board, base: Path, quick: bool) -> None:
    print("| stream | data | plain h5py loop | hwlink recorder | recorder / plain |")
    print("|---|---|---|---|---|")
    for name, channels, rate, dtype, block in CASES:
        blocks = _blocks(channels, rate, dtype, block, 2.0 if quick else 10.0)
        megabytes = _payload_mb(blocks)
        plain, ours = [], []
        for _ in range(3):
            plain.append(record_with_h5py(_fresh(base, "plain"), blocks))
            ours.append(record_with_hwlink(board, _fresh(base, "ours"), blocks))
        plain_rate, our_rate = megabytes / min(plain), megabytes / min(ours)
        print(f"| {name} | {megabytes:.0f} MB | {plain_rate:.0f} MB/s | {our_rate:.0f} MB/s | "
              f"{our_rate / plain_rate:.2f}x |")


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
        file, data, stamps = _plain_file(_fresh(base, "rt-plain") / "plain.h5", channels, dtype)
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
                _plain_append(data, stamps, item)
            file.flush()  # the same once-per-wake-up durability the recorder gives
            time.sleep(0.05)
        file.close()

    plain = _cpu_share(plain_realtime)
    ours = _cpu_share(hwlink_realtime)
    seconds = len(blocks) * block / rate
    print(f"\nReal-time {name} ({seconds:.0f} s, {rate * channels * np.dtype(dtype).itemsize / 1e6:.2f} MB/s), "
          "CPU time / wall time of the whole process:\n")
    print("| writer | CPU share of one core |")
    print("|---|---|")
    print(f"| plain h5py loop (flush every 50 ms) | {plain * 100:.1f} % |")
    print(f"| hwlink recorder (queue + writer, flush every 0.5 s) | {ours * 100:.1f} % |")


def main(quick: bool) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-edl-"))
    try:
        with open_board("sim://") as board:
            throughput(board, base, quick)
            cpu_share(board, base, quick)
    finally:
        shutil.rmtree(base, ignore_errors=True)
