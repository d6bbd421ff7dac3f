"""tsync read and write speed: hwlink against edlio 0.3.4 (the reference reader) in the same run.

Goals (issue 3): read a 10 M-pair file >= 20x edlio; write >= 20 M pairs/s.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from hwlink.sync.tsync import TSyncDataType, TSyncFileMode, TSyncTimeUnit, TSyncWriter, read_tsync


def _best(function, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main(quick: bool) -> None:
    pairs = 1_000_000 if quick else 10_000_000
    edlio_pairs = 200_000 if quick else pairs
    rng = np.random.default_rng(0)
    device = np.cumsum(rng.integers(30, 36, pairs)).astype(np.int64)
    master = device + rng.integers(-500, 500, pairs)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.tsync"

        def write() -> None:
            with TSyncWriter(path, mode=TSyncFileMode.SYNCPOINTS, block_size=2800) as writer:
                writer.add_many(device, master)

        write_s = _best(write, 3)
        raw = Path(folder) / "raw.bin"
        both = np.stack([device, master], axis=1)
        plain_s = _best(lambda: both.tofile(raw), 3)
        per_call = 200_000
        started = time.perf_counter()
        with TSyncWriter(Path(folder) / "single.tsync") as writer:
            for a, b in zip(device[:per_call].tolist(), master[:per_call].tolist(), strict=True):
                writer.add(a, b)
        add_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6

        read_s = _best(lambda: read_tsync(path), 3)
        assert np.array_equal(read_tsync(path).time2, master)

        from edlio.dataio.tsyncfile import TSyncFile

        edlio_path = path
        if edlio_pairs != pairs:
            edlio_path = Path(folder) / "edlio.tsync"
            with TSyncWriter(edlio_path, block_size=2800) as writer:
                writer.add_many(device[:edlio_pairs], master[:edlio_pairs])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            reference = TSyncFile(edlio_path)
            edlio_s = (time.perf_counter() - started) * pairs / edlio_pairs
        assert np.array_equal(reference.times, read_tsync(edlio_path).times)

        types_rows = []
        for first, second in [(TSyncDataType.UINT32, TSyncDataType.UINT64), (TSyncDataType.INT32, TSyncDataType.INT32),
                              (TSyncDataType.UINT16, TSyncDataType.INT64)]:
            typed = Path(folder) / f"{first.name}-{second.name}.tsync"
            low = device % 30_000
            with TSyncWriter(typed, data_types=(first, second), time_units=(TSyncTimeUnit.INDEX,
                                                                                TSyncTimeUnit.MICROSECONDS)) as writer:
                writer.add_many(low, device % 2**31)
            types_rows.append((f"{first.name}/{second.name}", _best(lambda p=typed: read_tsync(p), 3)))

    print(f"File: {pairs:,} pairs, int64/int64 SYNCPOINTS, block size 2800, {size_mb:.0f} MB.\n")
    print("| operation | time | rate | vs |")
    print("|---|---:|---:|---|")
    print(f"| hwlink write (`add_many`) | {write_s * 1e3:.0f} ms | {pairs / write_s / 1e6:.1f} M pairs/s | "
          f"plain `ndarray.tofile` of the same pairs: {plain_s * 1e3:.0f} ms ({write_s / plain_s:.2f}x) |")
    print(f"| hwlink write (`add`, per pair) | {add_s * 1e3:.0f} ms / {per_call:,} | "
          f"{per_call / add_s / 1e6:.2f} M pairs/s | |")
    scaled = f" (scaled from {edlio_pairs:,} pairs)" if edlio_pairs != pairs else ""
    print(f"| hwlink read (all checksums verified) | {read_s * 1e3:.0f} ms | {pairs / read_s / 1e6:.1f} M pairs/s | "
          f"edlio 0.3.4: {edlio_s:.1f} s{scaled} -> **{edlio_s / read_s:.0f}x** |")
    for label, seconds in types_rows:
        print(f"| hwlink read {label} | {seconds * 1e3:.0f} ms | {pairs / seconds / 1e6:.1f} M pairs/s | |")
