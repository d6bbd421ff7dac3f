"""Offline timestamp correction: map secondary-clock times (or sample indices) to master time after a recording.

Mappings
--------
* :class:`PiecewiseLinearMap` — the engine: linear interpolation between knots ``(secondary, master)``, the first
  and last segments extrapolated with their own slopes. Applying it is one fused multiply-add per value, done in
  cache-sized chunks (sorted input is split at knots with ``searchsorted``, unsorted input falls back to a
  per-value segment lookup), so it runs near memory-copy speed.
* :class:`SyncPointMap` — a SYNCPOINTS tsync file read with the semantics of edlio's Intan loader
  (``edlio.dataio.intan._make_synced_tsvec``): row 0 is the initial offset, master time between rows is linear
  interpolation, and with two rows or fewer only the constant offset of row 0 is applied. For sample indices at
  a rate, a row's sample index is ``trunc(device_us * rate / 1e6)`` as in edlio, so inside the rows hwlink and
  edlio agree exactly. Where edlio is odd, hwlink differs on purpose (:meth:`SyncPointMap.edlio_sample_times`
  reproduces edlio exactly when wanted): samples before the first row are extrapolated (edlio: 0), samples after
  the last row continue the last segment's slope (edlio restarts one sample late with a slope of
  ``Δmaster / (Δindex + 1)``).
* :class:`IndexTable` — a CONTINUOUS tsync file: an exact index -> time table (e.g. frame number -> master µs).

Every mapping is a callable ``mapping(values) -> float64 master µs`` and applies to numpy arrays, a CSV column
(:func:`correct_csv`), an HDF5 dataset (:func:`correct_hdf5`), chunk by chunk with bounded memory.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hwlink.errors import HwlinkError
from hwlink.sync.tsync import TSyncFile, TSyncFileMode, read_tsync

__all__ = [
    "OfflineError", "PiecewiseLinearMap", "SyncPointMap", "IndexTable", "TimeMapping", "load_mapping",
    "correct_csv", "correct_hdf5", "Progress",
]

# Values per chunk when applying a map: small enough that the second pass over a chunk hits the CPU cache.
_APPLY_CHUNK = 1 << 16
# Rows per chunk when correcting files: bounds memory for arbitrarily large inputs.
FILE_CHUNK_ROWS = 1 << 20

# int64 sentinel hwlink's HDF5 files use for "no device time" (hwlink.edl.NO_DEVICE_TIME); mapped to NaN.
_NO_TIME = np.iinfo(np.int64).min

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a file is corrected."""


class OfflineError(HwlinkError, ValueError):
    """A mapping cannot be built or applied (wrong tsync mode, non-monotonic rows, missing column...)."""


