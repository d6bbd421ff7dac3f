"""Syntalos ``.tsync`` time-synchronization files: a byte-compatible writer and a vectorised reader.

A tsync file stores pairs ``(time1, time2)`` mapping one time base onto another (usually a device clock onto
the master clock), in blocks of B entries each followed by a terminator and an XXH3-64 digest. The layout is
specified in ``shared/reference/tsync-format.md``; this module writes exactly what Syntalos >= 3.1.1 writes
(format 1.2, current magic) so Syntalos and edlio read our files, and reads the current format plus both
legacy hash variants (Syntalos 2.x and 3.0-3.1).

Where the reference implementation is weak, this one is strict on purpose: out-of-range values raise instead
of wrapping, every data-block checksum is verified (a mismatch raises :class:`TSyncChecksumError` naming the
block), and a truncated file from a crashed writer returns its complete blocks together with a
:class:`TSyncTruncation` report and a :class:`TSyncTruncationWarning` instead of failing or losing rows
silently.
"""

from __future__ import annotations

import json
import operator
import os
import struct
import sys
import threading
import time
import uuid
import warnings
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
import xxhash

from hwlink import platform
from hwlink.errors import ConfigError, HwlinkError

__all__ = [
    "TSyncFileMode", "TSyncTimeUnit", "TSyncDataType", "TSyncWriter", "TSyncFile", "TSyncTruncation",
    "read_tsync", "read_tsync_header", "TSyncError", "TSyncFormatError", "TSyncChecksumError",
    "TSyncCorruptError", "TSyncValueError", "TSyncWriteError", "TSyncTruncationWarning", "DEFAULT_BLOCK_SIZE",
]


class TSyncFileMode(IntEnum):
    """How the pairs are meant: every sample mapped, or only re-synchronization points."""

    CONTINUOUS = 0
    SYNCPOINTS = 1


class TSyncTimeUnit(IntEnum):
    """Unit of one of the two time columns (INDEX is a dimensionless counter such as a frame number)."""

    INDEX = 0
    NANOSECONDS = 1
    MICROSECONDS = 2
    MILLISECONDS = 3
    SECONDS = 4

    @property
    def usec_per_unit(self) -> float | None:
        """Microseconds per unit, or None for INDEX (which has no time scale)."""
        return _USEC_PER_UNIT[self]

    @property
    def label(self) -> str:
        return _UNIT_LABELS[self]


_USEC_PER_UNIT: dict[TSyncTimeUnit, float | None] = {
    TSyncTimeUnit.INDEX: None, TSyncTimeUnit.NANOSECONDS: 1e-3, TSyncTimeUnit.MICROSECONDS: 1.0,
    TSyncTimeUnit.MILLISECONDS: 1e3, TSyncTimeUnit.SECONDS: 1e6,
}
_UNIT_LABELS = {
    TSyncTimeUnit.INDEX: "index", TSyncTimeUnit.NANOSECONDS: "ns", TSyncTimeUnit.MICROSECONDS: "µs",
    TSyncTimeUnit.MILLISECONDS: "ms", TSyncTimeUnit.SECONDS: "s",
}


class TSyncDataType(IntEnum):
    """On-disk integer type of one time column (values 1 and 5 are unused by the format)."""

    INVALID = 0
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8

    @property
    def numpy_dtype(self) -> np.dtype:
        if self is TSyncDataType.INVALID:
            raise ConfigError("tsync data type INVALID has no storage type")
        return np.dtype(_NUMPY_TYPES[self])

    @property
    def value_range(self) -> tuple[int, int]:
        """Smallest and largest value the type stores (inclusive)."""
        info = np.iinfo(self.numpy_dtype)
        return int(info.min), int(info.max)


_NUMPY_TYPES = {
    TSyncDataType.INT16: "<i2", TSyncDataType.INT32: "<i4", TSyncDataType.INT64: "<i8",
    TSyncDataType.UINT16: "<u2", TSyncDataType.UINT32: "<u4", TSyncDataType.UINT64: "<u8",
}

MAGIC = 0xB28FE2434E53548A
BLOCK_TERM = 0x00000000009198E2
LEGACY_MAGIC = 0xF223434E5953548A
LEGACY_BLOCK_TERM = 0x1126000000000000
VERSION = (1, 2)
DEFAULT_BLOCK_SIZE = 2800
DEFAULT_FLUSH_INTERVAL = 0.25  # seconds an added entry may wait before it is published (the kill-loss bound)
FLUSH_TICK_S = 0.05
TERMINATOR_BYTES = 16  # BLOCK_TERM (u64) + XXH3-64 digest (u64)
_NULL_STRING_LENGTH = 0xFFFFFFFF
_NIL_UUID = "00000000-0000-0000-0000-000000000000"

# Variant names reported by the reader (see the spec's §2.2).
VARIANT_CURRENT = "1.2"
VARIANT_3_0 = "1.2-legacy-3.0"
VARIANT_2_X = "1.2-legacy-2.x"


