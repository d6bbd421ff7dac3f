"""HDF5 writers (h5py) for sampled signals and line readings, and a small reader for what they write.

Layout (documented for plain h5py/pandas users in the README): per file, chunked resizable datasets that grow
in lock-step, one row per sample or reading —

* ``timestamps``: int64 µs on the hwlink master clock;
* ``data``: samples x channels in the source's native dtype;
* line readings also have ``line_ids`` (uint16), where the board has a clock ``device_timestamps`` (int64 µs on
  the device clock, ``INT64_MIN`` where a reading had none), and where ``timestamps`` are clock-synchronized
  the raw host ``arrival_timestamps``;
* signals whose blocks skipped samples get ``sample_gaps`` (rows x 2: row, acquisition sample index).

Rows are copied into preallocated numpy buffers and written to HDF5 in bursts, each burst followed by
``File.flush()``: HDF5 is only touched during a burst, so a killed process leaves a file that opens with
everything up to the last flush. A burst happens when the buffer is full or its oldest row is older than
``flush_interval`` (0.25 s by default; a background thread covers quiet streams).
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Self

import h5py
import numpy as np

from hwlink.edl import flushing
from hwlink.edl.files import ensure_space
from hwlink.errors import HwlinkError

LAYOUT_SIGNALS = "hwlink-signals-1"
LAYOUT_LINE_READINGS = "hwlink-line-readings-1"
MASTER_CLOCK = "hwlink master clock: µs since the run started (CLOCK_MONOTONIC based)"
NO_DEVICE_TIME = np.iinfo(np.int64).min
DEFAULT_FLUSH_INTERVAL = 0.25  # with the flusher's tick, a kill loses well under the README's 0.5 s
_BUFFER_BYTES = 4 << 20
CHUNK_BYTES = 1 << 20
_STRING = h5py.string_dtype()


class SignalWriteError(HwlinkError):
    """Data does not fit the writer (shape, dtype) or the file cannot be written."""


class LineReadingLike(Protocol):
    line_id: int
    value: int
    time_usec: int
    device_time_usec: int | None


class SignalBlockLike(Protocol):
    timestamps: np.ndarray
    data: np.ndarray
    line_ids: tuple[int, ...]
    first_index: int


class _Column:
    """One growing HDF5 dataset and its in-memory buffer."""

    def __init__(self, file: h5py.File, name: str, dtype: np.dtype, width: int | None, buffer_rows: int,
                 chunk_rows: int, compression: str | None, attrs: Mapping[str, Any]) -> None:
        self.dtype = np.dtype(dtype)
        self.width = width
        tail = () if width is None else (width,)
        self.dataset = file.create_dataset(name, shape=(0, *tail), maxshape=(None, *tail), dtype=self.dtype,
                                           chunks=(chunk_rows, *tail), compression=compression)
        for key, value in attrs.items():
            self.dataset.attrs[key] = _attr(value)
        self.buffer = np.empty((buffer_rows, *tail), dtype=self.dtype)
        self.chunk_rows = chunk_rows
        # Without a filter pipeline, whole chunks go to the file as they are (H5Dwrite_chunk): no chunk cache,
        # no read-modify-write of a chunk a burst ends inside. The rows of that last, partial chunk are kept
        # here (padded to a whole chunk) and written again, completed, by the next burst.
        self.partial = None if compression else np.empty((chunk_rows, *tail), dtype=self.dtype)
        self.partial_rows = 0
        self._tail = tail
        self._zeros = (0,) * len(tail)

    def write(self, source: np.ndarray, start: int, count: int) -> None:
        """Write rows ``source[0:count]`` as the dataset's rows ``start:start + count`` (appended in order)."""
        self.dataset.id.set_extent((start + count, *self._tail))
        if self.partial is None or start % self.chunk_rows != self.partial_rows:
            self.dataset.write_direct(source, np.s_[0:count], np.s_[start:start + count])
            self.partial_rows = (start + count) % self.chunk_rows
            if self.partial is not None and self.partial_rows:  # keep the rows a later chunk write repeats
                kept = min(self.partial_rows, count)
                self.partial[self.partial_rows - kept:self.partial_rows] = source[count - kept:count]
                if kept < self.partial_rows:
                    self.partial[:self.partial_rows - kept] = \
                        self.dataset[start + count - self.partial_rows:start + count - kept]
            return
        chunk = self.chunk_rows
        write_chunk = self.dataset.id.write_direct_chunk
        tail = self._zeros
        done = 0
        if self.partial_rows:  # complete the chunk the previous burst ended inside
            take = min(chunk - self.partial_rows, count)
            self.partial[self.partial_rows:self.partial_rows + take] = source[:take]
            write_chunk((start - self.partial_rows, *tail), self.partial)
            done = take
            self.partial_rows += take
            if self.partial_rows < chunk:
                return
        row = start + done
        while count - done >= chunk:
            write_chunk((row, *tail), source[done:done + chunk])
            done += chunk
            row += chunk
        self.partial_rows = count - done
        if self.partial_rows:
            self.partial[:self.partial_rows] = source[done:count]  # the rest: earlier rows, beyond the extent
            write_chunk((row, *tail), self.partial)


