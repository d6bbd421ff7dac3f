"""tsync format: interop with Syntalos' samples and edlio 0.3.4, byte layout, strictness, corruption, truncation."""

from __future__ import annotations

import os
import shutil
import struct
import time
import warnings
from itertools import product
from pathlib import Path

import numpy as np
import pytest
import xxhash
from edlio.dataio.tsyncfile import LegacyTSyncFile, TSyncFile

from hwlink.errors import HwlinkError
from hwlink.sync.tsync import (
    TSyncChecksumError,
    TSyncCorruptError,
    TSyncDataType,
    TSyncFileMode,
    TSyncFormatError,
    TSyncTimeUnit,
    TSyncTruncationWarning,
    TSyncValueError,
    TSyncWriteError,
    TSyncWriter,
    read_tsync,
    read_tsync_header,
)
from tests.conftest import SHARED

BLINK = SHARED / "data" / "edl" / "blink1"
LEGACY_SAMPLES = sorted(BLINK.rglob("*.tsync"))
UUID_TEXT = "a12975f1-84b7-4350-8683-7a5fe9ed968f"


@pytest.fixture(scope="module")
def syntalos_3x(syntalos_tsync_module: Path) -> Path:
    return syntalos_tsync_module


def edlio_read(path: Path) -> TSyncFile | LegacyTSyncFile:
    return LegacyTSyncFile(path) if LegacyTSyncFile.is_legacy(path) else TSyncFile(path)


def assert_same_as_edlio(path: Path) -> None:
    ours, theirs = read_tsync(path), edlio_read(path)
    assert ours.intact
    assert ours.times.dtype == np.int64 and ours.times.shape == theirs.times.shape
    assert np.array_equal(ours.times, theirs.times)
    assert ours.time_names == theirs.time_labels
    assert ours.mode == theirs.sync_mode
    assert ours.module_name == theirs.generator_name
    assert ours.collection_id == theirs.collection_id
    assert ours.user_data == theirs.custom
    assert ours.created == theirs.time_created
    assert ours.tolerance_us == (theirs.tolerance.magnitude or None)


def test_legacy_samples_are_there() -> None:
    assert len(LEGACY_SAMPLES) == 9


@pytest.mark.parametrize("path", LEGACY_SAMPLES, ids=lambda p: str(p.relative_to(BLINK)))
def test_legacy_samples_read_like_edlio(path: Path) -> None:
    assert_same_as_edlio(path)
    assert read_tsync(path).variant == "1.2-legacy-2.x"


def test_syntalos_3x_sample_reads_like_edlio(syntalos_3x: Path) -> None:
    assert_same_as_edlio(syntalos_3x)
    sample = read_tsync(syntalos_3x)
    assert (sample.variant, sample.block_size, len(sample)) == ("1.2", 1500, 3125)
    assert sample.time_units == (TSyncTimeUnit.INDEX, TSyncTimeUnit.MICROSECONDS)
    assert sample.data_types == (TSyncDataType.UINT32, TSyncDataType.UINT64)
    assert tuple(sample.times[0]) == (0, 46911)


def test_syntalos_3x_sample_rewrites_byte_identically(syntalos_3x: Path, tmp_path: Path) -> None:
    sample = read_tsync(syntalos_3x)
    out = tmp_path / "copy.tsync"
    with TSyncWriter(out, mode=sample.mode, time_names=sample.time_names, time_units=sample.time_units,
                     data_types=sample.data_types, module_name=sample.module_name,
                     collection_id=sample.collection_id, user_data=sample.user_data,
                     block_size=sample.block_size, creation_time=sample.creation_time) as writer:
        writer.add_many(sample.time1, sample.time2)
    assert out.read_bytes() == syntalos_3x.read_bytes()


