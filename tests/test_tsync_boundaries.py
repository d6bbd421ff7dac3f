"""tsync at its limits: every column type at its extremes and one past, blocks of exactly B entries, a tail of
exactly one entry, header fields at their edges, and the lenient reader's fallbacks."""

from __future__ import annotations

import re
import struct
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

from hwlink.errors import ConfigError
from hwlink.sync import tsync
from hwlink.sync.tsync import (
    TERMINATOR_BYTES,
    TSyncDataType,
    TSyncError,
    TSyncFileMode,
    TSyncFormatError,
    TSyncTimeUnit,
    TSyncTruncation,
    TSyncTruncationWarning,
    TSyncValueError,
    TSyncWriter,
    read_tsync,
    read_tsync_header,
)

TYPES = [t for t in TSyncDataType if t is not TSyncDataType.INVALID]


def test_units_and_types_describe_themselves() -> None:
    assert [u.usec_per_unit for u in TSyncTimeUnit] == [None, 1e-3, 1.0, 1e3, 1e6]
    assert [u.label for u in TSyncTimeUnit] == ["index", "ns", "µs", "ms", "s"]
    assert {t.name: t.value_range for t in TYPES} == {
        "INT16": (-(2**15), 2**15 - 1), "INT32": (-(2**31), 2**31 - 1), "INT64": (-(2**63), 2**63 - 1),
        "UINT16": (0, 2**16 - 1), "UINT32": (0, 2**32 - 1), "UINT64": (0, 2**64 - 1)}
    assert [t.numpy_dtype.str for t in TYPES] == ["<i2", "<i4", "<i8", "<u2", "<u4", "<u8"]
    with pytest.raises(ConfigError, match="INVALID has no storage type"):
        TSyncDataType.INVALID.numpy_dtype


