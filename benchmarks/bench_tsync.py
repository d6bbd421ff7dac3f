"""tsync read and write speed: hwlink against edlio 0.3.4 (the reference reader) and the floors, in the same run.

Goals: read a 10 M-pair file >= 20x edlio, write >= 20 M pairs/s (issue 3); read within 1.3x of
``np.fromfile`` + XXH3 of every block (checksums verified), peak memory <= 1.1x the data (issue 19).

Method (issue 19): peers alternated round by round, first round a warm-up (dropped), min and median over rounds;
all reads from the page cache (the file was just written). Floors: ``np.fromfile`` of the whole file, the same
plus one XXH3-64 digest per block (what any verified read must do at least), a memcpy of the pairs. Peak memory
is what ``tracemalloc`` (numpy reports its buffers to it) saw allocated during one read, over the data's size.
edlio is timed once (it takes seconds per run).
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import xxhash

from benchmarks import _harness as harness
from hwlink.sync.tsync import (TERMINATOR_BYTES, TSyncDataType, TSyncFileMode, TSyncTimeUnit, TSyncWriter,
                               read_tsync, read_tsync_header)


def _fromfile_and_digests(path: Path, header_bytes: int, block_bytes: int, payload_bytes: int) -> None:
    """The floor of a verified read: the whole file into memory, then one XXH3-64 per block's entries."""
    data = np.fromfile(path, dtype=np.uint8)
    raw = memoryview(data)[header_bytes:]
    digest = xxhash.xxh3_64_intdigest
    for start in range(0, len(raw) - block_bytes + 1, block_bytes):
        digest(raw[start:start + payload_bytes])