_METADATA_SLACK = 64 << 10  # B-tree nodes and object headers a burst may add


def _describe(error: BaseException) -> str:
    """h5py's messages run over several lines of HDF5 internals; the errno says it in a few words."""
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    text = str(error)
    found = re.search(r"error message = '([^']+)'", text)
    if found:
        return found.group(1)
    return text.splitlines()[0] if text else type(error).__name__


def _attr(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, str) for item in value):
        return np.array(value, dtype=_STRING)
    return value


class _ColumnFile:
    """Columns appended in lock-step, buffered and written in bursts followed by a flush."""

    def __init__(self, path: Path, layout: str, columns: Sequence[tuple[str, Any, int | None, Mapping[str, Any]]],
                 root_attrs: Mapping[str, Any], *, flush_interval: float, chunk_rows: int | None,
                 compression: str | None) -> None:
        if flush_interval <= 0:
            raise SignalWriteError(f"flush_interval must be positive, got {flush_interval}")
        self.path = Path(path)
        row_bytes = sum(np.dtype(dtype).itemsize * (width or 1) for _, dtype, width, _ in columns)
        widest = max(np.dtype(dtype).itemsize * (width or 1) for _, dtype, width, _ in columns)
        chunk = chunk_rows or max(256, CHUNK_BYTES // widest)
        rows = max(256, _BUFFER_BYTES // row_bytes)
        # A whole number of chunks where a chunk fits, so each burst writes whole chunks (the last one may be
        # partial); a chunk larger than the buffer leaves the buffer's size as it is.
        self._buffer_rows = rows // chunk * chunk if chunk <= rows else rows
        self._chunk_rows, self._row_bytes = chunk, row_bytes
        try:
            self._file = h5py.File(self.path, "w-")
        except (OSError, ValueError) as error:
            raise SignalWriteError(f"cannot create HDF5 file '{self.path}': {error}") from None
        try:
            self._file.attrs["hwlink_layout"] = layout
            for key, value in root_attrs.items():
                if value is not None:
                    self._file.attrs[key] = _attr(value)
            self._columns = [_Column(self._file, name, dtype, width, self._buffer_rows, chunk, compression, attrs)
                             for name, dtype, width, attrs in columns]
            self._file.flush()
        except BaseException:
            self._file.close()
            raise
        self._lock = threading.Lock()
        self._filled = 0
        self._rows_written = 0
        self._pending_since: float | None = None
        self._flush_interval = flush_interval
        self._closed = False
        self._error: BaseException | None = None
        self.after_write: list[Any] = []

    @property
    def rows(self) -> int:
        return self._rows_written + self._filled

    @property
    def file(self) -> h5py.File:
        return self._file

    def _check(self) -> None:
        if self._error is not None:
            raise SignalWriteError(f"writing '{self.path}' failed earlier: {_describe(self._error)}")
        if self._closed:
            raise SignalWriteError(f"'{self.path}' is closed")

    def append_arrays(self, arrays: Sequence[np.ndarray]) -> None:
        count = arrays[0].shape[0]
        with self._lock:
            self._check()
            if count == 0:
                return
            if self._filled + count > self._buffer_rows:
                self._burst()
                if count > self._buffer_rows:
                    self._write_direct(arrays)
                    return
            start = self._filled
            for column, array in zip(self._columns, arrays, strict=True):
                column.buffer[start:start + count] = array
            self._filled = start + count
            self._after_append()

    def append_row(self, values: Sequence[Any]) -> None:
        with self._lock:
            self._check()
            if self._filled == self._buffer_rows:
                self._burst()
            row = self._filled
            for column, value in zip(self._columns, values, strict=True):
                column.buffer[row] = value
            self._filled = row + 1
            self._after_append()

    def _after_append(self) -> None:
        now = time.monotonic()
        if self._pending_since is None:
            self._pending_since = now
        elif now - self._pending_since >= self._flush_interval:
            self._burst()

    def _space_needed(self, count: int) -> int:
        """Bytes a burst of ``count`` rows can allocate: every chunk it starts, whole, plus metadata."""
        start, end = self._rows_written, self._rows_written + count
        new_chunks = max(0, (end - 1) // self._chunk_rows - -(-start // self._chunk_rows) + 1)
        return new_chunks * self._chunk_rows * self._row_bytes + _METADATA_SLACK

    def _undo_resize(self) -> None:
        """After a failed write, shrink the columns back to the rows that were written (no zero rows)."""
        for column in self._columns:
            try:
                if column.dataset.shape[0] != self._rows_written:
                    column.dataset.resize(self._rows_written, axis=0)
            except Exception:  # noqa: BLE001 - the file is failing already; the error raised is the first one
                pass

    def _write_direct(self, arrays: Sequence[np.ndarray]) -> None:
        count = arrays[0].shape[0]
        try:
            ensure_space(self.path, self._space_needed(count))
        except OSError as error:
            raise self._failed(error) from None
        try:
            for column, array in zip(self._columns, arrays, strict=True):
                column.write(np.ascontiguousarray(array, dtype=column.dtype), self._rows_written, count)
            self._rows_written += count
            self._finish_burst()
        except Exception as error:
            self._undo_resize()
            raise self._failed(error) from error

    def _burst(self) -> None:
        """Write the buffer to HDF5 and flush (called with the lock held)."""
        count = self._filled
        if count:
            try:
                ensure_space(self.path, self._space_needed(count))
            except OSError as error:  # stop before HDF5 meets the full disk: the file stays as last flushed
                raise self._failed(error) from None
        try:
            if count:
                for column in self._columns:
                    column.write(column.buffer, self._rows_written, count)
                self._rows_written += count
                self._filled = 0
            self._finish_burst()
        except Exception as error:
            self._undo_resize()
            raise self._failed(error) from error

    def _failed(self, error: Exception) -> SignalWriteError:
        """Remember the first failure (later appends are refused) and say it in one line."""
        if self._error is None:
            self._error = error
        return SignalWriteError(f"writing '{self.path}' failed: {_describe(self._error)}")

    def _finish_burst(self) -> None:
        for hook in self.after_write:
            hook()
        self._file.flush()
        self._pending_since = None

    def flush(self) -> None:
        with self._lock:
            self._check()
            self._burst()

    def flush_if_due(self) -> None:
        """Called by the flusher thread; errors are kept and raised by the next append or close."""
        with self._lock:
            if self._closed or self._error is not None or self._pending_since is None:
                return
            if time.monotonic() - self._pending_since < self._flush_interval:
                return
            try:
                self._burst()
            except SignalWriteError:
                pass  # kept in self._error

    def close(self) -> None:
        """Write what is buffered and close; raises (once) if any write of this file failed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._error is None:
                try:
                    self._burst()
                except SignalWriteError:
                    pass  # kept in self._error
            try:
                self._file.close()
            except Exception as error:
                self._error = self._error or error
        if self._error is not None:
            raise SignalWriteError(f"writing '{self.path}' failed: {_describe(self._error)}")


class _WriterBase:
    _store: _ColumnFile

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def rows(self) -> int:
        """Rows appended so far (written or buffered)."""
        return self._store.rows

    def flush(self) -> None:
        """Write buffered rows to the file and flush HDF5 now."""
        self._store.flush()

    def flush_if_due(self) -> None:
        self._store.flush_if_due()

    def close(self) -> None:
        flushing.unregister(self)
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _root_attrs(collection_id: uuid.UUID | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"time_unit": "us", "timestamps_clock": MASTER_CLOCK}
    if collection_id is not None:
        attrs["collection_id"] = str(collection_id)
    attrs.update(extra or {})
    return attrs


class SignalWriter(_WriterBase):
    """Samples x channels data with one master-clock timestamp per sample row."""

    def __init__(self, path: str | os.PathLike[str], channel_names: Sequence[str], dtype: Any, *,
                 sample_rate_hz: float | None = None, units: str | Sequence[str] | None = None,
                 line_ids: Sequence[int] | None = None, collection_id: uuid.UUID | None = None,
                 flush_interval: float = DEFAULT_FLUSH_INTERVAL, chunk_rows: int | None = None,
                 compression: str | None = None, attrs: Mapping[str, Any] | None = None) -> None:
        names = [str(name) for name in channel_names]
        if not names:
            raise SignalWriteError("a signal needs at least one channel")
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "iufb":
            raise SignalWriteError(f"signal dtype must be numeric, got {self.dtype}")
        self.channel_names = tuple(names)
        self.line_ids = None if line_ids is None else tuple(int(i) for i in line_ids)
        if self.line_ids is not None and len(self.line_ids) != len(names):
            raise SignalWriteError(f"{len(names)} channel names but {len(self.line_ids)} line ids")
        data_attrs: dict[str, Any] = {"channel_names": names}
        if units is not None:
            data_attrs["units"] = units if isinstance(units, str) else [str(unit) for unit in units]
        if sample_rate_hz is not None:
            data_attrs["sample_rate_hz"] = float(sample_rate_hz)
        if self.line_ids is not None:
            data_attrs["line_ids"] = np.array(self.line_ids, dtype=np.int64)
        root = _root_attrs(collection_id, attrs)
        root.update({"channel_names": names, "sample_rate_hz": None if sample_rate_hz is None
                     else float(sample_rate_hz)})
        self._store = _ColumnFile(
            Path(path), LAYOUT_SIGNALS,
            [("timestamps", np.int64, None, {"unit": "us", "clock": "master"}),
             ("data", self.dtype, len(names), data_attrs)],
            root, flush_interval=flush_interval, chunk_rows=chunk_rows, compression=compression)
        self._next_index: int | None = None
        self._gaps: list[tuple[int, int]] = []
        self._gaps_written = 0
        self._store.after_write.append(self._write_gaps)
        flushing.register(self)

    @property
    def channels(self) -> int:
        return len(self.channel_names)

    def append(self, timestamps_usec: np.ndarray, data: np.ndarray) -> None:
        """Append ``len(timestamps_usec)`` sample rows; ``data`` is samples x channels (1-D for one channel)."""
        timestamps = np.asarray(timestamps_usec)
        samples = np.asarray(data)
        if samples.ndim == 1 and self.channels == 1:
            samples = samples.reshape(-1, 1)
        if timestamps.ndim != 1 or samples.ndim != 2 or samples.shape != (timestamps.shape[0], self.channels):
            raise SignalWriteError(f"expected {timestamps.shape[0] if timestamps.ndim == 1 else '?'} x "
                                   f"{self.channels} samples and 1-D timestamps, got data {samples.shape} and "
                                   f"timestamps {timestamps.shape}")
        if timestamps.dtype.kind not in "iu":
            raise SignalWriteError(f"timestamps must be integer µs, got {timestamps.dtype}")
        if samples.dtype != self.dtype and not np.can_cast(samples.dtype, self.dtype, "same_kind"):
            raise SignalWriteError(f"cannot store {samples.dtype} samples in a {self.dtype} signal")
        self._store.append_arrays((timestamps, samples))

    def append_block(self, block: SignalBlockLike) -> None:
        """Append a SignalBlock; a jump in ``first_index`` is recorded in ``sample_gaps``."""
        if self.line_ids is not None and tuple(block.line_ids) != self.line_ids:
            raise SignalWriteError(f"block has lines {tuple(block.line_ids)}, this signal records {self.line_ids}")
        if self._next_index is None:
            self._store.file.attrs["first_sample_index"] = int(block.first_index)
        elif block.first_index != self._next_index:
            self._gaps.append((self.rows, int(block.first_index)))
        self.append(block.timestamps, block.data)
        self._next_index = int(block.first_index) + int(block.timestamps.shape[0])

    def _write_gaps(self) -> None:
        if len(self._gaps) == self._gaps_written:
            return
        file = self._store.file
        if "sample_gaps" not in file:
            dataset = file.create_dataset("sample_gaps", shape=(0, 2), maxshape=(None, 2), dtype=np.int64,
                                          chunks=(256, 2))
            dataset.attrs["columns"] = np.array(["row", "sample_index"], dtype=_STRING)
        dataset = file["sample_gaps"]
        new = np.array(self._gaps[self._gaps_written:], dtype=np.int64)
        dataset.resize(len(self._gaps), axis=0)
        dataset[self._gaps_written:] = new
        self._gaps_written = len(self._gaps)


class LineReadingWriter(_WriterBase):
    """LineReadings of one or more lines in arrival order (long format: one row per reading).

    ``timestamps`` holds the best master-clock time of each reading: the clock-synchronized time where one is
    given to :meth:`append` (then the raw host arrival time goes to ``arrival_timestamps``), else the
    reading's own ``time_usec``.
    """

    def __init__(self, path: str | os.PathLike[str], line_names: Mapping[int, str], *,
                 device_clock: bool = True, synced: bool = False, value_unit: str = "counts",
                 collection_id: uuid.UUID | None = None, flush_interval: float = DEFAULT_FLUSH_INTERVAL,
                 chunk_rows: int | None = 4096, attrs: Mapping[str, Any] | None = None) -> None:
        self.line_names = {int(line_id): str(name) for line_id, name in line_names.items()}
        self.device_clock = bool(device_clock)
        self.synced = bool(synced)
        root = _root_attrs(collection_id, attrs)
        root["line_ids"] = np.array(list(self.line_names), dtype=np.int64)
        root["line_names"] = list(self.line_names.values())
        root["synced"] = self.synced
        columns: list[tuple[str, Any, int | None, Mapping[str, Any]]] = [
            ("timestamps", np.int64, None, {"unit": "us", "clock": "master"}),
            ("data", np.uint32, 1, {"channel_names": ["value"], "units": value_unit}),
            ("line_ids", np.uint16, None, {}),
        ]
        if self.device_clock:
            columns.append(("device_timestamps", np.int64, None,
                            {"unit": "us", "clock": "device", "missing": NO_DEVICE_TIME}))
        if self.synced:
            columns.append(("arrival_timestamps", np.int64, None, {"unit": "us", "clock": "master"}))
        self._store = _ColumnFile(Path(path), LAYOUT_LINE_READINGS, columns, root, flush_interval=flush_interval,
                                  chunk_rows=chunk_rows, compression=None)
        flushing.register(self)

    def append(self, reading: LineReadingLike, synced_time_usec: int | None = None) -> None:
        """Append one reading (anything with line_id, value, time_usec, device_time_usec); a writer made with
        ``synced=True`` takes the clock-synchronized master time as ``synced_time_usec``."""
        row: list[int] = [reading.time_usec if synced_time_usec is None else synced_time_usec,
                          reading.value, reading.line_id]
        if self.device_clock:
            device = reading.device_time_usec
            row.append(NO_DEVICE_TIME if device is None else device)
        if self.synced:
            if synced_time_usec is None:
                raise SignalWriteError("this line-reading writer records synced times: pass synced_time_usec")
            row.append(reading.time_usec)
        self._store.append_row(row)

    def append_arrays(self, time_usec: np.ndarray, line_ids: np.ndarray, values: np.ndarray,
                      device_time_usec: np.ndarray | None = None,
                      arrival_time_usec: np.ndarray | None = None) -> None:
        """Bulk form of :meth:`append`; ``time_usec`` is the synced time when the writer is ``synced``."""
        arrays = [np.asarray(time_usec, dtype=np.int64), np.asarray(values).reshape(-1, 1),
                  np.asarray(line_ids, dtype=np.uint16)]
        if self.device_clock:
            arrays.append(np.full(arrays[0].shape, NO_DEVICE_TIME, dtype=np.int64) if device_time_usec is None
                          else np.asarray(device_time_usec, dtype=np.int64))
        if self.synced:
            if arrival_time_usec is None:
                raise SignalWriteError("this line-reading writer records synced times: pass arrival_time_usec")
            arrays.append(np.asarray(arrival_time_usec, dtype=np.int64))
        if len({array.shape[0] for array in arrays}) != 1:
            raise SignalWriteError("time, line id, value and device/arrival time arrays differ in length")
        self._store.append_arrays(arrays)


def read_signal_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """All columns of an hwlink HDF5 file as numpy arrays, plus its root attributes under ``"attrs"``."""
    with h5py.File(path, "r") as file:
        result: dict[str, Any] = {name: file[name][()] for name in file if isinstance(file[name], h5py.Dataset)}
        result["attrs"] = {key: _plain_attr(value) for key, value in file.attrs.items()}
    return result


def _plain_attr(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return [item.decode() if isinstance(item, bytes) else str(item) for item in value]
    if isinstance(value, bytes):
        return value.decode()
    return value
