"""Export an EDL collection (hwlink's ``record``/``run``, or Syntalos') to an NWB file with pynwb (extra ``[nwb]``).

What goes where:

* HDF5 signals (``SignalWriter`` files: samples x channels, one master timestamp per row) -> an acquisition
  ``TimeSeries`` per dataset, with the file's units (``volts`` for NI voltages; otherwise the codes as they are,
  ``conversion`` 1, unless the dataset says how many volts a code is: attribute ``volts_per_code``) and the
  timestamps; the channel names go in the description.
* HDF5 line readings (``LineReadingWriter`` files) -> a ``TimeSeries`` per line (values at their timestamps). A
  digital line (dataset ``mode`` digital-in, or only 0/1 values) also gets ``TimeIntervals`` of its high periods.
* CSV tables (event tables of ``record``, recorder tables of ``run``, Syntalos tables) -> ``DynamicTable`` s in the
  processing module ``tables`` (columns typed int, float or text as their cells allow). ``record``'s digital line
  tables also give a level ``TimeSeries`` and high-period ``TimeIntervals``.
* tsync files (a dataset's clock sync, or standalone) -> the correction itself, as a ``DynamicTable`` of sync
  points in the processing module ``clock_sync``. Every timestamp in the file is master time (hwlink writes the
  clock-synchronized time; the sync points say how it was obtained and let it be redone).

Timestamps are master-clock µs / 1e6, relative to ``session_start_time``, which is the collection's wall-clock
anchor of the master clock when it has one, else its creation time (reported as a note: then the offset between
the two is unknown). Large arrays are streamed in chunks (bounded memory), gzip-compressed where a trial chunk
shows it pays.
"""

from __future__ import annotations

import datetime
import os
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hwlink.edl import Collection, Dataset, Group, load, read_table
from hwlink.errors import HwlinkError
from hwlink.sync.tsync import read_tsync

__all__ = ["ExportError", "ExportReport", "NwbMetadata", "export_nwb", "ANCHOR_ATTRIBUTES"]

# Attributes that may hold the UTC wall-clock time of the master clock's zero, most specific first.
ANCHOR_ATTRIBUTES = ("clock_start_utc", "clock_start_utc_usec", "master_clock_start_utc", "wall_clock_anchor_utc")
CHUNK_BYTES = 8 << 20  # rows read and written per step: memory stays bounded whatever the file size
TRIAL_ROWS = 65_536  # rows compressed on trial to decide whether gzip pays
COMPRESS_RATIO = 0.6  # gzip a dataset when a trial chunk shrinks below this share (less saves too little
# for the time it costs: ~10 MB/s per core)
SEX = ("M", "F", "U", "O")
ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?(/.*)?$")

Progress = Callable[[int], None]  # called with the number of bytes just written


class ExportError(HwlinkError):
    """The collection cannot be exported as asked (missing metadata, unreadable data)."""


@dataclass
class NwbMetadata:
    """Session and subject fields; empty ones are taken from the collection's attributes where present."""

    session_description: str | None = None
    identifier: str | None = None
    session_id: str | None = None
    session_start_time: datetime.datetime | None = None
    experimenter: list[str] = field(default_factory=list)
    lab: str | None = None
    institution: str | None = None
    subject_id: str | None = None
    species: str | None = None
    sex: str | None = None
    age: str | None = None
    subject_description: str | None = None


@dataclass
class ExportReport:
    path: Path
    series: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    sync_tables: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bytes_written: int = 0


def _pynwb() -> Any:
    try:
        import pynwb
    except ImportError:
        raise ExportError("NWB export needs pynwb: pip install 'hwlink[nwb]'") from None
    return pynwb


# ----- metadata ---------------------------------------------------------------------------------------------
def _attribute(attributes: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = attributes.get(name)
        if value not in (None, ""):
            return value
    return None


def _as_datetime(value: Any, what: str) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):  # µs since 1970 UTC (clock_start_utc_usec)
        result = datetime.datetime.fromtimestamp(value / 1e6, tz=datetime.UTC)
    else:
        try:
            result = datetime.datetime.fromisoformat(str(value))
        except ValueError:
            raise ExportError(f"{what} {value!r} is not an ISO 8601 date and time") from None
    if result.tzinfo is None:
        raise ExportError(f"{what} {value!r} has no time zone (NWB needs one, e.g. 2024-05-01T10:00:00+02:00)")
    return result