def _peak_bytes(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def read_table(folder: Path, pairs: int, device: np.ndarray, master: np.ndarray, rounds: int,
               with_edlio: bool) -> None:
    path = folder / f"bench-{pairs}.tsync"
    with TSyncWriter(path, mode=TSyncFileMode.SYNCPOINTS, block_size=2800) as writer:
        writer.add_many(device, master)
    header = read_tsync_header(path)
    payload_bytes = header.block_size * 16
    both = np.stack([device, master], axis=1)
    assert np.array_equal(read_tsync(path).times, both)
    data_bytes = both.nbytes
    size_mb = path.stat().st_size / 1e6
    timings = harness.alternate([
        ("floor: `np.fromfile`", harness.fromfile(path)),
        ("floor: `np.fromfile` + XXH3 per block", lambda: _fromfile_and_digests(
            path, header.header_bytes, payload_bytes + TERMINATOR_BYTES, payload_bytes)),
        ("floor: memcpy of the pairs", harness.memcpy(both)),
        ("**hwlink `read_tsync` (all checksums verified)**", lambda: read_tsync(path)),
    ], rounds)
    del both
    peak = _peak_bytes(lambda: read_tsync(path))
    floor = timings["floor: `np.fromfile` + XXH3 per block"]
    print(f"\nRead: {pairs:,} pairs, int64/int64 SYNCPOINTS, block size 2800, {size_mb:.0f} MB, page cache; "
          f"{rounds} rounds after one warm-up, alternated; {harness.load()}\n")
    print("| operation | min / median (ms) | M pairs/s (min) | x fromfile+XXH3 (min / median) | peak memory / data |")
    print("|---|---:|---:|---:|---:|")
    for label, row in timings.items():
        memory = f"{peak / data_bytes:.2f}x" if label.startswith("**hwlink") else ""
        print(f"| {label} | {harness.min_median(row)} | {pairs / row.min / 1e6:.0f} | "
              f"{row.min / floor.min:.2f}x / {row.median / floor.median:.2f}x | {memory} |")
    if with_edlio:
        from edlio.dataio.tsyncfile import TSyncFile

        edlio_pairs = min(pairs, 1_000_000)  # edlio's per-block loop is linear in the pairs: scaled up
        small = folder / "edlio.tsync"
        with TSyncWriter(small, mode=TSyncFileMode.SYNCPOINTS, block_size=2800) as writer:
            writer.add_many(device[:edlio_pairs], master[:edlio_pairs])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TSyncFile(small)  # warm-up
            started = time.perf_counter()
            reference = TSyncFile(small)
            edlio_s = (time.perf_counter() - started) * pairs / edlio_pairs
        assert np.array_equal(reference.times, read_tsync(small).times)
        ours = timings["**hwlink `read_tsync` (all checksums verified)**"]
        print(f"\nedlio 0.3.4 `TSyncFile` (one run of {edlio_pairs:,} pairs after a warm-up, scaled to {pairs:,}): "
              f"{edlio_s:.2f} s -> hwlink is **{edlio_s / ours.min:.0f}x** faster (min; {edlio_s / ours.median:.0f}x "
              "median).")
    path.unlink()


def main(quick: bool) -> None:
    sizes = [1_000_000] if quick else [10_000_000, 100_000_000]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        for index, pairs in enumerate(sizes):
            device = np.cumsum(rng.integers(30, 36, pairs)).astype(np.int64)
            master = device + rng.integers(-500, 500, pairs)
            read_table(folder, pairs, device, master, 5 if pairs <= 20_000_000 else 3, with_edlio=index == 0)
            if index == 0:
                write_table(folder, pairs, device, master)
            del device, master


def write_table(folder: Path, pairs: int, device: np.ndarray, master: np.ndarray) -> None:
    path = folder / "write.tsync"
    raw = folder / "raw.bin"
    both = np.stack([device, master], axis=1)

    def write() -> None:
        with TSyncWriter(path, mode=TSyncFileMode.SYNCPOINTS, block_size=2800) as writer:
            writer.add_many(device, master)

    timings = harness.alternate([
        ("floor: `ndarray.tofile` of the pairs", lambda: both.tofile(raw)),
        ("**hwlink write (`add_many`)**", write),
    ], 5)
    per_call = 200_000
    started = time.perf_counter()
    with TSyncWriter(folder / "single.tsync") as writer:
        for a, b in zip(device[:per_call].tolist(), master[:per_call].tolist(), strict=True):
            writer.add(a, b)
    add_s = time.perf_counter() - started
    floor = timings["floor: `ndarray.tofile` of the pairs"]
    print(f"\nWrite: {pairs:,} pairs into the page cache, 5 rounds after one warm-up, alternated; {harness.load()}\n")
    print("| operation | min / median (ms) | M pairs/s (min) | x floor (min / median) |")
    print("|---|---:|---:|---:|")
    for label, row in timings.items():
        print(f"| {label} | {harness.min_median(row)} | {pairs / row.min / 1e6:.0f} | "
              f"{row.min / floor.min:.2f}x / {row.median / floor.median:.2f}x |")
    print(f"| hwlink write (`add`, per pair; one run of {per_call:,}) | {add_s * 1e3:.0f} | "
          f"{per_call / add_s / 1e6:.2f} | |")

    types_rows = []
    for first, second in [(TSyncDataType.UINT32, TSyncDataType.UINT64), (TSyncDataType.INT32, TSyncDataType.INT32),
                          (TSyncDataType.UINT16, TSyncDataType.INT64)]:
        typed = folder / f"{first.name}-{second.name}.tsync"
        with TSyncWriter(typed, data_types=(first, second), time_units=(TSyncTimeUnit.INDEX,
                                                                            TSyncTimeUnit.MICROSECONDS)) as writer:
            writer.add_many(device % 30_000, device % 2**31)
        types_rows.append((f"{first.name}/{second.name}", typed))
    timings = harness.alternate([(label, lambda p=typed: read_tsync(p)) for label, typed in types_rows]
                                + [("floor: `np.fromfile`", harness.fromfile(types_rows[0][1]))], 5)
    print("\nOther column types (read, widened to int64; 5 rounds after one warm-up, alternated):\n")
    print("| columns | min / median (ms) | M pairs/s (min) |")
    print("|---|---:|---:|")
    for label, row in timings.items():
        print(f"| {label} | {harness.min_median(row)} | {pairs / row.min / 1e6:.0f} |")