def test_syncpoint_header_bytes_match_spec_example(tmp_path: Path) -> None:
    """The §7.2 example: the synchronizers' header layout, field by field."""
    path = tmp_path / "sp.tsync"
    TSyncWriter(path, module_name="UnittestDummyModule", collection_id=UUID_TEXT, tolerance_us=1500,
                block_size=128, creation_time=0).close()
    data = path.read_bytes()
    assert data[:0x14].hex(" ") == "8a 54 53 4e 43 e2 8f b2 01 00 02 00 00 00 00 00 00 00 00 00"
    assert data[0x14:0x2B] == b"\x13\x00\x00\x00UnittestDummyModule"
    assert data[0x2B:0x53] == b"\x24\x00\x00\x00" + UUID_TEXT.encode()
    assert data[0x53:0x6C] == b"\x15\x00\x00\x00" + b'{"tolerance_us":1500}'
    assert data[0x6C:0x85] == bytes.fromhex("0100 80000000 0b000000") + b"device-time" + bytes.fromhex("0200 0400")
    assert len(data) % 8 == 0 and data[-16:-8] == bytes.fromhex("e298910000000000")
    assert struct.unpack("<Q", data[-8:])[0] == xxhash.xxh3_64_intdigest(data[8:-16])


def sample_values(data_type: TSyncDataType, count: int, *, edlio_safe: bool) -> np.ndarray:
    """Values that span the type, including both extremes (UINT64 capped below 2**63 for edlio)."""
    low, high = data_type.value_range
    if edlio_safe:
        high = min(high, 2**63 - 1)
    values = np.linspace(low, high, count, dtype=np.float64).astype(object)
    values[0], values[-1] = low, high
    return np.array([int(v) for v in values], dtype=data_type.numpy_dtype)


UNIT_PAIRS = list(product(TSyncTimeUnit, repeat=2))
TYPES = [t for t in TSyncDataType if t is not TSyncDataType.INVALID]


@pytest.mark.parametrize(("type1", "type2"), list(product(TYPES, repeat=2)), ids=lambda t: t.name)
def test_every_type_pair_round_trips_through_edlio(type1: TSyncDataType, type2: TSyncDataType,
                                                   tmp_path: Path) -> None:
    index = TYPES.index(type1) * len(TYPES) + TYPES.index(type2)
    units = UNIT_PAIRS[index % len(UNIT_PAIRS)]
    mode = TSyncFileMode(index % 2)
    first, second = sample_values(type1, 300, edlio_safe=True), sample_values(type2, 300, edlio_safe=True)
    path = tmp_path / "pair.tsync"
    with TSyncWriter(path, mode=mode, time_units=units, data_types=(type1, type2), block_size=128,
                     time_names=("a-time", "b-time"), user_data={"note": "ä \"q\"", "n": -3}) as writer:
        writer.add_many(first[:150], second[:150])
        for a, b in zip(first[150:], second[150:], strict=True):
            writer.add(int(a), int(b))
    ours = read_tsync(path)
    assert (ours.mode, ours.time_units, ours.data_types) == (mode, units, (type1, type2))
    assert np.array_equal(ours.time1, first.astype(np.int64))
    assert np.array_equal(ours.time2, second.astype(np.int64))
    assert ours.user_data == {"note": "ä \"q\"", "n": -3}
    assert_same_as_edlio(path)


def test_all_units_round_trip(tmp_path: Path) -> None:
    for units in UNIT_PAIRS:
        path = tmp_path / f"u{units[0]}{units[1]}.tsync"
        with TSyncWriter(path, time_units=units) as writer:
            writer.add(1, 2)
        assert read_tsync(path).time_units == units


def test_uint64_above_int64_wraps_like_the_reference_readers(tmp_path: Path) -> None:
    path = tmp_path / "big.tsync"
    with TSyncWriter(path, data_types=(TSyncDataType.UINT64, TSyncDataType.UINT64)) as writer:
        writer.add(2**64 - 1, 2**63)
        writer.add_many(np.array([2**63 + 5], dtype=np.uint64), [0])
    assert read_tsync(path).times.tolist() == [[-1, -(2**63)], [-(2**63) + 5, 0]]