def resolve_metadata(collection: Collection, given: NwbMetadata, notes: list[str]) -> NwbMetadata:
    """Fill ``given`` from the collection's attributes and check what NWB requires; clear errors otherwise."""
    attributes = dict(collection.attributes)
    subject = attributes.get("subject") if isinstance(attributes.get("subject"), dict) else {}
    meta = NwbMetadata(**given.__dict__)
    if meta.session_start_time is None:
        anchor = _attribute(attributes, *ANCHOR_ATTRIBUTES)
        if anchor is not None:
            meta.session_start_time = _as_datetime(anchor, "the collection's wall-clock anchor")
        elif collection.time_created is not None:
            meta.session_start_time = collection.time_created
            notes.append("session_start_time: the collection has no wall-clock anchor of its master clock; its "
                         "creation time is used, so NWB times are master-clock times counted from an instant "
                         "close to, but not exactly, that time")
        else:
            raise ExportError("NWB needs session_start_time: the collection has neither a wall-clock anchor nor "
                              "a creation time; give --session-start")
    meta.session_start_time = _as_datetime(meta.session_start_time, "session start")
    meta.session_description = meta.session_description or _attribute(attributes, "session_description",
                                                                       "description")
    if not meta.session_description:
        source = attributes.get("board") or collection.generator or "an EDL collection"
        meta.session_description = f"{collection.name}: recorded with {source}"
    meta.identifier = meta.identifier or str(collection.collection_id or uuid.uuid4())
    meta.session_id = meta.session_id or _attribute(attributes, "session_id") or collection.name
    if not meta.experimenter:
        found = _attribute(attributes, "experimenter")
        meta.experimenter = [found] if isinstance(found, str) else list(found or [])
    meta.lab = meta.lab or _attribute(attributes, "lab")
    meta.institution = meta.institution or _attribute(attributes, "institution")
    meta.subject_id = meta.subject_id or _attribute(subject, "id", "subject_id") or \
        _attribute(attributes, "subject_id")
    meta.species = meta.species or _attribute(subject, "species") or _attribute(attributes, "species")
    meta.sex = meta.sex or _attribute(subject, "sex") or _attribute(attributes, "sex")
    meta.age = meta.age or _attribute(subject, "age") or _attribute(attributes, "age")
    described = any((meta.species, meta.sex, meta.age, meta.subject_description))
    if described and not meta.subject_id:
        raise ExportError("NWB's Subject needs a subject id: give --subject-id (species, sex and age describe a "
                          "subject)")
    if meta.sex is not None and meta.sex not in SEX:
        raise ExportError(f"--sex must be one of {', '.join(SEX)} (NWB's codes), got {meta.sex!r}")
    if meta.age is not None and not ISO_DURATION.match(str(meta.age)):
        raise ExportError(f"--age must be an ISO 8601 duration such as P90D or P12W, got {meta.age!r}")
    return meta