class TimeMapping(Protocol):
    def __call__(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...


class PiecewiseLinearMap:
    """Secondary -> master by linear interpolation between knots; end segments extrapolated.

    With a single knot the map is ``master = knot_master + slope * (secondary - knot_secondary)``, with
    ``single_slope`` (1 by default: a pure offset).
    """

    def __init__(self, secondary: Any, master: Any, *, single_slope: float = 1.0) -> None:
        knots_x = np.asarray(secondary, dtype=np.float64).reshape(-1)
        knots_y = np.asarray(master, dtype=np.float64).reshape(-1)
        if knots_x.size == 0 or knots_x.size != knots_y.size:
            raise OfflineError(f"a time map needs matching, non-empty knots (got {knots_x.size} and {knots_y.size})")
        if not (np.all(np.isfinite(knots_x)) and np.all(np.isfinite(knots_y))):
            raise OfflineError("time map knots must be finite")
        steps = np.diff(knots_x)
        if np.any(steps <= 0):
            bad = int(np.argmax(steps <= 0)) + 1
            raise OfflineError(f"time map knots must increase strictly: knot {bad} ({knots_x[bad]:.6g}) "
                               f"does not come after {knots_x[bad - 1]:.6g}")
        self.secondary = knots_x
        self.master = knots_y
        if knots_x.size == 1:
            self.slopes = np.array([float(single_slope)])
        else:
            self.slopes = np.diff(knots_y) / steps
        # Segment k covers [secondary[k], secondary[k+1]); its line is master = slope * t + intercept.
        self.intercepts = knots_y[:self.slopes.size] - self.slopes * knots_x[:self.slopes.size]
        self._inner = knots_x[1:-1]  # boundaries between segments
        self._bins = _SegmentBins(self._inner)

    def __len__(self) -> int:
        return int(self.secondary.size)

    def __repr__(self) -> str:
        return f"PiecewiseLinearMap({self.secondary.size} knots, drift {self.drift_ppm:+.3f} ppm)"

    @property
    def drift_ppm(self) -> float:
        """Overall rate error of the secondary clock against master (positive: secondary runs fast)."""
        if self.secondary.size == 1:
            slope = float(self.slopes[0])
        else:
            slope = (self.master[-1] - self.master[0]) / (self.secondary[-1] - self.secondary[0])
        return (1.0 / slope - 1.0) * 1e6

    def __call__(self, values: Any, out: np.ndarray | None = None, *, assume_sorted: bool = False) -> np.ndarray:
        """Master times (float64) of ``values``; ``out`` may be given (and may be ``values`` if float64).

        Each chunk's min and max decide which segments it touches, so any order is handled. Callers whose
        values are ascending by construction (sample indices, a monotonic clock's stamps) may pass
        ``assume_sorted=True`` to skip that check (about a third faster); unsorted values then map wrongly.
        """
        source = np.asarray(values)
        if source.dtype.kind not in "iuf":
            raise OfflineError(f"cannot map values of type {source.dtype}")
        if out is None:
            out = np.empty(source.shape, dtype=np.float64)
        elif out.shape != source.shape or out.dtype != np.float64:
            raise OfflineError("out must be a float64 array of the input's shape")
        flat_in, flat_out = source.reshape(-1), out.reshape(-1)
        if self.slopes.size == 1:
            _affine(flat_in, float(self.slopes[0]), float(self.intercepts[0]), flat_out)
            return out
        for start in range(0, flat_in.size, _APPLY_CHUNK):
            chunk = flat_in[start:start + _APPLY_CHUNK]
            target = flat_out[start:start + _APPLY_CHUNK]
            low, high = (chunk[0], chunk[-1]) if assume_sorted else (chunk.min(), chunk.max())
            first = int(np.searchsorted(self._inner, low, side="right"))
            last = int(np.searchsorted(self._inner, high, side="right"))
            if first == last:  # the whole chunk lies in one segment, sorted or not (the usual case)
                _affine(chunk, float(self.slopes[first]), float(self.intercepts[first]), target)
            elif assume_sorted or bool(np.all(chunk[1:] >= chunk[:-1])):
                self._split_sorted(chunk, target, first, last)
            else:  # unsorted across a knot: look up each value's segment
                segment = self._bins.segments(chunk)
                np.multiply(chunk, self.slopes[segment], out=target)
                target += self.intercepts[segment]
        return out

    def _split_sorted(self, chunk: np.ndarray, target: np.ndarray, first: int, last: int) -> None:
        cuts = np.searchsorted(chunk, self._inner[first:last], side="left")
        begin = 0
        for segment, end in zip(range(first, last + 1), [*cuts.tolist(), chunk.size], strict=True):
            if end > begin:
                _affine(chunk[begin:end], float(self.slopes[segment]), float(self.intercepts[segment]),
                        target[begin:end])
            begin = end

    def to_tsync_rows(self) -> np.ndarray:
        """Knots as integer (secondary, master) rows; at least 3, so edlio keeps the slope (it drops it for 2)."""
        knots_x, knots_y = self.secondary, self.master
        if knots_x.size < 3:
            ends = (knots_x[0], knots_x[0] + 1e6) if knots_x.size == 1 else (knots_x[0], knots_x[-1])
            knots_x = np.array([ends[0], (ends[0] + ends[1]) / 2, ends[1]])
            knots_y = self(knots_x)
        return np.stack([np.rint(knots_x), np.rint(knots_y)], axis=1).astype(np.int64)


class _SegmentBins:
    """Segment index of unsorted values without a binary search per value.

    Equal-width bins, each mapped to the segment its start lies in; a value's segment is that one or up to
    ``steps`` further on (the most knots one bin holds), found by as many vectorised comparisons with the next
    knot, plus one back for a value rounded into the next bin. The table has at most ``_MAX_BINS`` entries so the
    random lookups of unsorted values stay in cache (a table sized by the closest two knots grew to megabytes
    for knots a few ms apart in an hour-long map, and missed the cache on every value). Knots too clustered for
    a few steps fall back to ``searchsorted``.
    """

    _MAX_BINS = 1 << 16
    _MAX_STEPS = 4
    _BLOCK = 8192

    def __init__(self, inner: np.ndarray) -> None:
        self.inner = inner
        self.table: np.ndarray | None = None
        if inner.size < 2:
            return
        span = float(inner[-1] - inner[0])
        spacing = float(np.diff(inner).min())
        if not (span > 0 and spacing > 0):
            return
        bins = int(min(span / spacing + 2, self._MAX_BINS))
        self.low = float(inner[0])
        self.scale = (bins - 1) / span
        starts = self.low + np.arange(bins) / self.scale
        table = np.searchsorted(inner, starts, side="right")
        steps = int(np.diff(np.append(table, inner.size)).max())
        if steps > self._MAX_STEPS:
            return
        self.steps = max(steps, 1)
        self.table = table.astype(np.intp)
        # Segment s is [padded[s], padded[s + 1]); NaN ends compare False, so ±inf values land in the end segments.
        self.padded = np.concatenate([[np.nan], inner, [np.nan]])
        self.padded_next = self.padded[1:]  # padded_next[s] is segment s's end

    def segments(self, values: np.ndarray) -> np.ndarray:
        if self.table is None:
            return np.searchsorted(self.inner, values, side="right")
        result = np.empty(values.shape, dtype=np.intp)
        for start in range(0, values.size, self._BLOCK):  # temporaries of a block stay in L2
            part = values[start:start + self._BLOCK]
            position = (part - self.low) * self.scale
            np.fmax(position, 0, out=position)  # fmax/fmin also turn NaN into a valid bin (its result stays NaN)
            np.fmin(position, self.table.size - 1, out=position)
            guess = np.take(self.table, position.astype(np.intp))  # take: faster than fancy indexing
            guess -= part < np.take(self.padded, guess)
            for _ in range(self.steps):
                guess += part >= np.take(self.padded_next, guess)
            result[start:start + self._BLOCK] = guess
        return result


def _affine(source: np.ndarray, slope: float, intercept: float, target: np.ndarray) -> None:
    """target = source * slope + intercept, in chunks so the second pass stays in cache."""
    convert = source.dtype != np.float64
    for start in range(0, source.size, _APPLY_CHUNK):
        piece = target[start:start + _APPLY_CHUNK]
        if convert:  # a plain cast first: mixed-type ufuncs buffer and run at half speed
            piece[...] = source[start:start + _APPLY_CHUNK]
            piece *= slope
        else:
            np.multiply(source[start:start + _APPLY_CHUNK], slope, out=piece)
        piece += intercept


def _usec_column(tsync: TSyncFile, column: int) -> np.ndarray:
    unit = tsync.time_units[column]
    scale = unit.usec_per_unit
    if scale is None:
        raise OfflineError(f"{tsync.path}: column {tsync.time_names[column]!r} is an index, not a time")
    values = tsync.times[:, column].astype(np.float64)
    return values if scale == 1.0 else values * scale


@dataclass
class SyncPointMap:
    """A SYNCPOINTS tsync file as a secondary -> master mapping, with edlio's Intan-loader semantics.

    ``rows`` are ``(secondary_us, master_us)`` pairs as float64 (converted from the file's units).
    """

    rows: np.ndarray
    source: str = ""

    @classmethod
    def from_tsync(cls, tsync: TSyncFile | str | os.PathLike[str]) -> SyncPointMap:
        file = tsync if isinstance(tsync, TSyncFile) else read_tsync(tsync)
        if file.mode != TSyncFileMode.SYNCPOINTS:
            raise OfflineError(f"{file.path}: tsync file is {file.mode.name}, not SYNCPOINTS "
                               "(use an index table for CONTINUOUS files)")
        if len(file) == 0:
            raise OfflineError(f"{file.path}: tsync file has no sync points")
        rows = np.stack([_usec_column(file, 0), _usec_column(file, 1)], axis=1)
        return cls(rows=rows, source=str(file.path))

    @property
    def initial_offset_us(self) -> float:
        """Row 0's secondary minus master time (the device-to-master offset at the start)."""
        return float(self.rows[0, 0] - self.rows[0, 1])

    def time_map(self) -> PiecewiseLinearMap:
        """Secondary time (µs) -> master µs."""
        if self.rows.shape[0] <= 2:
            return PiecewiseLinearMap(self.rows[:1, 0], self.rows[:1, 1])
        return PiecewiseLinearMap(self.rows[:, 0], self.rows[:, 1])

    def sample_map(self, rate_hz: float) -> PiecewiseLinearMap:
        """Sample index at ``rate_hz`` -> master µs, rows placed at edlio's truncated sample indices."""
        if not rate_hz > 0:
            raise OfflineError(f"sample rate must be positive, got {rate_hz}")
        if self.rows.shape[0] <= 2:
            return PiecewiseLinearMap([0.0], [-self.initial_offset_us], single_slope=1e6 / rate_hz)
        indices = self.row_sample_indices(rate_hz).astype(np.float64)
        keep = np.append(indices[1:] != indices[:-1], True)  # a repeated index: the later row wins (as edlio)
        try:
            return PiecewiseLinearMap(indices[keep], self.rows[keep, 1])
        except OfflineError as error:
            raise OfflineError(f"{self.source or 'sync points'}: {error}") from None

    def row_sample_indices(self, rate_hz: float) -> np.ndarray:
        """Sample index of each row as edlio computes it: truncation of ``secondary_us * rate / 1e6``."""
        return (self.rows[:, 0] / 1e6 * rate_hz).astype(np.int32).astype(np.int64)

    def sample_times(self, count: int, rate_hz: float, *, first_index: int = 0) -> np.ndarray:
        """Master µs of samples ``first_index .. first_index + count - 1``."""
        indices = np.arange(first_index, first_index + count, dtype=np.float64)
        return self.sample_map(rate_hz)(indices, out=indices, assume_sorted=True)

    def edlio_sample_times(self, count: int, rate_hz: float) -> np.ndarray:
        """Exactly what edlio 0.3.4's Intan loader computes (in µs), quirks included; for comparison."""
        if self.rows.shape[0] <= 2:
            return np.arange(count, dtype=np.float64) / rate_hz * 1e6 - self.initial_offset_us
        result = np.zeros(count, dtype=np.float64)
        indices = self.row_sample_indices(rate_hz)
        masters = self.rows[:, 1]
        for i in range(indices.size - 1):
            start, end = int(indices[i]), int(indices[i + 1]) + 1
            if end > count:
                end = count
                result[start:end] = np.linspace(masters[i], masters[i + 1], max(end - start, 0))
                break
            result[start:end] = np.linspace(masters[i], masters[i + 1], end - start)
            if i == indices.size - 2:
                slope = (masters[i + 1] - masters[i]) / (end - start)
                result[end:] = (np.arange(end, count) - end) * slope + result[end - 1]
        return result


@dataclass
class IndexTable:
    """A CONTINUOUS tsync file: exact index (time1) -> time2 in µs (e.g. frame number -> master time)."""

    indices: np.ndarray
    times_us: np.ndarray
    source: str = ""

    @classmethod
    def from_tsync(cls, tsync: TSyncFile | str | os.PathLike[str]) -> IndexTable:
        file = tsync if isinstance(tsync, TSyncFile) else read_tsync(tsync)
        if file.mode != TSyncFileMode.CONTINUOUS:
            raise OfflineError(f"{file.path}: tsync file is {file.mode.name}, not CONTINUOUS")
        order = np.argsort(file.time1, kind="stable")
        indices = file.time1[order]
        if indices.size > 1 and np.any(indices[1:] == indices[:-1]):
            raise OfflineError(f"{file.path}: index column {file.time_names[0]!r} has repeated values")
        return cls(indices=indices, times_us=_usec_column(file, 1)[order], source=str(file.path))

    def __call__(self, values: Any, out: np.ndarray | None = None) -> np.ndarray:
        wanted = np.asarray(values)
        if wanted.dtype.kind == "f":
            if not np.array_equal(wanted, np.trunc(wanted)):
                raise OfflineError("index values must be whole numbers")
        elif wanted.dtype.kind not in "iu":
            raise OfflineError(f"cannot look up indices of type {wanted.dtype}")
        if out is None:
            out = np.empty(wanted.shape, dtype=np.float64)
        if self.indices.size == 0:
            if wanted.size:
                raise OfflineError(f"{self.source}: the index table is empty")
            return out
        first = int(self.indices[0])
        contiguous = int(self.indices[-1]) - first + 1 == self.indices.size
        if contiguous:
            position = wanted.astype(np.int64) - first
            found = (position >= 0) & (position < self.indices.size)
        else:
            position = np.searchsorted(self.indices, wanted.astype(np.int64))
            position = np.minimum(position, self.indices.size - 1)
            found = self.indices[position] == wanted
        if not np.all(found):
            missing = wanted.reshape(-1)[np.argmin(found.reshape(-1))]
            raise OfflineError(f"{self.source}: index {int(missing)} is not in the table "
                               f"({self.indices.size} entries, {first}..{int(self.indices[-1])})")
        np.take(self.times_us, position, out=out)
        return out


def load_mapping(path: str | os.PathLike[str], *, rate_hz: float | None = None) -> TimeMapping:
    """The mapping a tsync file stands for: SYNCPOINTS -> time (or sample, with ``rate_hz``) map,
    CONTINUOUS -> index table."""
    file = read_tsync(path)
    if file.mode == TSyncFileMode.CONTINUOUS:
        if rate_hz is not None:
            raise OfflineError(f"{path}: a CONTINUOUS tsync file maps indices directly; --rate does not apply")
        return IndexTable.from_tsync(file)
    points = SyncPointMap.from_tsync(file)
    return points.sample_map(rate_hz) if rate_hz is not None else points.time_map()


# ----------------------------------------------------------------------------------------------------------
# Files

def _sniff_delimiter(header_line: str) -> str:
    """EDL tables use ';' (Syntalos), most other tools ','; tabs are accepted too."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _column_position(header: list[str], column: str | int, path: Path) -> int:
    if isinstance(column, int) or (isinstance(column, str) and column.isdigit() and column not in header):
        position = int(column)
        if not 0 <= position < len(header):
            raise OfflineError(f"{path}: column {position} does not exist ({len(header)} columns)")
        return position
    if column not in header:
        raise OfflineError(f"{path}: no column {column!r} (columns: {', '.join(header)})")
    return header.index(column)


def _row_chunks(reader: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    chunk: list[list[str]] = []
    for row in reader:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def correct_csv(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    column: str | int,
    mapping: TimeMapping,
    *,
    new_column: str | None = None,
    scale: float = 1.0,
    decimals: int = 3,
    delimiter: str | None = None,
    chunk_rows: int = FILE_CHUNK_ROWS,
    progress: Progress | None = None,
) -> int:
    """Write ``target``: ``source`` with ``column`` mapped to master µs (replaced, or added as ``new_column``).

    Values are multiplied by ``scale`` before mapping (e.g. 1000 for a millisecond column). Returns the row
    count. Rows are processed ``chunk_rows`` at a time, so memory stays bounded.
    """
    source, target = Path(source), Path(target)
    total = source.stat().st_size
    with open(source, newline="", encoding="utf-8") as input_file, \
            open(target, "w", newline="", encoding="utf-8") as output_file:
        first_line = input_file.readline()
        if not first_line.strip():
            raise OfflineError(f"{source}: empty CSV file (a header line is needed)")
        sep = delimiter or _sniff_delimiter(first_line)
        header = next(csv.reader([first_line], delimiter=sep))
        position = _column_position(header, column, source)
        writer = csv.writer(output_file, delimiter=sep, lineterminator="\n")
        # The corrected values are master µs, whatever unit the column had: a replaced column says so in its name.
        writer.writerow(header + [new_column] if new_column else
                        header[:position] + [master_column_name(header[position])] + header[position + 1:])
        rows_done = 0
        line_number = 1
        for chunk in _row_chunks(csv.reader(input_file, delimiter=sep), chunk_rows):
            try:
                values = np.array([row[position] for row in chunk], dtype=np.float64)
            except (IndexError, ValueError):
                bad = next(i for i, row in enumerate(chunk) if not _is_number_at(row, position))
                raise OfflineError(f"{source}: line {line_number + bad + 1}: column {header[position]!r} "
                                   f"is not a number: {chunk[bad]!r}") from None
            if scale != 1.0:
                values *= scale
            corrected = mapping(values)
            texts = [f"{value:.{decimals}f}" for value in corrected.tolist()]
            for row, text in zip(chunk, texts, strict=True):
                if new_column:
                    row.append(text)
                else:
                    row[position] = text
            writer.writerows(chunk)
            rows_done += len(chunk)
            line_number += len(chunk)
            if progress is not None:
                progress(min(input_file.buffer.tell(), total), total)
    return rows_done


def master_column_name(name: str) -> str:
    """The header of a column replaced by its master-clock µs values: ``Time`` -> ``Time_master_us``."""
    return name if name.endswith("_master_us") else f"{name}_master_us"


def _is_number_at(row: list[str], position: int) -> bool:
    try:
        float(row[position])
    except (IndexError, ValueError):
        return False
    return True


def correct_hdf5(
    path: str | os.PathLike[str],
    dataset: str,
    mapping: TimeMapping,
    *,
    out_dataset: str | None = None,
    column: int | None = None,
    scale: float = 1.0,
    chunk_rows: int = FILE_CHUNK_ROWS,
    progress: Progress | None = None,
) -> str:
    """Map an HDF5 dataset (1-D, or one ``column`` of a 2-D one) to master µs into a new float64 dataset.

    The source stays untouched; the result goes to ``out_dataset`` (default ``<dataset>_master_us``) in the same
    file, with attributes naming the unit and the source; int64 rows holding INT64_MIN ("no time") become NaN.
    Returns the new dataset's name.
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "r+") as file:
        if dataset not in file or not isinstance(file[dataset], h5py.Dataset):
            raise OfflineError(f"{path}: no dataset {dataset!r}")
        data = file[dataset]
        if data.ndim == 2 and column is None:
            raise OfflineError(f"{path}:{dataset} is 2-D {data.shape}: choose a column")
        if data.ndim not in (1, 2) or (data.ndim == 1 and column is not None):
            raise OfflineError(f"{path}:{dataset} has shape {data.shape}; expected 1-D (or 2-D with a column)")
        if data.ndim == 2 and not 0 <= column < data.shape[1]:
            raise OfflineError(f"{path}:{dataset}: column {column} does not exist ({data.shape[1]} columns)")
        if data.dtype.kind not in "iuf":
            raise OfflineError(f"{path}:{dataset} holds {data.dtype}, not numbers")
        name = out_dataset or f"{dataset.rstrip('/')}_master_us"
        if name in file:
            raise OfflineError(f"{path}: dataset {name!r} exists already (choose another output name)")
        count = data.shape[0]
        result = file.create_dataset(name, shape=(count,), dtype=np.float64,
                                     chunks=(min(max(count, 1), 1 << 16),) if count else None)
        buffer = np.empty(min(chunk_rows, max(count, 1)), dtype=np.float64)
        for start in range(0, count, chunk_rows):
            stop = min(start + chunk_rows, count)
            piece = buffer[:stop - start]
            raw = data[start:stop] if data.ndim == 1 else data[start:stop, column]
            piece[...] = raw
            if scale != 1.0:
                piece *= scale
            mapping(piece, out=piece)
            if raw.dtype == np.int64:
                piece[raw == _NO_TIME] = np.nan  # rows without a device time stay without a time
            result[start:stop] = piece
            if progress is not None:
                progress(stop, count)
        result.attrs["unit"] = "us"
        result.attrs["source_dataset"] = dataset if column is None else f"{dataset}[:, {column}]"
        result.attrs["description"] = "master-clock time (µs) computed by hwlink offline correction"
    return name