@pytest.mark.parametrize("count", [0, 1, 127, 128, 129, 256, 300])
def test_block_layout_and_size_formula(count: int, tmp_path: Path) -> None:
    path = tmp_path / "n.tsync"
    with TSyncWriter(path, block_size=128) as writer:
        writer.add_many(np.arange(count), np.arange(count) * 3)
    header = read_tsync_header(path).header_bytes
    full, rest = divmod(count, 128)
    expected = full * (128 * 16 + 16) + (rest * 16 + 16 if rest else 0)
    assert path.stat().st_size - header == expected
    assert np.array_equal(edlio_read(path).times, np.stack([np.arange(count), np.arange(count) * 3], axis=1))
    assert len(read_tsync(path)) == count


def test_add_add_many_and_flush_give_the_same_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.integers(-2**40, 2**40, 1000), rng.integers(0, 2**50, 1000)
    reference, mixed = tmp_path / "ref.tsync", tmp_path / "mixed.tsync"
    with TSyncWriter(reference, block_size=100, creation_time=7) as writer:
        writer.add_many(a, b)
    with TSyncWriter(mixed, block_size=100, creation_time=7) as writer:
        for chunk in np.array_split(np.arange(1000), [3, 50, 99, 100, 101, 450, 451, 999]):
            if chunk.size == 1:
                writer.add(int(a[chunk[0]]), int(b[chunk[0]]))
            else:
                writer.add_many(a[chunk], b[chunk])
            writer.flush()
        assert writer.count == 1000
    assert mixed.read_bytes() == reference.read_bytes()


def test_full_blocks_reach_the_disk_as_they_complete(tmp_path: Path) -> None:
    path = tmp_path / "live.tsync"
    writer = TSyncWriter(path, block_size=128, flush_interval=3600)
    header_size = path.stat().st_size
    for i in range(130):
        writer.add(i, i)
    assert path.stat().st_size == header_size + 128 * 16 + 16
    writer.flush()
    assert path.stat().st_size == header_size + 128 * 16 + 16 + 2 * 16 + 16  # the short block, terminated
    writer.close()
    writer.close()
    assert len(read_tsync(path)) == 130


def test_out_of_range_values_raise_and_write_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.tsync"
    with TSyncWriter(path, data_types=(TSyncDataType.INT16, TSyncDataType.UINT32)) as writer:
        writer.add(-32768, 2**32 - 1)
        for a, b in [(32768, 0), (0, -1), (0, 2**32), (1.5, 0), ("7", 0), (True, 0)]:
            with pytest.raises(TSyncValueError):
                writer.add(a, b)
        with pytest.raises(TSyncValueError, match="40000"):
            writer.add_many([1, 40000], [1, 1])
        with pytest.raises(TSyncValueError):
            writer.add_many([1], [-5])
        with pytest.raises(TSyncValueError):
            writer.add_many([1.25], [1])
        with pytest.raises(TSyncValueError):
            writer.add_many([1, 2], [1])
        writer.add_many(np.array([5.0]), np.array([2**31], dtype=np.uint64))
    assert read_tsync(path).times.tolist() == [[-32768, 2**32 - 1], [5, 2**31]]


def test_writer_rejects_bad_configuration(tmp_path: Path) -> None:
    for kwargs in [{"block_size": 0}, {"block_size": -5}, {"user_data": {"x": 1.5}},
                   {"user_data": {"x": True}}, {"collection_id": "not-a-uuid"},
                   {"data_types": (TSyncDataType.INVALID, TSyncDataType.INT64)}]:
        with pytest.raises(HwlinkError):
            TSyncWriter(tmp_path / "bad.tsync", **kwargs)
    writer = TSyncWriter(tmp_path / "closed.tsync")
    writer.close()
    with pytest.raises(HwlinkError, match="closed"):
        writer.add(1, 2)


def test_context_manager_terminates_the_last_block_when_the_body_raises(tmp_path: Path) -> None:
    path = tmp_path / "crashy.tsync"
    with pytest.raises(RuntimeError), TSyncWriter(path, block_size=128) as writer:
        writer.add_many(range(10), range(10))
        raise RuntimeError("experiment failed")
    assert read_tsync(path).intact and len(read_tsync(path)) == 10


