"""tsync read: the in-place path for 8-byte columns gives exactly what the general block decoder gives, for
damaged, truncated and lenient reads alike, and reads without a second copy of the data (issue 19)."""

from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from hwlink.sync import tsync
from hwlink.sync.tsync import TSyncDataType, TSyncError, TSyncWriter, read_tsync, read_tsync_header


def _general_read(path: Path, lenient: bool) -> tsync.TSyncFile:
    """The block decoder every column type goes through (the in-place reader bypassed)."""
    with open(path, "rb") as file:
        header = tsync._parse_header(file, path, path.stat().st_size, lenient)
    result = tsync._file_from_header(path, header)
    payload = np.fromfile(path, dtype=np.uint8)[header.header_bytes:]
    tsync._decode_blocks(result, header, payload, lenient)
    return result


def _outcome(read, path: Path, lenient: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = read(path, lenient=lenient) if read is read_tsync else read(path, lenient)
        except TSyncError as error:
            return type(error), str(error), getattr(error, "block", None)
    truncation = None if result.truncation is None else vars(result.truncation)
    return result.times.copy(), result.bad_blocks, truncation


@pytest.mark.parametrize("seed", range(12))
def test_in_place_read_equals_the_general_decoder(seed: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(seed)
    block = int(rng.choice([1, 3, 128, 2800]))
    count = int(rng.integers(0, 5 * block + 7))
    types = [(TSyncDataType.INT64, TSyncDataType.INT64), (TSyncDataType.UINT64, TSyncDataType.INT64),
             (TSyncDataType.INT64, TSyncDataType.UINT64)][seed % 3]
    path = tmp_path / "f.tsync"
    with TSyncWriter(path, block_size=block, data_types=types) as writer:
        writer.add_many(rng.integers(0, 2**62, count), rng.integers(0, 2**62, count))
    data = bytearray(path.read_bytes())
    header = read_tsync_header(path).header_bytes
    for _ in range(int(rng.integers(0, 4))):  # flip bytes in entries, terminators or digests
        if len(data) > header:
            data[int(rng.integers(header, len(data)))] ^= 0x40
    if rng.random() < 0.5 and len(data) > header:  # a crashed writer's cut
        data = data[:int(rng.integers(header, len(data) + 1))]
    path.write_bytes(bytes(data))
    for lenient in (False, True):
        ours, general = _outcome(read_tsync, path, lenient), _outcome(_general_read, path, lenient)
        assert type(ours[0]) is type(general[0])
        if isinstance(ours[0], np.ndarray):
            assert ours[0].dtype == np.int64 and np.array_equal(ours[0], general[0])
            assert ours[1:] == general[1:]
        else:
            assert ours == general


def test_in_place_read_allocates_the_output_once(tmp_path: Path) -> None:
    count = 1_000_000
    path = tmp_path / "big.tsync"
    with TSyncWriter(path, block_size=2800) as writer:
        writer.add_many(np.arange(count), np.arange(count) * 3)
    tracemalloc.start()
    try:
        result = read_tsync(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(result.time2, np.arange(count) * 3)
    assert peak <= 1.1 * result.times.nbytes, f"peak {peak / result.times.nbytes:.2f}x the data"