# ----- streaming writes -------------------------------------------------------------------------------------
def _chunk_rows(row_bytes: int) -> int:
    return max(1, CHUNK_BYTES // max(1, row_bytes))


def _iterator(source: h5py.Dataset, transform: Callable[[np.ndarray], np.ndarray] | None, dtype: np.dtype,
              progress: Progress | None) -> Any:
    """A chunk-by-chunk reader of an HDF5 dataset (optionally transformed), for hdmf to write as it goes."""
    from hdmf.data_utils import GenericDataChunkIterator

    class Chunks(GenericDataChunkIterator):
        def __init__(self) -> None:
            self._source = source
            row_bytes = int(np.prod(source.shape[1:], dtype=np.int64)) * dtype.itemsize
            rows = max(1, min(source.shape[0], _chunk_rows(row_bytes)))
            shape = (rows, *source.shape[1:])
            super().__init__(buffer_shape=shape, chunk_shape=shape)

        def _get_data(self, selection: tuple[slice, ...]) -> np.ndarray:
            block = self._source[selection]
            block = transform(block) if transform is not None else block
            if progress is not None:
                progress(block.nbytes)
            return np.asarray(block, dtype=dtype)

        def _get_maxshape(self) -> tuple[int, ...]:
            return tuple(self._source.shape)

        def _get_dtype(self) -> np.dtype:
            return dtype

    return Chunks()


def _compression_pays(sample: np.ndarray) -> bool:
    raw = np.ascontiguousarray(sample)
    if raw.nbytes < 4096:
        return False
    shuffled = raw.view(np.uint8).reshape(-1, raw.dtype.itemsize).T.tobytes()  # as HDF5's shuffle filter does
    return len(zlib.compress(shuffled, 1)) < COMPRESS_RATIO * raw.nbytes


def _wrapped(source: h5py.Dataset, transform: Callable[[np.ndarray], np.ndarray] | None, dtype: Any,
             progress: Progress | None) -> Any:
    """Data for pynwb: small arrays as they are, large ones streamed; gzip (with shuffle) where it pays."""
    from hdmf.backends.hdf5 import H5DataIO

    dtype = np.dtype(dtype)
    if source.shape[0] == 0:
        return np.zeros(source.shape, dtype=dtype)
    trial = source[: min(source.shape[0], TRIAL_ROWS)]
    trial = np.asarray(transform(trial) if transform is not None else trial, dtype=dtype)
    compress = _compression_pays(trial)
    data = _iterator(source, transform, dtype, progress)
    if compress:
        return H5DataIO(data=data, compression="gzip", compression_opts=1, shuffle=True)
    return H5DataIO(data=data)


def _usec_to_s(block: np.ndarray) -> np.ndarray:
    return np.asarray(block, dtype=np.float64) / 1e6


# ----- the export -------------------------------------------------------------------------------------------
class _Exporter:
    def __init__(self, collection: Collection, nwbfile: Any, report: ExportReport, progress: Progress | None,
                 sources: list[h5py.File]) -> None:
        self.pynwb = _pynwb()
        self.collection = collection
        self.nwb = nwbfile
        self.report = report
        self.progress = progress
        self.sources = sources
        self._modules: dict[str, Any] = {}
        self._names: set[str] = set()

    def module(self, name: str, description: str) -> Any:
        if name not in self._modules:
            self._modules[name] = self.nwb.create_processing_module(name=name, description=description)
        return self._modules[name]

    def unique(self, name: str) -> str:
        base = re.sub(r"[/:]", "_", name) or "data"
        candidate, number = base, 2
        while candidate in self._names:
            candidate, number = f"{base}_{number}", number + 1
        self._names.add(candidate)
        return candidate

    def run(self) -> None:
        for dataset in _datasets(self.collection):
            try:
                self.dataset(dataset, str(dataset.unit_path).strip("/") or dataset.name)
            except ExportError:
                raise
            except (OSError, KeyError, ValueError) as error:
                raise ExportError(f"{dataset.path}: cannot export: {error}") from None

    def dataset(self, dataset: Dataset, where: str) -> None:
        label = where.replace("/", "_")
        data = dataset.data
        if data is not None and data.parts:
            for part in data.part_paths():
                suffix = part.suffix.lower()
                if not part.exists():
                    self.report.notes.append(f"{where}: {part.name} is missing; skipped")
                elif suffix in (".h5", ".hdf5"):
                    self.hdf5(part, dataset, label)
                elif suffix in (".csv", ".tsv", ".txt"):
                    self.table(part, dataset, label)
                elif suffix != ".tsync":  # tsync data files are exported with the clock sync below
                    self.report.notes.append(f"{where}: {part.name}: {suffix or 'untyped'} files are not exported")
        for aux in dataset.aux_data:
            for part in aux.part_paths():
                if part.suffix.lower() == ".tsync" and part.exists():
                    self.tsync(part, f"{label}_{part.stem}")
        if data is not None:
            for part in data.part_paths():
                if part.suffix.lower() == ".tsync" and part.exists():
                    self.tsync(part, label)

    # -- HDF5 ---------------------------------------------------------------------------------------------
    def hdf5(self, path: Path, dataset: Dataset, label: str) -> None:
        source = h5py.File(path, "r")
        self.sources.append(source)
        layout = source.attrs.get("hwlink_layout")
        layout = layout.decode() if isinstance(layout, bytes) else layout
        if "timestamps" not in source or "data" not in source:
            self.report.notes.append(f"{label}: {path.name} has no timestamps/data (frames and other HDF5 "
                                     "content are not exported)")
            return
        if layout == "hwlink-line-readings-1":
            self.line_readings(source, dataset, label)
        else:
            self.signals(source, dataset, label)

    def signals(self, source: h5py.File, dataset: Dataset, label: str) -> None:
        data = source["data"]
        names = [str(n) for n in data.attrs.get("channel_names", source.attrs.get("channel_names", []))]
        units = data.attrs.get("units")
        unit_text = units if isinstance(units, str) else (", ".join(str(u) for u in units) if units is not None
                                                          else "")
        conversion = 1.0
        volts_per_code = dataset.attributes.get("volts_per_code", source.attrs.get("volts_per_code"))
        if volts_per_code and data.dtype.kind in "iu":
            unit, conversion = "volts", float(volts_per_code)
        elif unit_text.lower() in ("v", "volt", "volts"):
            unit = "volts"
        else:
            unit = unit_text or ("volts" if data.dtype.kind == "f" and "nidaq" in str(source.attrs.get("board", ""))
                                 else "ADC codes (as recorded)")
        name = self.unique(label)
        rate = source.attrs.get("sample_rate_hz")
        description = f"{label}: channels {', '.join(names)}" + (f"; nominal rate {rate} Hz" if rate else "")
        series = self.pynwb.TimeSeries(
            name=name, data=_wrapped(data, None, data.dtype, self.progress), unit=unit, conversion=conversion,
            timestamps=_wrapped(source["timestamps"], _usec_to_s, np.float64, self.progress),
            description=description, comments="timestamps: hwlink master clock (clock-synchronized), s")
        self.nwb.add_acquisition(series)
        self.report.series.append(name)

    def line_readings(self, source: h5py.File, dataset: Dataset, label: str) -> None:
        ids = source["line_ids"][()]
        known = dict(zip((int(i) for i in source.attrs.get("line_ids", [])),
                         (str(n) for n in source.attrs.get("line_names", [])), strict=False))
        times = source["timestamps"]
        values = source["data"]
        digital_mode = str(dataset.attributes.get("mode", "")).startswith("digital")
        for line_id in np.unique(ids).tolist():
            rows = np.flatnonzero(ids == line_id)  # index arrays of one line: 4 bytes per reading
            line_name = known.get(line_id, f"line{line_id}")
            stamps = times[rows] if rows.size else np.zeros(0, np.int64)
            level = values[rows, 0] if rows.size else np.zeros(0, np.uint32)
            name = self.unique(f"{label}_{line_name}" if len(known) > 1 or line_name != label else label)
            volts_per_code = dataset.attributes.get("volts_per_code")
            unit, conversion = ("volts", float(volts_per_code)) if volts_per_code else ("value (as recorded)", 1.0)
            self.nwb.add_acquisition(self.pynwb.TimeSeries(
                name=name, data=level, unit=unit, conversion=conversion, timestamps=stamps / 1e6,
                description=f"line {line_name} (id {line_id}) of {source.attrs.get('board', label)}: readings"))
            self.report.series.append(name)
            if self.progress is not None:
                self.progress(stamps.nbytes + level.nbytes)
            if digital_mode or (level.size and set(np.unique(level).tolist()) <= {0, 1}):
                self.intervals(f"{name}_high", stamps, level)

    def intervals(self, name: str, stamps_usec: np.ndarray, levels: np.ndarray) -> None:
        """High periods of a digital line (from each rise to the next fall)."""
        from pynwb.epoch import TimeIntervals

        table = TimeIntervals(name=self.unique(name), description="periods the digital line was high (s)")
        high_since = None
        for stamp, level in zip(np.asarray(stamps_usec).tolist(), np.asarray(levels).tolist(), strict=True):
            if level and high_since is None:
                high_since = stamp
            elif not level and high_since is not None:
                table.add_interval(start_time=high_since / 1e6, stop_time=stamp / 1e6)
                high_since = None
        self.nwb.add_time_intervals(table)
        self.report.tables.append(table.name)

    # -- CSV ----------------------------------------------------------------------------------------------
    def table(self, path: Path, dataset: Dataset, label: str) -> None:
        from hdmf.common import DynamicTable, VectorData

        header, rows = read_table(path)
        if header and header[-1] == "" and all(len(row) == len(header) for row in rows):
            header, rows = header[:-1], [row[:-1] for row in rows]  # Syntalos ends rows with the delimiter
        names, used = [], set()
        for index, column in enumerate(header):
            clean = re.sub(r"[/:]", "_", column.strip()) or f"column_{index}"
            while clean in used or clean == "id":
                clean += "_"
            used.add(clean)
            names.append(clean)
        columns = []
        for index, column_name in enumerate(names):
            cells = [row[index] if index < len(row) else "" for row in rows]
            columns.append(VectorData(name=column_name, description=f"column {header[index]!r} of {path.name}",
                                      data=_typed(cells)))
        name = self.unique(label)
        table = DynamicTable(name=name, description=f"{label}: table {path.name} of the EDL dataset",
                             columns=columns, id=list(range(len(rows))))
        self.module("tables", "tables of the EDL collection (CSV data)").add(table)
        self.report.tables.append(name)
        if self.progress is not None:
            self.progress(path.stat().st_size)
        mode = str(dataset.attributes.get("mode", ""))
        if mode.startswith("digital") and header[:2] == ["time_usec", "value"] and rows:
            stamps = np.array([int(row[0]) for row in rows], dtype=np.int64)
            levels = np.array([int(row[1]) for row in rows], dtype=np.int64)
            series = self.unique(f"{label}_level")
            self.nwb.add_acquisition(self.pynwb.TimeSeries(
                name=series, data=levels, unit="level (0/1)", timestamps=stamps / 1e6,
                description=f"digital line {dataset.attributes.get('line_name', label)}: level at each change"))
            self.report.series.append(series)
            self.intervals(f"{label}_high", stamps, levels)

    # -- tsync --------------------------------------------------------------------------------------------
    def tsync(self, path: Path, label: str) -> None:
        from hdmf.common import DynamicTable, VectorData

        tsync = read_tsync(path, lenient=True)
        unit_names = [unit.label for unit in tsync.time_units]
        names, used = [], set()
        for index, column in enumerate(tsync.time_names):
            clean = re.sub(r"[^A-Za-z0-9_-]", "_", column) or f"time{index + 1}"
            while clean in used or clean == "id":
                clean += "_"
            used.add(clean)
            names.append(clean)
        columns = [VectorData(name=names[0], description=f"{tsync.time_names[0]} ({unit_names[0]})",
                              data=np.asarray(tsync.time1)),
                   VectorData(name=names[1], description=f"{tsync.time_names[1]} ({unit_names[1]})",
                              data=np.asarray(tsync.time2))]
        name = self.unique(f"{label}_sync")
        mode = getattr(tsync.mode, "name", str(tsync.mode))
        table = DynamicTable(
            name=name, columns=columns, id=list(range(len(tsync))),
            description=(f"clock sync {path.name} ({mode}, module {tsync.module_name!r}): the mapping that put "
                         "this data on the master clock; interpolate between rows to redo it"))
        self.module("clock_sync", "clock synchronization (tsync) of the collection's devices").add(table)
        self.report.sync_tables.append(name)


def _typed(cells: list[str]) -> Any:
    """int64, float64 or text, whichever holds every cell exactly."""
    try:
        return np.array([int(cell) for cell in cells], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(cell) for cell in cells], dtype=np.float64)
    except ValueError:
        return [str(cell) for cell in cells]