def written(tmp_path: Path, count: int = 1000, block_size: int = 128, name: str = "w.tsync") -> Path:
    path = tmp_path / name
    with TSyncWriter(path, block_size=block_size) as writer:
        writer.add_many(np.arange(count), np.arange(count) * 2)
    return path


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_checksum_mismatch_names_the_block_and_lenient_skips_it(tmp_path: Path) -> None:
    path = written(tmp_path)
    header = read_tsync_header(path).header_bytes
    flip(path, header + 2 * (128 * 16 + 16) + 100)
    with pytest.raises(TSyncChecksumError, match="block 2 checksum") as caught:
        read_tsync(path)
    assert caught.value.block == 2 and isinstance(caught.value, HwlinkError)
    with pytest.raises(ValueError, match="checksum"):
        edlio_read(path)
    salvaged = read_tsync(path, lenient=True)
    assert salvaged.bad_blocks == [2] and not salvaged.intact
    expected = np.delete(np.arange(1000), np.arange(256, 384))
    assert np.array_equal(salvaged.time1, expected)


def test_damaged_terminator_and_last_block_digest(tmp_path: Path) -> None:
    path = written(tmp_path)
    header = read_tsync_header(path).header_bytes
    flip(path, header + 128 * 16 + 1)  # terminator of block 0
    with pytest.raises(TSyncCorruptError, match="block 0.*terminator") as caught:
        read_tsync(path)
    assert caught.value.block == 0
    path = written(tmp_path, name="last.tsync")
    flip(path, path.stat().st_size - 3)  # digest of the short last block (index 7)
    with pytest.raises(TSyncChecksumError, match="block 7"):
        read_tsync(path)
    assert read_tsync(path, lenient=True).bad_blocks == [7]