# ----------------------------------------------------------------------------------------------------------
# Errors

class TSyncError(HwlinkError, ValueError):
    """Any problem with a tsync file; the message names the file."""


class TSyncFormatError(TSyncError):
    """Not a tsync file, an unsupported version, or a damaged header."""


class TSyncCorruptError(TSyncError):
    """A data block is damaged (bad terminator or checksum); ``block`` is its 0-based index."""

    def __init__(self, message: str, *, block: int) -> None:
        super().__init__(message)
        self.block = block


class TSyncChecksumError(TSyncCorruptError):
    """A data block's XXH3-64 digest does not match its contents."""


class TSyncValueError(TSyncError):
    """A value given to the writer does not fit the column's declared data type."""


class TSyncWriteError(TSyncError):
    """Writing the file failed (disk full, I/O error); the file on disk keeps what was published before."""


class TSyncTruncationWarning(UserWarning):
    """The file ends inside a block (a writer that crashed or was killed); complete blocks were returned."""


@dataclass(frozen=True)
class TSyncTruncation:
    """What an unterminated or truncated file lost after its last complete block."""

    complete_entries: int
    tail_bytes: int
    whole_entries_in_tail: int
    salvaged_entries: int

    @property
    def lost_entries(self) -> int:
        """Whole entries after the last verified block that were not returned."""
        return self.whole_entries_in_tail - self.salvaged_entries

    def describe(self) -> str:
        text = (f"truncated: {self.tail_bytes} bytes after the last complete block "
                f"({self.whole_entries_in_tail} whole unterminated entries")
        if self.salvaged_entries:
            text += f", {self.salvaged_entries} salvaged unverified"
        else:
            text += " not returned"
        return text + ")"


# ----------------------------------------------------------------------------------------------------------
# The file as read

@dataclass
class TSyncHeader:
    """What a tsync file's header says; ``block_term`` is the block terminator of the file's variant."""

    variant: str
    version: tuple[int, int]
    creation_time: int
    module_name: str
    collection_id: uuid.UUID
    user_data: dict[str, Any]
    mode: TSyncFileMode
    block_size: int
    time_names: tuple[str, str]
    time_units: tuple[TSyncTimeUnit, TSyncTimeUnit]
    data_types: tuple[TSyncDataType, TSyncDataType]
    header_bytes: int
    block_term: int


@dataclass
class TSyncFile(TSyncHeader):
    """A tsync file's header and its pairs.

    ``times`` is an ``(n, 2)`` int64 array: column 0 is time1 (``time_names[0]``), column 1 is time2. Values
    are widened to int64 like the Syntalos and edlio readers do (UINT64 values >= 2**63 wrap negative).
    ``truncation`` is None for a complete file. ``bad_blocks`` lists blocks a lenient read skipped.
    """

    path: Path = Path()
    times: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))
    truncation: TSyncTruncation | None = None
    bad_blocks: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.times.shape[0])

    @property
    def time1(self) -> np.ndarray:
        return self.times[:, 0]

    @property
    def time2(self) -> np.ndarray:
        return self.times[:, 1]

    @property
    def created(self) -> datetime | None:
        """The creation time as a UTC datetime; None if the stored seconds are outside years 1..9999."""
        try:
            return datetime.fromtimestamp(self.creation_time, tz=UTC)
        except (ValueError, OverflowError, OSError):
            return None

    @property
    def tolerance_us(self) -> int | None:
        """The ``tolerance_us`` user-data value (Qt-era files stored it as a string), or None."""
        value = self.user_data.get("tolerance_us")
        if isinstance(value, bool) or value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError, OverflowError):  # e.g. 1e400 parses as inf
            return None

    @property
    def intact(self) -> bool:
        """True if every byte of the file was verified and returned."""
        return self.truncation is None and not self.bad_blocks


# ----------------------------------------------------------------------------------------------------------
# Writing

def _encode_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<I", len(data)) + data