def _datasets(group: Group) -> list[Dataset]:
    found: list[Dataset] = []
    for child in group.children:
        if isinstance(child, Dataset):
            found.append(child)
        elif isinstance(child, Group):
            found.extend(_datasets(child))
    return found


def export_nwb(collection_path: str | os.PathLike[str], output: str | os.PathLike[str], *,
               metadata: NwbMetadata | None = None, overwrite: bool = False,
               progress: Progress | None = None) -> ExportReport:
    """Write the EDL collection at ``collection_path`` to the NWB file ``output``; see the module docstring."""
    pynwb = _pynwb()
    from pynwb.file import Subject

    target = Path(output)
    if target.exists() and not overwrite:
        raise ExportError(f"{target} exists (use --overwrite to replace it)")
    unit = load(collection_path)
    if not isinstance(unit, Collection):
        raise ExportError(f"{collection_path}: is an EDL {unit.kind}, not a collection")
    report = ExportReport(target)
    meta = resolve_metadata(unit, metadata or NwbMetadata(), report.notes)
    subject = None
    if meta.subject_id:
        subject = Subject(subject_id=str(meta.subject_id), species=meta.species, sex=meta.sex, age=meta.age,
                          description=meta.subject_description)
    nwbfile = pynwb.NWBFile(
        session_description=str(meta.session_description), identifier=str(meta.identifier),
        session_start_time=meta.session_start_time, session_id=str(meta.session_id),
        experimenter=meta.experimenter or None, lab=meta.lab, institution=meta.institution, subject=subject,
        source_script=f"hwlink export nwb ({unit.generator or 'EDL'} collection {unit.name})",
        source_script_file_name="hwlink")
    sources: list[h5py.File] = []
    partial = target.with_name(f".{target.stem}.partial.nwb")
    try:
        exporter = _Exporter(unit, nwbfile, report, progress, sources)
        exporter.run()
        with pynwb.NWBHDF5IO(str(partial), "w") as io:
            io.write(nwbfile)
        os.replace(partial, target)  # a failed export never leaves a half-written file under the real name
    finally:
        for source in sources:
            source.close()
        if partial.exists():
            partial.unlink()
    report.bytes_written = target.stat().st_size
    return report