@pytest.mark.parametrize("cut", [1, 15, 16, 17, 100, 1000, 104 * 16 + 16 + 5])
def test_truncated_file_returns_complete_blocks_and_reports_the_loss(cut: int, tmp_path: Path) -> None:
    path = written(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    with pytest.warns(TSyncTruncationWarning, match="truncated"):
        result = read_tsync(path)
    full_blocks, tail = divmod(len(data) - cut - result.header_bytes, 128 * 16 + 16)
    assert result.truncation is not None and result.truncation.tail_bytes == tail > 0
    assert len(result) == result.truncation.complete_entries == full_blocks * 128
    assert result.truncation.lost_entries == tail // 16
    assert np.array_equal(result.time1, np.arange(len(result)))
    with pytest.warns(TSyncTruncationWarning):
        salvaged = read_tsync(path, lenient=True)
    assert salvaged.truncation.salvaged_entries == tail // 16
    assert np.array_equal(salvaged.time1, np.arange(len(result) + tail // 16))


def test_a_killed_writer_leaves_a_complete_file(tmp_path: Path) -> None:
    """What is on disk at any moment (here: right after a flush) is a whole file every reader accepts."""
    path = tmp_path / "crash.tsync"
    writer = TSyncWriter(path, block_size=128)
    writer.add_many(np.arange(300), np.arange(300))
    writer.flush()
    snapshot = tmp_path / "at-crash.tsync"
    shutil.copy(path, snapshot)  # what is on disk if the process dies now
    writer.add(300, 300)
    writer.close()
    strict = read_tsync(snapshot)
    assert strict.intact and np.array_equal(strict.time1, np.arange(300))
    assert np.array_equal(edlio_read(snapshot).times[:, 0], np.arange(300))
    assert len(read_tsync(path)) == 301


def test_entries_are_published_within_the_flush_interval_without_a_flush(tmp_path: Path) -> None:
    path = tmp_path / "timed.tsync"
    writer = TSyncWriter(path, block_size=128, flush_interval=0.1)
    writer.add(1, 2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(read_tsync(path)) == 0:
        time.sleep(0.02)
    assert np.array_equal(read_tsync(path).times, [[1, 2]])
    assert np.array_equal(edlio_read(path).times, [[1, 2]])
    writer.close()


def test_a_failed_write_keeps_the_published_file(tmp_path: Path) -> None:
    path = tmp_path / "x.tsync"
    writer = TSyncWriter(path, block_size=4, flush_interval=3600)
    writer.add_many(np.arange(6), np.arange(6))  # a block completes: all 6 entries are published
    blocker = tmp_path / f".x.tsync.{os.getpid()}.tmp"
    blocker.mkdir()  # the next publication cannot create its file (even as root)
    writer.add(6, 6)
    with pytest.raises(TSyncWriteError, match="keeps the 1 block"):
        writer.flush()
    with pytest.raises(TSyncWriteError):
        writer.add(7, 7)
    with pytest.raises(TSyncWriteError):
        writer.close()
    blocker.rmdir()
    assert np.array_equal(read_tsync(path).time1, np.arange(6))


def legacy_file(path: Path, *, hash_lengths: bool, entries: np.ndarray, block_size: int = 4) -> None:
    """A legacy (old magic) file built from the spec alone, with either header-hash variant."""
    strings = [b"Legacy Module", UUID_TEXT.encode(), b'{"tolerance_us":"1500"}']
    hashed, unhashed_positions = bytearray(struct.pack("<HHq", 1, 2, 1_600_000_000)), []
    for raw in strings:
        unhashed_positions.append(len(hashed))
        hashed += struct.pack("<I", len(raw)) + raw
    hashed += struct.pack("<Hi", 1, block_size)
    for name in (b"device-time", b"master-time"):
        unhashed_positions.append(len(hashed))
        hashed += struct.pack("<I", len(name)) + name + struct.pack("<HH", 2, 4)
    hashed += bytes(-(8 + len(hashed)) & 7)
    hash_input = bytes(hashed)
    if not hash_lengths:  # Syntalos 2.x hashed the string bytes but not their length prefixes
        pieces, last = [], 0
        for position in unhashed_positions:
            pieces.append(bytes(hashed[last:position]))
            last = position + 4
        hash_input = b"".join(pieces) + bytes(hashed[last:])
    out = bytearray(struct.pack("<Q", 0xF223434E5953548A) + hashed)
    out += struct.pack("<QQ", 0x1126000000000000, xxhash.xxh3_64_intdigest(hash_input))
    for start in range(0, len(entries), block_size):
        block = entries[start:start + block_size].astype("<i8").tobytes()
        out += block + struct.pack("<QQ", 0x1126000000000000, xxhash.xxh3_64_intdigest(block))
    path.write_bytes(bytes(out))


@pytest.mark.parametrize(("hash_lengths", "variant"), [(True, "1.2-legacy-3.0"), (False, "1.2-legacy-2.x")])
def test_both_legacy_hash_variants(hash_lengths: bool, variant: str, tmp_path: Path) -> None:
    path = tmp_path / "legacy.tsync"
    entries = np.arange(22).reshape(11, 2) * 1000 - 5000
    legacy_file(path, hash_lengths=hash_lengths, entries=entries)
    result = read_tsync(path)
    assert result.variant == variant and result.tolerance_us == 1500
    assert np.array_equal(result.times, entries)
    assert_same_as_edlio(path)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: b"\x00" * 8 + d[8:], "not a tsync file"),
    (lambda d: d[:8] + struct.pack("<HH", 1, 3) + d[12:], "version 1.3"),
    (lambda d: d[:8] + struct.pack("<HH", 1, 1) + d[12:], "version 1.1"),
    (lambda d: d[:14], "header truncated"),
    (lambda d: d[:30], "length 36 exceeds the file"),
    (lambda d: d[:12] + b"X" + d[13:], "header checksum"),
    (lambda d: d[:5], "not a tsync file"),
])
def test_bad_headers_raise_format_errors(mutate, message: str, tmp_path: Path) -> None:
    path = written(tmp_path, count=5)
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(TSyncFormatError, match=message) as caught:
        read_tsync(path)
    assert str(path) in str(caught.value) and isinstance(caught.value, HwlinkError)


def test_no_silent_loss_without_warnings_filter(tmp_path: Path) -> None:
    """The truncation report is on the result even when warnings are silenced."""
    path = written(tmp_path)
    path.write_bytes(path.read_bytes()[:-40])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert read_tsync(path).truncation.lost_entries > 0