def _user_data_json(user_data: dict[str, Any]) -> str:
    """Compact JSON with byte-sorted keys, as Syntalos writes it; only str and int values (all readers agree)."""
    for key, value in user_data.items():
        if not isinstance(key, str):
            raise ConfigError(f"tsync user-data key {key!r} must be a string")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigError(
                f"tsync user-data value {key}={value!r} must be a string or an integer "
                "(Syntalos' reader drops or mangles other JSON types)")
    return json.dumps(user_data, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _collection_id_text(collection_id: uuid.UUID | str | None) -> str:
    if collection_id is None or collection_id == "":
        return _NIL_UUID
    try:
        return str(collection_id if isinstance(collection_id, uuid.UUID) else uuid.UUID(str(collection_id)))
    except ValueError:
        raise ConfigError(f"collection id {collection_id!r} is not a UUID") from None


def _entry_dtype(data_types: tuple[TSyncDataType, TSyncDataType]) -> np.dtype:
    """Packed (unaligned) on-disk entry: time1 immediately followed by time2."""
    return np.dtype([("t1", data_types[0].numpy_dtype), ("t2", data_types[1].numpy_dtype)])


def _block_dtype(entry: np.dtype, block_size: int) -> np.dtype:
    return np.dtype([("entries", entry, (block_size,)), ("term", "<u8"), ("digest", "<u8")])


def _checked_column(values: Any, data_type: TSyncDataType, name: str) -> np.ndarray:
    """Values as the column's numpy type; raises if any value is not a whole number or does not fit."""
    array = np.asarray(values).reshape(-1)
    if array.size == 0:
        return array.astype(data_type.numpy_dtype)
    if array.dtype.kind == "O":
        return np.array([_checked_int(value, data_type, name) for value in array.tolist()],
                        dtype=data_type.numpy_dtype)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.trunc(array)):
            raise TSyncValueError(f"{name}: values must be whole numbers")
    elif array.dtype.kind not in "iu":
        raise TSyncValueError(f"{name}: expected integers, got {array.dtype}")
    low, high = data_type.value_range
    smallest, largest = int(array.min()), int(array.max())
    if smallest < low or largest > high:
        bad = smallest if smallest < low else largest
        raise TSyncValueError(f"{name}: value {bad} does not fit {data_type.name} [{low}, {high}]")
    return array.astype(data_type.numpy_dtype, copy=False)


