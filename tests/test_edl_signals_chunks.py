"""HDF5 signal writer: whole chunks written directly (issue 19) keep every row, across bursts that end inside a
chunk, explicit flushes, blocks larger than the buffer, and are what another process reads after each flush."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from hwlink.edl import LineReadingWriter, SignalWriter, signals

READ = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    np.save(sys.stdout.buffer, f["data"][()])
"""


def _seen_by_another_process(path: Path) -> np.ndarray:
    env = dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE")
    out = subprocess.run([sys.executable, "-c", READ, str(path)], capture_output=True, env=env, check=True,
                         timeout=60)
    return np.load(io.BytesIO(out.stdout))


@pytest.mark.parametrize("seed", range(8))
def test_rows_survive_any_burst_and_block_pattern(seed: int, tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(signals, "_BUFFER_BYTES", int(rng.choice([1 << 12, 1 << 14, 1 << 16])))
    channels = int(rng.integers(1, 9))
    dtype = np.dtype(rng.choice(["int16", "float32", "uint8", ">i4", "bool"]))
    chunk_rows = int(rng.choice([1, 7, 64, 300]))
    path = tmp_path / "s.h5"
    expected, stamps = [], []
    with SignalWriter(path, [f"c{i}" for i in range(channels)], dtype, chunk_rows=chunk_rows,
                      flush_interval=1e9) as writer:
        row = 0
        for index in range(int(rng.integers(1, 40))):
            count = int(rng.choice([0, 1, 5, 63, 64, 65, 700, 3000]))
            data = rng.integers(0, 100, size=(count, channels)).astype(dtype)
            writer.append(np.arange(row, row + count, dtype=np.int64), data)
            expected.append(data)
            stamps.append(np.arange(row, row + count))
            row += count
            if rng.random() < 0.3:  # a flush in the middle of a chunk, as the flush interval gives
                writer.flush()
                if index % 5 == 0:
                    assert np.array_equal(_seen_by_another_process(path), np.concatenate(expected))
    with h5py.File(path, "r") as file:
        assert np.array_equal(file["data"][()], np.concatenate(expected).astype(dtype))
        assert np.array_equal(file["timestamps"][()], np.concatenate(stamps))
        assert file["data"].chunks == (chunk_rows, channels)


def test_compressed_signal_and_line_readings_still_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 1000, size=(50_000, 4)).astype(np.int32)
    with SignalWriter(tmp_path / "z.h5", list("abcd"), np.int32, compression="gzip", chunk_rows=999) as writer:
        for start in range(0, data.shape[0], 777):
            writer.append(np.arange(start, min(start + 777, data.shape[0])), data[start:start + 777])
            if start % 7:
                writer.flush()
    with h5py.File(tmp_path / "z.h5", "r") as file:
        assert np.array_equal(file["data"][()], data)
    with LineReadingWriter(tmp_path / "r.h5", {0: "x", 1: "y"}, chunk_rows=5) as writer:
        for i in range(23):
            writer.append_arrays(np.arange(i * 3, i * 3 + 3), np.array([0, 1, 0]), np.array([i, i, i]))
            if i % 4 == 0:
                writer.flush()
    with h5py.File(tmp_path / "r.h5", "r") as file:
        assert np.array_equal(file["timestamps"][()], np.arange(69))
        assert np.array_equal(file["data"][:, 0], np.repeat(np.arange(23), 3))