@pytest.mark.parametrize("data_type", TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("how", ["add", "add_many", "add_many_objects"])
def test_each_type_takes_its_extremes_and_refuses_one_past(data_type: TSyncDataType, how: str,
                                                           tmp_path: Path) -> None:
    low, high = data_type.value_range
    path = tmp_path / "x.tsync"
    with TSyncWriter(path, data_types=(data_type, TSyncDataType.INT64), block_size=4) as writer:
        if how == "add":
            writer.add(low, 0)
            writer.add(high, 1)
        elif how == "add_many":
            writer.add_many(np.array([low, high], dtype=data_type.numpy_dtype), np.array([0, 1]))
        else:
            writer.add_many(np.array([low, high], dtype=object), np.array([0, 1], dtype=object))
        for bad in (low - 1, high + 1):
            with pytest.raises(TSyncValueError, match=rf"device-time: value {bad} does not fit {data_type.name} "
                                                      rf"\[{low}, {high}\]"):
                if how == "add":
                    writer.add(bad, 2)
                else:
                    writer.add_many(np.array([0, bad], dtype=object), np.array([2, 3]))
        assert writer.count == 2
    times = read_tsync(path).times
    expected_high = high if high < 2**63 else high - 2**64  # UINT64 values past INT64 wrap like the readers
    assert times.tolist() == [[low, 0], [expected_high, 1]]


@pytest.mark.parametrize("bad, message", [
    (1.5, "is not a whole number"), (True, "expected an integer"), (np.bool_(False), "expected an integer"),
    ("3", "expected an integer"), (None, "expected an integer"),
])
def test_add_refuses_non_integers_by_name(bad, message: str, tmp_path: Path) -> None:
    with TSyncWriter(tmp_path / "x.tsync", time_names=("frame", "clock")) as writer:
        with pytest.raises(TSyncValueError, match=f"^clock: .*{message}"):
            writer.add(1, bad)
        with pytest.raises(TSyncValueError, match=f"^frame: .*{message}"):
            writer.add(bad, 1)
        writer.add(2.0, np.int16(-3))  # whole floats and numpy integers are fine
        writer.add(np.uint64(2**63 - 1), -(2**63))
    assert read_tsync(tmp_path / "x.tsync").times.tolist() == [[2, -3], [2**63 - 1, -(2**63)]]


def test_add_many_checks_floats_kinds_and_lengths(tmp_path: Path) -> None:
    with TSyncWriter(tmp_path / "x.tsync", data_types=(TSyncDataType.INT16, TSyncDataType.INT16)) as writer:
        writer.add_many(np.array([1.0, -32768.0]), [2, 32767])
        for bad in ([1.5], [np.nan], [np.inf], [-np.inf]):
            with pytest.raises(TSyncValueError, match="^device-time: values must be whole numbers$"):
                writer.add_many(np.array(bad), [1])
        with pytest.raises(TSyncValueError, match="^device-time: expected integers, got <U1$"):
            writer.add_many(np.array(["a"]), [1])
        with pytest.raises(TSyncValueError, match="value 32768 does not fit INT16"):
            writer.add_many(np.array([32768.0]), [1])
        with pytest.raises(TSyncValueError, match=r"add_many needs arrays of equal length, got 2 and 1$"):
            writer.add_many([1, 2], [1])
        writer.add_many([], [])
        writer.add_many(np.empty(0), np.empty(0))
        assert writer.count == 2
    assert read_tsync(tmp_path / "x.tsync").times.tolist() == [[1, 2], [-32768, 32767]]


@pytest.mark.parametrize("block_size", [0, -1, 2**31, True, 2.0, "8"])
def test_block_size_limits(block_size, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="block size must be an integer in 1..2147483647"):
        TSyncWriter(tmp_path / "x.tsync", block_size=block_size)


def entry_bytes(types=(TSyncDataType.INT64, TSyncDataType.INT64)) -> int:
    return sum(t.numpy_dtype.itemsize for t in types)


@pytest.mark.parametrize("block_size", [1, 2, 5])
@pytest.mark.parametrize("count", [0, 1, 4, 5, 6, 10, 11])
def test_file_size_at_block_boundaries(block_size: int, count: int, tmp_path: Path) -> None:
    path = tmp_path / "x.tsync"
    for way in ("add", "add_many"):
        with TSyncWriter(path, block_size=block_size, creation_time=0) as writer:
            header = path.stat().st_size
            if way == "add":
                for i in range(count):
                    writer.add(i, -i)
            else:
                writer.add_many(np.arange(count), -np.arange(count))
        blocks = -(-count // block_size)
        assert path.stat().st_size == header + count * 16 + blocks * TERMINATOR_BYTES, way
        read = read_tsync(path)
        assert read.times.tolist() == [[i, -i] for i in range(count)] and read.intact and len(read) == count


def test_mixed_add_add_many_flush_across_block_edges(tmp_path: Path) -> None:
    expected = []
    with TSyncWriter(tmp_path / "x.tsync", block_size=4) as writer:
        for step in range(12):
            if step % 3 == 0:
                writer.add(step, 1)
                expected.append([step, 1])
            else:
                values = np.arange(step) + 100 * step
                writer.add_many(values, values + 1)
                expected += [[v, v + 1] for v in values.tolist()]
            if step % 4 == 1:
                writer.flush()
            assert writer.count == len(expected)
    assert read_tsync(tmp_path / "x.tsync").times.tolist() == expected


def test_flush_writes_the_block_in_progress_once(tmp_path: Path) -> None:
    path = tmp_path / "x.tsync"
    writer = TSyncWriter(path, block_size=4)
    header = path.stat().st_size
    writer.add(1, 1)
    writer.flush()  # the block in progress ends as a short, terminated block: a killed process leaves it readable
    assert path.stat().st_size == header + 16 + TERMINATOR_BYTES
    assert read_tsync(path).times[:, 0].tolist() == [1]
    writer.flush()
    assert path.stat().st_size == header + 16 + TERMINATOR_BYTES  # nothing twice
    writer.add_many([2, 3], [2, 3])
    writer.flush()
    assert path.stat().st_size == header + 48 + TERMINATOR_BYTES
    assert read_tsync(path).times[:, 0].tolist() == [1, 2, 3]
    writer.add(4, 4)  # completes the block: terminator and digest follow at once
    assert path.stat().st_size == header + 64 + TERMINATOR_BYTES
    writer.close()
    writer.close()
    assert writer.closed and path.stat().st_size == header + 64 + TERMINATOR_BYTES
    assert read_tsync(path).times[:, 0].tolist() == [1, 2, 3, 4]
    with pytest.raises(TSyncError, match="tsync writer is closed"):
        writer.add(5, 5)
    with pytest.raises(TSyncError, match="tsync writer is closed"):
        writer.add_many([5], [5])
    with pytest.raises(TSyncError, match="tsync writer is closed"):
        writer.flush()


@pytest.mark.parametrize("extra_entries", [0, 1, 2, 3])
@pytest.mark.parametrize("extra_bytes", [0, 1, 15])
def test_unterminated_tail_strict_and_lenient(extra_entries: int, extra_bytes: int, tmp_path: Path) -> None:
    """A writer killed after flushing ``extra_entries`` of the block in progress (plus a partial entry)."""
    path = tmp_path / "x.tsync"
    writer = TSyncWriter(path, block_size=4)
    writer.add_many(np.arange(4), np.arange(4))  # one complete, terminated block
    writer.close()
    # hwlink's writer terminates the block in progress at every flush; a writer that does not (Syntalos), killed
    # mid-block, leaves whole int64 entries and then part of one behind the last terminator
    tail_entries = np.repeat(np.arange(4, 4 + extra_entries, dtype="<i8"), 2).tobytes()
    with open(path, "ab") as handle:
        handle.write(tail_entries + b"\x01" * extra_bytes)
    tail = extra_entries * 16 + extra_bytes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strict = read_tsync(path)
    if tail == 0:
        assert strict.truncation is None and strict.intact and not caught
        return
    assert [w.category for w in caught] == [TSyncTruncationWarning]
    assert strict.times[:, 0].tolist() == [0, 1, 2, 3]
    assert strict.truncation == TSyncTruncation(complete_entries=4, tail_bytes=tail,
                                                whole_entries_in_tail=tail // 16, salvaged_entries=0)
    assert strict.truncation.lost_entries == tail // 16 and not strict.intact
    with pytest.warns(TSyncTruncationWarning, match="truncated"):
        lenient = read_tsync(path, lenient=True)
    assert lenient.times[:, 0].tolist()[:4 + extra_entries] == list(range(4 + extra_entries))
    assert len(lenient) == 4 + tail // 16
    assert lenient.truncation.salvaged_entries == tail // 16 and lenient.truncation.lost_entries == 0


def test_truncation_descriptions() -> None:
    lost = TSyncTruncation(complete_entries=8, tail_bytes=40, whole_entries_in_tail=2, salvaged_entries=0)
    assert lost.describe() == "truncated: 40 bytes after the last complete block (2 whole unterminated entries " \
                              "not returned)"
    kept = TSyncTruncation(complete_entries=8, tail_bytes=40, whole_entries_in_tail=2, salvaged_entries=2)
    assert kept.describe() == "truncated: 40 bytes after the last complete block (2 whole unterminated entries, " \
                              "2 salvaged unverified)"
    assert kept.lost_entries == 0 and lost.lost_entries == 2


def test_header_fields_round_trip_at_their_edges(tmp_path: Path) -> None:
    path = tmp_path / "x.tsync"
    collection = uuid.UUID("a12975f1-84b7-4350-8683-7a5fe9ed968f")
    with TSyncWriter(path, mode=TSyncFileMode.CONTINUOUS, time_names=("", "ü" * 300),
                     time_units=(TSyncTimeUnit.INDEX, TSyncTimeUnit.SECONDS),
                     data_types=(TSyncDataType.UINT16, TSyncDataType.INT32), module_name="m",
                     collection_id=str(collection), user_data={"b": "x", "a": -1}, tolerance_us=0,
                     creation_time=2**31) as writer:
        writer.add(65535, -(2**31))
    header = read_tsync_header(path)
    assert header.times.shape == (0, 2)
    read = read_tsync(path)
    assert (read.mode, read.time_names, read.time_units, read.data_types) == (
        TSyncFileMode.CONTINUOUS, ("", "ü" * 300), (TSyncTimeUnit.INDEX, TSyncTimeUnit.SECONDS),
        (TSyncDataType.UINT16, TSyncDataType.INT32))
    assert (read.module_name, read.collection_id, read.creation_time) == ("m", collection, 2**31)
    assert read.user_data == {"a": -1, "b": "x", "tolerance_us": 0} and read.tolerance_us == 0
    assert read.created.isoformat() == "2038-01-19T03:14:08+00:00"
    assert read.times.tolist() == [[65535, -(2**31)]] and read.time1.tolist() == [65535]
    assert read.time2.tolist() == [-(2**31)] and read.block_size == DEFAULT_BLOCK_SIZE_FOR_TEST
    assert header.header_bytes == read.header_bytes and header.header_bytes % 8 == 0


DEFAULT_BLOCK_SIZE_FOR_TEST = tsync.DEFAULT_BLOCK_SIZE


@pytest.mark.parametrize("collection_id, text", [
    (None, "00000000-0000-0000-0000-000000000000"), ("", "00000000-0000-0000-0000-000000000000"),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ("A12975F1-84B7-4350-8683-7A5FE9ED968F", "a12975f1-84b7-4350-8683-7a5fe9ed968f"),
])
def test_collection_ids(collection_id, text: str, tmp_path: Path) -> None:
    with TSyncWriter(tmp_path / "x.tsync", collection_id=collection_id):
        pass
    assert str(read_tsync(tmp_path / "x.tsync").collection_id) == text
    assert text.encode() in (tmp_path / "x.tsync").read_bytes()


@pytest.mark.parametrize("kwargs, message", [
    ({"collection_id": "not-a-uuid"}, "collection id 'not-a-uuid' is not a UUID"),
    ({"user_data": {1: "x"}}, "user-data key 1 must be a string"),
    ({"user_data": {"k": 1.5}}, "user-data value k=1.5 must be a string or an integer"),
    ({"user_data": {"k": True}}, "user-data value k=True"),
    ({"user_data": {"k": None}}, "user-data value k=None"),
    ({"data_types": (TSyncDataType.INVALID, TSyncDataType.INT64)}, "not INVALID"),
    ({"data_types": (TSyncDataType.INT64, TSyncDataType.INVALID)}, "not INVALID"),
])
def test_writer_configuration_errors(kwargs: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        TSyncWriter(tmp_path / "x.tsync", **kwargs)


@pytest.mark.parametrize("value, expected", [
    (1500, 1500), ("1500", 1500), ("-3", -3), (True, None), (None, None), ("abc", None), ([1], None), (2.0, 2),
])
def test_tolerance_from_user_data(value, expected, tmp_path: Path) -> None:
    with TSyncWriter(tmp_path / "x.tsync"):
        pass
    read = read_tsync_header(tmp_path / "x.tsync")
    assert read.tolerance_us is None
    read.user_data["tolerance_us"] = value
    assert read.tolerance_us == expected


def header_with(tmp_path: Path) -> tuple[Path, bytearray]:
    """A syncpoints file whose header is rebuilt with its checksum, so the reader reaches the field checks."""
    path = tmp_path / "h.tsync"
    with TSyncWriter(path, block_size=4, user_data={"k": "v"}, collection_id=uuid.UUID(int=5)) as writer:
        writer.add(1, 2)
    data = bytearray(path.read_bytes())
    return path, data


def rebuild(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace a header string (same length) and fix the header checksum."""
    import xxhash

    start = data.index(old)
    data = data[:start] + new + data[start + len(old):]
    end = data.index(struct.pack("<Q", tsync.BLOCK_TERM))
    digest = xxhash.xxh3_64_intdigest(bytes(data[8:end]))
    return data[:end + 8] + struct.pack("<Q", digest) + data[end + 16:]


def test_lenient_header_fallbacks(tmp_path: Path) -> None:
    path, data = header_with(tmp_path)
    bad_uuid = rebuild(bytes(data), b"00000000-0000-0000-0000-000000000005", b"zzzzzzzz-0000-0000-0000-000000000005")
    path.write_bytes(bad_uuid)
    with pytest.raises(TSyncFormatError, match="collection id 'zzzzzzzz-0000-0000-0000-000000000005' is no UUID"):
        read_tsync(path)
    lenient = read_tsync(path, lenient=True)
    assert lenient.collection_id == uuid.UUID(int=0) and lenient.times.tolist() == [[1, 2]]
    assert read_tsync_header(path).collection_id == uuid.UUID(int=0)  # the header-only read is lenient
    bad_json = rebuild(bytes(data), b'{"k":"v"}', b'["k","v"]')
    path.write_bytes(bad_json)
    with pytest.raises(TSyncFormatError, match=r"user data is not a JSON object: '\[\"k\",\"v\"\]'"):
        read_tsync(path)
    assert read_tsync(path, lenient=True).user_data == {"_raw": '["k","v"]'}
    path.write_bytes(rebuild(bytes(data), b'{"k":"v"}', b'{"k":vv"}'))
    with pytest.raises(TSyncFormatError, match="user data is not a JSON object"):
        read_tsync(path)
    assert read_tsync(path, lenient=True).user_data == {"_raw": '{"k":vv"}'}
    path.write_bytes(rebuild(bytes(data), b'"v"', b'"w"'))
    assert read_tsync(path).user_data == {"k": "w"}  # the rebuilt checksum itself is right


@pytest.mark.parametrize("data_type", [TSyncDataType.INT16, TSyncDataType.INT32, TSyncDataType.UINT16,
                                       TSyncDataType.UINT32], ids=lambda t: t.name)
@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_numeric_arrays_name_the_offending_value(data_type: TSyncDataType, dtype, tmp_path: Path) -> None:
    low, high = data_type.value_range
    with TSyncWriter(tmp_path / "x.tsync", data_types=(TSyncDataType.INT64, data_type)) as writer:
        for values, bad in (([low - 1, 0], low - 1), ([low, high + 1], high + 1), ([high, low - 1], low - 1),
                            ([low - 1, high + 1], low - 1)):
            with pytest.raises(TSyncValueError, match=rf"^master-time: value {bad} does not fit {data_type.name} "
                                                      rf"\[{low}, {high}\]$"):
                writer.add_many([0, 1], np.array(values, dtype=dtype))
        writer.add_many([0, 1], np.array([low, high], dtype=dtype))
        with pytest.raises(TSyncValueError, match="^master-time: values must be whole numbers$"):
            writer.add_many([0], np.array([0.5]))
    assert read_tsync(tmp_path / "x.tsync").times.tolist() == [[0, low], [1, high]]


def test_add_many_flattens_any_shape(tmp_path: Path) -> None:
    with TSyncWriter(tmp_path / "x.tsync", block_size=3) as writer:
        writer.add_many(np.array([[1, 2], [3, 4]]), np.array([[5, 6], [7, 8]]))
        writer.add_many(np.int64(9), 10)
    assert read_tsync(tmp_path / "x.tsync").times.tolist() == [[1, 5], [2, 6], [3, 7], [4, 8], [9, 10]]


def test_the_header_only_read_names_its_file(tmp_path: Path) -> None:
    path = tmp_path / "x.tsync"
    with TSyncWriter(path):
        pass
    assert read_tsync_header(path).path == path and read_tsync(path).path == path
    junk = tmp_path / "junk.tsync"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(TSyncFormatError, match=f"^{junk}: not a tsync file"):
        read_tsync_header(junk)


def damaged(tmp_path: Path, offset_from_block: int, block: int, *, last: bool = False) -> Path:
    """Six entries in blocks of 4 (one full block, one short last block of 2) with one byte flipped."""
    path = tmp_path / "d.tsync"
    with TSyncWriter(path, block_size=4) as writer:
        writer.add_many(np.arange(6), np.arange(6) * 10)
    data = bytearray(path.read_bytes())
    start = read_tsync_header(path).header_bytes + block * (4 * 16 + TERMINATOR_BYTES)
    data[start + offset_from_block] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def test_lenient_read_skips_a_block_with_a_damaged_terminator(tmp_path: Path) -> None:
    path = damaged(tmp_path, 4 * 16, 0)  # first byte of block 0's terminator
    with pytest.raises(tsync.TSyncCorruptError, match=f"^{path}: data block 0 damaged: block terminator not found$") \
            as caught:
        read_tsync(path)
    assert caught.value.block == 0
    lenient = read_tsync(path, lenient=True)
    assert lenient.bad_blocks == [0] and not lenient.intact
    assert lenient.times.tolist() == [[4, 40], [5, 50]]


def test_lenient_read_drops_a_short_last_block_with_a_bad_digest(tmp_path: Path) -> None:
    path = damaged(tmp_path, 2 * 16 + 9, 1)  # a byte of the short last block's digest
    with pytest.raises(tsync.TSyncChecksumError, match=f"^{path}: data block 1 checksum mismatch \\(last block\\)$") \
            as caught:
        read_tsync(path)
    assert caught.value.block == 1
    lenient = read_tsync(path, lenient=True)
    assert lenient.bad_blocks == [1] and lenient.times[:, 0].tolist() == [0, 1, 2, 3]
    path = damaged(tmp_path, 3, 0)  # an entry byte of the full block 0
    with pytest.raises(tsync.TSyncChecksumError, match=f"^{path}: data block 0 checksum mismatch$") as caught:
        read_tsync(path)
    assert caught.value.block == 0
    assert read_tsync(path, lenient=True).times[:, 0].tolist() == [4, 5]


def test_user_data_bytes_are_sorted_compact_and_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.tsync"
    writer = TSyncWriter(path, user_data={"zeta": "µs", "alpha": 1}, tolerance_us=7)
    writer.close()
    assert writer.user_data == {"zeta": "µs", "alpha": 1, "tolerance_us": 7}
    assert '{"alpha":1,"tolerance_us":7,"zeta":"µs"}'.encode() in path.read_bytes()
    with pytest.raises(ConfigError, match=r"^tsync user-data value k=1\.5 must be a string or an integer \(Syntalos' "
                                          r"reader drops or mangles other JSON types\)$"):
        TSyncWriter(tmp_path / "y.tsync", user_data={"k": 1.5})
    with pytest.raises(ConfigError, match="^tsync data types must be real integer types, not INVALID$"):
        TSyncWriter(tmp_path / "y.tsync", data_types=(TSyncDataType.INVALID, TSyncDataType.INT64))


def test_negative_creation_times_round_trip(tmp_path: Path) -> None:
    with TSyncWriter(tmp_path / "x.tsync", creation_time=-1):
        pass
    assert read_tsync(tmp_path / "x.tsync").creation_time == -1


def test_a_writer_dropped_without_close_terminates_its_block(tmp_path: Path) -> None:
    import gc

    path = tmp_path / "x.tsync"
    writer = TSyncWriter(path, block_size=4)
    writer.add(1, 2)
    del writer
    gc.collect()
    read = read_tsync(path)
    assert read.intact and read.times.tolist() == [[1, 2]]


# ----- every header field, damaged: the error names the field --------------------------------------------------
# Layout of a header written with module "m", the nil collection id, user data "{}" and time names "a", "b":
FIELDS = {"major": 8, "minor": 10, "creation": 12, "module len": 20, "module": 24, "collection len": 25,
          "user len": 65, "user": 69, "mode": 71, "block size": 73, "name1 len": 77, "unit1": 82, "type1": 84,
          "name2 len": 86, "name2": 90, "unit2": 91, "type2": 93}


def small_file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "s.tsync"
    with TSyncWriter(path, module_name="m", user_data={}, time_names=("a", "b"), block_size=2) as writer:
        writer.add(1, 2)
    data = path.read_bytes()
    assert data[FIELDS["module"]:FIELDS["module"] + 1] == b"m" and data[FIELDS["name2"]:FIELDS["name2"] + 1] == b"b"
    return path, data


def patched(path: Path, data: bytes, offset: int, new: bytes, *, fix_digest: bool = True) -> Path:
    import xxhash

    data = data[:offset] + new + data[offset + len(new):]
    if fix_digest:
        end = data.index(struct.pack("<Q", tsync.BLOCK_TERM))
        data = data[:end + 8] + struct.pack("<Q", xxhash.xxh3_64_intdigest(data[8:end])) + data[end + 16:]
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("field, what", [("mode", "mode"), ("unit1", "time1 unit"), ("type1", "time1 data type"),
                                         ("unit2", "time2 unit"), ("type2", "time2 data type")])
def test_unknown_enum_values_name_their_field(field: str, what: str, tmp_path: Path) -> None:
    path, data = small_file(tmp_path)
    patched(path, data, FIELDS[field], struct.pack("<H", 0xFFFF))
    with pytest.raises(TSyncFormatError, match=f"^{path}: header damaged: unknown {what} 65535$"):
        read_tsync(path)


@pytest.mark.parametrize("field, what", [("module len", "module name"), ("collection len", "collection id"),
                                         ("user len", "user data"), ("name1 len", "time1 name"),
                                         ("name2 len", "time2 name")])
def test_overlong_and_non_utf8_strings_name_their_field(field: str, what: str, tmp_path: Path) -> None:
    path, data = small_file(tmp_path)
    patched(path, data, FIELDS[field], struct.pack("<I", 10**6))
    with pytest.raises(TSyncFormatError, match=f"^{path}: header damaged: {what} length 1000000 exceeds the file$"):
        read_tsync(path)
    patched(path, data, FIELDS[field] + 4, b"\xff")
    with pytest.raises(TSyncFormatError, match=f"^{path}: header damaged: {what} is not UTF-8$"):
        read_tsync(path)


def test_a_null_string_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "n.tsync"
    with TSyncWriter(path, module_name=""):
        pass
    data = path.read_bytes()
    patched(path, data, 20, struct.pack("<I", 0xFFFFFFFF))  # Qt's null QString
    assert read_tsync(path).module_name == ""


@pytest.mark.parametrize("major, minor", [(0xFFFF, 2), (1, 0xFFFF), (1, 3)])
def test_unsupported_versions_are_named(major: int, minor: int, tmp_path: Path) -> None:
    path, data = small_file(tmp_path)
    patched(path, data, 8, struct.pack("<HH", major, minor))
    with pytest.raises(TSyncFormatError, match=rf"^{path}: unsupported tsync format version {major}\.{minor} "
                                               r"\(only 1\.2 is readable\)$"):
        read_tsync(path)


def test_a_header_cut_right_after_a_string_says_how_much_it_needs(tmp_path: Path) -> None:
    path, data = small_file(tmp_path)
    path.write_bytes(data[:FIELDS["unit2"]])  # ends exactly where the time2 name ends
    with pytest.raises(TSyncFormatError, match=rf"^{path}: not a tsync file or header truncated \(needs "
                                               rf"{FIELDS['unit2'] + 2} bytes, file has {FIELDS['unit2']}\)$"):
        read_tsync(path)


def test_negative_block_sizes_are_damage(tmp_path: Path) -> None:
    path, data = small_file(tmp_path)
    patched(path, data, FIELDS["block size"], struct.pack("<i", -1))
    with pytest.raises(TSyncFormatError, match=f"^{path}: header damaged: block size -1$"):
        read_tsync(path)


def test_long_non_object_user_data_is_quoted_to_60_characters(tmp_path: Path) -> None:
    path, data = small_file(tmp_path)
    with TSyncWriter(path, user_data={"k": "v" * 100}):
        pass
    text = '{"k":"' + "v" * 100 + '"}'
    data = path.read_bytes()
    patched(path, data, data.index(text.encode()), b"[")
    quoted = re.escape(repr('["k":"' + "v" * 54))
    with pytest.raises(TSyncFormatError, match=f"^{re.escape(str(path))}: user data is not a JSON object: {quoted}$"):
        read_tsync(path)


def test_a_magic_with_nothing_after_it_is_a_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "m.tsync"
    path.write_bytes(struct.pack("<Q", tsync.MAGIC))
    with pytest.raises(TSyncFormatError, match=r"header truncated \(needs 10 bytes, file has 8\)$"):
        read_tsync(path)
    path.write_bytes(struct.pack("<Q", tsync.MAGIC)[:7])
    with pytest.raises(TSyncFormatError, match=r"^.*: not a tsync file \(only 7 bytes\)$"):
        read_tsync(path)


def test_user_data_longer_than_the_header_probe(tmp_path: Path) -> None:
    path = tmp_path / "big.tsync"
    notes = "ü" * 40_000  # 80 kB of UTF-8: the header reaches past the first 64 kB read
    with TSyncWriter(path, user_data={"notes": notes}, block_size=2) as writer:
        writer.add_many([1, 2, 3], [4, 5, 6])
    read = read_tsync(path)
    assert read.user_data == {"notes": notes} and read.times.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert read.version == (1, 2) and read_tsync_header(path).user_data == {"notes": notes}


@pytest.mark.parametrize("block_size", [0, -(2**31)])
def test_block_size_zero_or_negative_in_a_header(block_size: int, tmp_path: Path) -> None:
    path, data = small_file(tmp_path)
    patched(path, data, FIELDS["block size"], struct.pack("<i", block_size))
    with pytest.raises(TSyncFormatError, match=f"^{path}: header damaged: block size {block_size}$"):
        read_tsync(path)


def test_header_integrity_errors_are_exact(tmp_path: Path) -> None:
    path, data = small_file(tmp_path)
    patched(path, data, FIELDS["type2"], struct.pack("<H", 0))
    with pytest.raises(TSyncFormatError, match=f"^{path}: header damaged: data type INVALID$"):
        read_tsync(path)
    patched(path, data, 96, b"\x00", fix_digest=False)  # the header's terminator
    with pytest.raises(TSyncFormatError, match=f"^{path}: header damaged: block terminator not found$"):
        read_tsync(path)
    legacy = struct.pack("<Q", tsync.LEGACY_MAGIC) + data[8:96] + struct.pack("<Q", tsync.LEGACY_BLOCK_TERM) \
        + bytes([data[104] ^ 1]) + data[105:]
    path.write_bytes(legacy)  # a legacy file whose digest matches neither legacy hash
    with pytest.raises(TSyncFormatError,
                       match=f"^{path}: header checksum mismatch \\(neither legacy hash variant matches\\)$"):
        read_tsync(path)


def test_an_empty_collection_id_reads_as_nil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tsync, "_collection_id_text", lambda collection_id: "")  # as a writer without one may do
    with TSyncWriter(tmp_path / "e.tsync"):
        pass
    assert read_tsync(tmp_path / "e.tsync").collection_id == uuid.UUID(int=0)