def _checked_int(value: Any, data_type: TSyncDataType, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TSyncValueError(f"{name}: expected an integer, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not float(value).is_integer():
            raise TSyncValueError(f"{name}: {value!r} is not a whole number")
        value = int(value)
    try:
        number = operator.index(value)
    except TypeError:
        raise TSyncValueError(f"{name}: expected an integer, got {value!r}") from None
    low, high = data_type.value_range
    if not low <= number <= high:
        raise TSyncValueError(f"{name}: value {number} does not fit {data_type.name} [{low}, {high}]")
    return number


class TSyncWriter:
    """Writes a format-1.2 tsync file that Syntalos and edlio read.

    Kill-safe: the file on disk is always a complete tsync file that Syntalos, edlio and a strict
    :func:`read_tsync` read. Each publication (when the writer opens, when a block completes, on :meth:`flush`,
    and at least every ``flush_interval`` seconds while entries are waiting, from a background thread) writes a
    new file beside it, holding the verified blocks already published (copied in the kernel), the new blocks and
    the block in progress terminated as a short last block, and renames it over the old one. A SIGKILL at any
    moment therefore leaves either the previous or the new file, never a torn one, and loses at most the entries
    added since the last publication. :meth:`close` publishes the final file; the context manager closes even
    when the body raises. The path is used as given (Syntalos appends ``.tsync``). A failed publication (disk
    full, I/O error) leaves the previous file in place and raises :class:`TSyncWriteError` then and from every
    later call.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        mode: TSyncFileMode = TSyncFileMode.SYNCPOINTS,
        time_names: tuple[str, str] = ("device-time", "master-time"),
        time_units: tuple[TSyncTimeUnit, TSyncTimeUnit] = (TSyncTimeUnit.MICROSECONDS, TSyncTimeUnit.MICROSECONDS),
        data_types: tuple[TSyncDataType, TSyncDataType] = (TSyncDataType.INT64, TSyncDataType.INT64),
        module_name: str = "",
        collection_id: uuid.UUID | str | None = None,
        user_data: dict[str, Any] | None = None,
        tolerance_us: int | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
        creation_time: int | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        self.path = Path(path)
        self.mode = TSyncFileMode(mode)
        self.time_names = (str(time_names[0]), str(time_names[1]))
        self.time_units = (TSyncTimeUnit(time_units[0]), TSyncTimeUnit(time_units[1]))
        self.data_types = (TSyncDataType(data_types[0]), TSyncDataType(data_types[1]))
        if TSyncDataType.INVALID in self.data_types:
            raise ConfigError("tsync data types must be real integer types, not INVALID")
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
                or not 1 <= block_size <= 2**31 - 1:
            raise ConfigError(f"tsync block size must be an integer in 1..2147483647, got {block_size!r}")
        self.block_size = int(block_size)
        data = dict(user_data or {})
        if tolerance_us is not None:
            data["tolerance_us"] = int(tolerance_us)
        self.user_data = data
        header = self._header_bytes(module_name, _collection_id_text(collection_id), _user_data_json(data),
                                    int(time.time()) if creation_time is None else int(creation_time))
        self._entry = _entry_dtype(self.data_types)
        self._block = np.zeros(self.block_size, dtype=self._entry)
        self._filled = 0  # entries in the block buffer (the block in progress)
        self._pending1: list[int] = []  # pairs from add() not yet in the block buffer
        self._pending2: list[int] = []
        self._range1, self._range2 = self.data_types[0].value_range, self.data_types[1].value_range
        self._count = 0
        if not (isinstance(flush_interval, (int, float)) and 0 < flush_interval <= 3600):
            raise ConfigError(f"tsync flush interval must be within (0, 3600] s, got {flush_interval!r}")
        self._flush_interval = float(flush_interval)
        self._header = header
        self._block_bytes = self.block_size * self._entry.itemsize + TERMINATOR_BYTES
        self._done: list[bytes] = []  # completed blocks (with terminator and digest) not yet published
        self._published_blocks = 0  # complete blocks in the file on disk
        self._dirty = False  # entries added since the last publication
        self._error: TSyncWriteError | None = None
        self._open = True
        self._lock = threading.RLock()  # the owner's add() and the background flusher
        self._next_publish = 0.0
        self._publish()
        _flusher.register(self)

    def _header_bytes(self, module_name: str, collection_id: str, user_json: str, creation_time: int) -> bytes:
        hashed = bytearray()
        hashed += struct.pack("<HHq", *VERSION, creation_time)
        hashed += _encode_string(module_name) + _encode_string(collection_id) + _encode_string(user_json)
        hashed += struct.pack("<Hi", self.mode, self.block_size)
        for name, unit, dtype in zip(self.time_names, self.time_units, self.data_types, strict=True):
            hashed += _encode_string(name) + struct.pack("<HH", unit, dtype)
        hashed += bytes(-(8 + len(hashed)) & 7)
        digest = xxhash.xxh3_64_intdigest(bytes(hashed))
        return struct.pack("<Q", MAGIC) + bytes(hashed) + struct.pack("<QQ", BLOCK_TERM, digest)

    @property
    def count(self) -> int:
        """Entries added so far."""
        return self._count

    @property
    def closed(self) -> bool:
        return not self._open

    def _require_open(self) -> None:
        if self._error is not None:
            raise self._error
        if not self._open:
            raise TSyncError(f"{self.path}: tsync writer is closed")

    def add(self, time1: int, time2: int) -> None:
        """Append one pair; a completed block is published at once."""
        if not self._open or self._error is not None:
            self._require_open()
        # Plain ints in range take the fast path; everything else is converted or rejected by _checked_int.
        if not (type(time1) is int and self._range1[0] <= time1 <= self._range1[1]):
            time1 = _checked_int(time1, self.data_types[0], self.time_names[0])
        if not (type(time2) is int and self._range2[0] <= time2 <= self._range2[1]):
            time2 = _checked_int(time2, self.data_types[1], self.time_names[1])
        with self._lock:
            self._pending1.append(time1)
            self._pending2.append(time2)
            self._count += 1
            self._dirty = True
            if self._filled + len(self._pending1) == self.block_size:
                self._settle()
                self._finish_block()
                self._publish()

    def _settle(self) -> None:
        """Move pairs collected by :meth:`add` into the block buffer."""
        if self._pending1:
            end = self._filled + len(self._pending1)
            self._block["t1"][self._filled:end] = self._pending1
            self._block["t2"][self._filled:end] = self._pending2
            self._filled = end
            self._pending1.clear()
            self._pending2.clear()

    def add_many(self, times1: Any, times2: Any) -> None:
        """Append pairs from two equally long integer arrays (vectorised; all values checked before writing)."""
        self._require_open()
        column1 = _checked_column(times1, self.data_types[0], self.time_names[0])
        column2 = _checked_column(times2, self.data_types[1], self.time_names[1])
        if column1.shape != column2.shape:
            raise TSyncValueError(f"{self.path}: add_many needs arrays of equal length, "
                                  f"got {column1.size} and {column2.size}")
        total = column1.size
        if total == 0:
            return
        with self._lock:
            self._require_open()
            self._add_arrays(column1, column2, total)

    def _add_arrays(self, column1: np.ndarray, column2: np.ndarray, total: int) -> None:
        done = 0
        self._settle()
        self._dirty = True
        published = len(self._done)
        if self._filled:
            take = min(self.block_size - self._filled, total)
            self._block["t1"][self._filled:self._filled + take] = column1[:take]
            self._block["t2"][self._filled:self._filled + take] = column2[:take]
            self._filled += take
            done = take
            if self._filled == self.block_size:
                self._finish_block()
        full_blocks = (total - done) // self.block_size
        if full_blocks:
            end = done + full_blocks * self.block_size
            blocks = np.empty(full_blocks, dtype=_block_dtype(self._entry, self.block_size))
            blocks["entries"]["t1"] = column1[done:end].reshape(full_blocks, self.block_size)
            blocks["entries"]["t2"] = column2[done:end].reshape(full_blocks, self.block_size)
            blocks["term"] = BLOCK_TERM
            raw = memoryview(blocks).cast("B")
            stride, payload = blocks.dtype.itemsize, self.block_size * self._entry.itemsize
            digests = blocks["digest"]
            for index in range(full_blocks):
                start = index * stride
                digests[index] = xxhash.xxh3_64_intdigest(raw[start:start + payload])
            self._done.append(bytes(raw))
            done = end
        rest = total - done
        if rest:
            self._block["t1"][:rest] = column1[done:]
            self._block["t2"][:rest] = column2[done:]
            self._filled = rest
        self._count += total
        if len(self._done) > published:
            self._publish()

    def _terminated(self, count: int) -> bytes:
        """The first ``count`` entries of the block buffer with terminator and digest."""
        entries = memoryview(self._block[:count]).cast("B")
        return bytes(entries) + struct.pack("<QQ", BLOCK_TERM, xxhash.xxh3_64_intdigest(entries))

    def _finish_block(self) -> None:
        """The block in progress is complete: keep it (terminated) for the next publication, start a new one."""
        self._done.append(self._terminated(self._filled))
        self._filled = 0

    def _publish(self) -> None:
        """Replace the file on disk with one holding everything added so far (called with the lock held)."""
        self._settle()
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        started = time.monotonic()
        try:
            with open(temp, "wb", buffering=0) as out:
                if self._published_blocks:
                    with open(self.path, "rb", buffering=0) as published:
                        platform.copy_prefix(published, out, len(self._header) + self._published_blocks * self._block_bytes)
                else:
                    out.write(self._header)
                for block in self._done:
                    out.write(block)
                if self._filled:
                    out.write(self._terminated(self._filled))
            os.replace(temp, self.path)
        except OSError as error:
            try:
                temp.unlink(missing_ok=True)
            except OSError:
                pass
            reason = error.strerror or str(error)
            self._error = TSyncWriteError(f"{self.path}: writing the tsync file failed: {reason} (the file keeps "
                                          f"the {self._published_blocks} block(s) published before)")
            raise self._error from None
        self._published_blocks += sum(len(chunk) for chunk in self._done) // self._block_bytes
        self._done.clear()
        self._dirty = False
        now = time.monotonic()
        # A big file costs more to republish: never spend more than a tenth of the time doing it.
        self._next_publish = now + max(self._flush_interval, 10 * (now - started))

    def flush_if_due(self) -> None:
        """Called by the background flusher: publish if entries waited long enough (errors are kept)."""
        if not self._lock.acquire(blocking=False):
            return  # the owner is adding or publishing right now
        try:
            if self._open and self._error is None and (self._dirty or self._done) \
                    and time.monotonic() >= self._next_publish:
                try:
                    self._publish()
                except TSyncWriteError:
                    pass  # raised again by the owner's next call
        finally:
            self._lock.release()

    def flush(self) -> None:
        """Publish everything added so far (the block in progress as a terminated short last block)."""
        with self._lock:
            self._require_open()
            if self._dirty or self._done or self._pending1:
                self._publish()

    def close(self) -> None:
        """Publish the final file and close; idempotent. Raises if this or an earlier publication failed."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            _flusher.unregister(self)
            if self._error is not None:
                raise self._error
            if self._dirty or self._done or self._pending1:
                self._publish()

    def __enter__(self) -> TSyncWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_open", False):
            try:
                self.close()
            except TSyncError:
                pass



class _Flusher:
    """One daemon thread publishing every open writer whose entries have waited past its flush interval."""

    def __init__(self) -> None:
        self._writers: weakref.WeakSet[TSyncWriter] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def register(self, writer: TSyncWriter) -> None:
        with self._lock:
            self._writers.add(writer)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hwlink-tsync-flusher", daemon=True)
                self._thread.start()

    def unregister(self, writer: TSyncWriter) -> None:
        with self._lock:
            self._writers.discard(writer)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_TICK_S)
            with self._lock:
                writers = list(self._writers)
            for writer in writers:
                writer.flush_if_due()
            del writers


_flusher = _Flusher()


# ----------------------------------------------------------------------------------------------------------
# Reading

class _HeaderCursor:
    """Reads header fields from the file's leading bytes, feeding both hash variants as it goes."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 8
        self.path = path
        self.with_lengths = xxhash.xxh3_64()
        self.without_lengths = xxhash.xxh3_64()

    def take(self, size: int, *, hash_without_lengths: bool = True, hashed: bool = True) -> bytes:
        if self.pos + size > len(self.data):
            raise TSyncFormatError(f"{self.path}: not a tsync file or header truncated "
                                   f"(needs {self.pos + size} bytes, file has {len(self.data)})")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        if hashed:
            self.with_lengths.update(chunk)
        if hashed and hash_without_lengths:
            self.without_lengths.update(chunk)
        return chunk

    def unpack(self, fmt: str) -> int:
        return int(struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0])

    def string(self, what: str) -> str:
        (length,) = struct.unpack("<I", self.take(4, hash_without_lengths=False))
        if length == _NULL_STRING_LENGTH:
            return ""
        if length > len(self.data) - self.pos:
            raise TSyncFormatError(f"{self.path}: header damaged: {what} length {length} exceeds the file")
        raw = self.take(length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TSyncFormatError(f"{self.path}: header damaged: {what} is not UTF-8") from None

    def enum(self, kind: type[IntEnum], what: str) -> Any:
        value = self.unpack("<H")
        try:
            return kind(value)
        except ValueError:
            raise TSyncFormatError(f"{self.path}: header damaged: unknown {what} {value}") from None


# Generous bound for the header (three strings); a corrupt length field cannot make us read more than this
# plus the file size.
_HEADER_PROBE_BYTES = 1 << 16


def _parse_header(file: BinaryIO, path: Path, file_size: int, lenient: bool) -> TSyncHeader:
    data = file.read(min(file_size, _HEADER_PROBE_BYTES))
    if len(data) < 8:
        raise TSyncFormatError(f"{path}: not a tsync file (only {len(data)} bytes)")
    (magic,) = struct.unpack("<Q", data[:8])
    if magic not in (MAGIC, LEGACY_MAGIC):
        raise TSyncFormatError(f"{path}: not a tsync file (unknown magic 0x{magic:016X})")
    cursor = _HeaderCursor(data, path)
    while True:
        try:
            return _parse_header_fields(cursor, magic, lenient)
        except TSyncFormatError:
            # A long user-data string may reach past the probe: read the rest once and retry.
            if len(cursor.data) >= file_size:
                raise
            file.seek(0)
            cursor = _HeaderCursor(file.read(), path)


def _parse_header_fields(cursor: _HeaderCursor, magic: int, lenient: bool) -> TSyncHeader:
    path = cursor.path
    version = (cursor.unpack("<H"), cursor.unpack("<H"))
    if version != VERSION:
        raise TSyncFormatError(f"{path}: unsupported tsync format version {version[0]}.{version[1]} "
                               "(only 1.2 is readable)")
    creation_time = cursor.unpack("<q")
    module_name = cursor.string("module name")
    collection_text = cursor.string("collection id")
    user_json = cursor.string("user data")
    mode = cursor.enum(TSyncFileMode, "mode")
    block_size = cursor.unpack("<i")
    name1 = cursor.string("time1 name")
    unit1 = cursor.enum(TSyncTimeUnit, "time1 unit")
    type1 = cursor.enum(TSyncDataType, "time1 data type")
    name2 = cursor.string("time2 name")
    unit2 = cursor.enum(TSyncTimeUnit, "time2 unit")
    type2 = cursor.enum(TSyncDataType, "time2 data type")
    cursor.take(-cursor.pos & 7)
    term, digest = struct.unpack("<QQ", cursor.take(TERMINATOR_BYTES, hashed=False))
    block_term = BLOCK_TERM if magic == MAGIC else LEGACY_BLOCK_TERM
    if term != block_term:
        raise TSyncFormatError(f"{path}: header damaged: block terminator not found")
    if magic == MAGIC:
        if digest != cursor.with_lengths.intdigest():
            raise TSyncFormatError(f"{path}: header checksum mismatch")
        variant = VARIANT_CURRENT
    elif digest == cursor.with_lengths.intdigest():
        variant = VARIANT_3_0
    elif digest == cursor.without_lengths.intdigest():
        variant = VARIANT_2_X
    else:
        raise TSyncFormatError(f"{path}: header checksum mismatch (neither legacy hash variant matches)")
    if block_size <= 0:
        raise TSyncFormatError(f"{path}: header damaged: block size {block_size}")
    if TSyncDataType.INVALID in (type1, type2):
        raise TSyncFormatError(f"{path}: header damaged: data type INVALID")
    try:
        collection_id = uuid.UUID(collection_text) if collection_text else uuid.UUID(int=0)
    except ValueError:
        if not lenient:
            raise TSyncFormatError(f"{path}: header damaged: collection id {collection_text!r} is no UUID") from None
        collection_id = uuid.UUID(int=0)
    user_data = _parse_user_json(user_json, path, lenient)
    return TSyncHeader(variant, version, creation_time, module_name, collection_id, user_data, mode, block_size,
                   (name1, name2), (unit1, unit2), (type1, type2), cursor.pos, block_term)


MAX_USER_DATA_DEPTH = 32  # Syntalos writes a flat object; deeper nesting is damage or hostility


def _json_depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text, brackets inside strings not counted (linear, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif char in "]}":
            depth -= 1
    return deepest


def _parse_user_json(text: str, path: Path, lenient: bool) -> dict[str, Any]:
    if not text:
        return {}
    value: Any = None
    if _json_depth(text) <= MAX_USER_DATA_DEPTH:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
    if not isinstance(value, dict):
        if lenient:
            return {"_raw": text}
        raise TSyncFormatError(f"{path}: user data is not a JSON object: {text[:60]!r}")
    return value


def read_tsync_header(path: str | os.PathLike[str]) -> TSyncFile:
    """The header only (``times`` is empty); cheap for listing many files."""
    path = Path(path)
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        header = _parse_header(file, path, size, lenient=True)
    return _file_from_header(path, header)


def _file_from_header(path: Path, header: TSyncHeader) -> TSyncFile:
    return TSyncFile(**vars(header), path=path)


def read_tsync(path: str | os.PathLike[str], *, lenient: bool = False) -> TSyncFile:
    """Read a tsync file (current format or either legacy variant) with every checksum verified.

    Strict (default): a damaged data block raises :class:`TSyncCorruptError`/:class:`TSyncChecksumError`
    naming the block. A file that ends inside a block (crashed writer) returns all complete blocks, sets
    ``truncation`` and warns with :class:`TSyncTruncationWarning`. ``lenient=True`` skips damaged blocks
    (listed in ``bad_blocks``) and also returns the whole unverified entries of an unterminated last block.
    """
    path = Path(path)
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        header = _parse_header(file, path, size, lenient)
        result = _file_from_header(path, header)
        if not _read_in_place(file, result, header, size - header.header_bytes, lenient):
            file.seek(header.header_bytes)
            payload = np.fromfile(file, dtype=np.uint8)
            _decode_blocks(result, header, payload, lenient)
    if result.truncation is not None:
        warnings.warn(f"{path}: {result.truncation.describe()}", TSyncTruncationWarning, stacklevel=2)
    return result


_NATIVE_TYPES = frozenset({TSyncDataType.INT64, TSyncDataType.UINT64})
_READV_BYTES = 32 << 20  # bytes per preadv call (its iovec count stays under IOV_MAX as well)


def _read_in_place(file: BinaryIO, result: TSyncFile, header: TSyncHeader, payload_size: int,
                   lenient: bool) -> bool:
    """Read a file whose two columns are 8-byte integers straight into ``result.times``; False if not applicable.

    Such a file's block entries already have the output's layout (16-byte rows of two little-endian int64;
    UINT64 values wrap negative exactly as :func:`_widen` does), so ``preadv`` scatters each block's entries into
    their rows of the output and its terminator and digest into a small side array: no payload copy, no strided
    widening, peak memory the output itself. Blocks are verified as they arrive, in the order and with the
    errors of :func:`_decode_blocks`. Returns False (nothing kept) when the file shrinks while being read, for
    :func:`_decode_blocks` to handle what is there.
    """
    if (sys.byteorder != "little" or not hasattr(os, "preadv") or not set(header.data_types) <= _NATIVE_TYPES
            or payload_size <= 0):
        return False
    path = result.path
    width = 16
    block_size = header.block_size
    payload_bytes = block_size * width
    block_bytes = payload_bytes + TERMINATOR_BYTES
    full_blocks = payload_size // block_bytes
    tail_size = payload_size - full_blocks * block_bytes
    times = np.empty((full_blocks * block_size + tail_size // width, 2), dtype=np.int64)
    trailers = np.empty((full_blocks, 2), dtype="<u8")
    rows_view = memoryview(times.reshape(-1).view(np.uint8))
    trailer_view = memoryview(trailers.reshape(-1).view(np.uint8))
    fd = file.fileno()
    good = np.ones(full_blocks, dtype=bool)
    per_call = max(1, min(_READV_BYTES // block_bytes, 512))
    for first in range(0, full_blocks, per_call):
        last = min(full_blocks, first + per_call)
        buffers: list[memoryview] = []
        for index in range(first, last):
            buffers.append(rows_view[index * payload_bytes:(index + 1) * payload_bytes])
            buffers.append(trailer_view[index * TERMINATOR_BYTES:(index + 1) * TERMINATOR_BYTES])
        if os.preadv(fd, buffers, header.header_bytes + first * block_bytes) != (last - first) * block_bytes:
            result.bad_blocks.clear()
            return False
        for index in range(first, last):
            if int(trailers[index, 0]) != header.block_term:
                _bad_block(result, index, lenient, TSyncCorruptError(
                    f"{path}: data block {index} damaged: block terminator not found", block=index))
                good[index] = False
            elif xxhash.xxh3_64_intdigest(buffers[2 * (index - first)]) != int(trailers[index, 1]):
                _bad_block(result, index, lenient, TSyncChecksumError(
                    f"{path}: data block {index} checksum mismatch", block=index))
                good[index] = False
    tail = os.pread(fd, tail_size, header.header_bytes + full_blocks * block_bytes) if tail_size else b""
    if len(tail) != tail_size:
        result.bad_blocks.clear()
        return False

    last_count = 0
    tail_is_block = False
    if tail_size >= TERMINATOR_BYTES + width and (tail_size - TERMINATOR_BYTES) % width == 0:
        last_count = (tail_size - TERMINATOR_BYTES) // width
        term, digest = struct.unpack("<QQ", tail[-TERMINATOR_BYTES:])
        tail_is_block = term == header.block_term and last_count < block_size
    kept_last = 0
    if tail_is_block:
        if xxhash.xxh3_64_intdigest(tail[:last_count * width]) != digest:
            _bad_block(result, full_blocks, lenient, TSyncChecksumError(
                f"{path}: data block {full_blocks} checksum mismatch (last block)", block=full_blocks))
        else:
            kept_last = last_count
    salvage = 0
    if not tail_is_block and tail_size:
        whole = tail_size // width
        salvage = whole if lenient else 0
        result.truncation = TSyncTruncation(complete_entries=int(good.sum()) * block_size, tail_bytes=tail_size,
                                            whole_entries_in_tail=whole, salvaged_entries=salvage)

    kept_full = full_blocks
    if not good.all():  # lenient: close the gaps the skipped blocks leave, in place
        kept_full = 0
        for index in np.flatnonzero(good).tolist():
            if index != kept_full:
                times[kept_full * block_size:(kept_full + 1) * block_size] = \
                    times[index * block_size:(index + 1) * block_size]
            kept_full += 1
    start = kept_full * block_size
    extra = kept_last + salvage
    if extra:
        times[start:start + extra] = np.frombuffer(tail, dtype="<i8", count=2 * extra).reshape(extra, 2)
    rows = start + extra
    result.times = times if rows == times.shape[0] else times[:rows]
    return True


def _decode_blocks(result: TSyncFile, header: TSyncHeader, payload: np.ndarray, lenient: bool) -> None:
    """Fill ``result.times`` from the data blocks: one numpy view for all full blocks, hashes per block."""
    path = result.path
    entry = _entry_dtype(header.data_types)
    width = entry.itemsize
    block_size = header.block_size
    block_bytes = block_size * width + TERMINATOR_BYTES
    full_blocks = payload.size // block_bytes
    tail = payload[full_blocks * block_bytes:]

    # The tail is a properly terminated short last block if it has the right size and terminator.
    last_count = 0
    tail_is_block = False
    if tail.size >= TERMINATOR_BYTES + width and (tail.size - TERMINATOR_BYTES) % width == 0:
        last_count = (tail.size - TERMINATOR_BYTES) // width
        (term,) = struct.unpack("<Q", tail[tail.size - TERMINATOR_BYTES:tail.size - 8].tobytes())
        tail_is_block = term == header.block_term and last_count < block_size

    raw = memoryview(payload).cast("B") if payload.size else memoryview(b"")
    good = np.ones(full_blocks + (1 if tail_is_block else 0), dtype=bool)
    payload_bytes = block_size * width
    if full_blocks:
        blocks = np.frombuffer(payload, dtype=_block_dtype(entry, block_size), count=full_blocks)
        terms_ok = blocks["term"] == header.block_term
        digests = blocks["digest"]
        for index in range(full_blocks):
            start = index * block_bytes
            if not terms_ok[index]:
                _bad_block(result, index, lenient, TSyncCorruptError(
                    f"{path}: data block {index} damaged: block terminator not found", block=index))
                good[index] = False
            elif xxhash.xxh3_64_intdigest(raw[start:start + payload_bytes]) != int(digests[index]):
                _bad_block(result, index, lenient, TSyncChecksumError(
                    f"{path}: data block {index} checksum mismatch", block=index))
                good[index] = False
    if tail_is_block:
        (digest,) = struct.unpack("<Q", tail[tail.size - 8:].tobytes())
        if xxhash.xxh3_64_intdigest(raw[full_blocks * block_bytes:full_blocks * block_bytes
                                         + last_count * width]) != digest:
            _bad_block(result, full_blocks, lenient, TSyncChecksumError(
                f"{path}: data block {full_blocks} checksum mismatch (last block)", block=full_blocks))
            good[full_blocks] = False

    salvage = 0
    if not tail_is_block and tail.size:
        whole = tail.size // width
        salvage = whole if lenient else 0
        complete = int(good[:full_blocks].sum()) * block_size
        result.truncation = TSyncTruncation(complete_entries=complete, tail_bytes=int(tail.size),
                                            whole_entries_in_tail=int(whole), salvaged_entries=int(salvage))

    kept_full = int(good[:full_blocks].sum())
    kept_last = last_count if tail_is_block and good[-1] else 0
    times = np.empty((kept_full * block_size + kept_last + salvage, 2), dtype=np.int64)
    if kept_full:
        entries = blocks["entries"] if good[:full_blocks].all() else blocks["entries"][good[:full_blocks]]
        grid = times[:kept_full * block_size].reshape(kept_full, block_size, 2)
        _widen(grid[:, :, 0], entries["t1"])
        _widen(grid[:, :, 1], entries["t2"])
    start = kept_full * block_size
    extra = kept_last + salvage
    if extra:
        rows = np.frombuffer(payload, dtype=entry, count=extra, offset=full_blocks * block_bytes)
        _widen(times[start:, 0], rows["t1"])
        _widen(times[start:, 1], rows["t2"])
    result.times = times


def _widen(target: np.ndarray, source: np.ndarray) -> None:
    """Copy into int64; UINT64 values >= 2**63 wrap negative as in the Syntalos and edlio readers."""
    target[...] = source


def _bad_block(result: TSyncFile, index: int, lenient: bool, error: TSyncCorruptError) -> None:
    if not lenient:
        raise error
    result.bad_blocks.append(index)
