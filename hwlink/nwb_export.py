"""Export an EDL collection (hwlink's ``record``/``run``, or Syntalos') to an NWB file with pynwb (extra ``[nwb]``).

What goes where:

* HDF5 signals (``SignalWriter`` files: samples x channels, one master timestamp per row) -> an acquisition
  ``TimeSeries`` per dataset, with the file's units (``volts`` for NI voltages; otherwise the codes as they are,
  ``conversion`` 1, unless the dataset says how many volts a code is: attribute ``volts_per_code``) and the
  timestamps; the channel names go in the description. Channels an electrodes file names (``electrodes=``, CLI
  ``--electrodes``; format in :mod:`hwlink.nwb_electrodes`) become an ``ElectricalSeries`` instead: the recorded
  values with ``conversion`` to volts, ``electrodes`` a region of the file's electrode table (with its
  ``ElectrodeGroup`` s and ``Device`` s); the dataset's other channels stay a ``TimeSeries``
  (``NAME_other_channels``) sharing the timestamps.
* HDF5 line readings (``LineReadingWriter`` files) -> a ``TimeSeries`` per line (values at their timestamps). A
  digital line (dataset ``mode`` digital-in, or only 0/1 values) also gets ``TimeIntervals`` of its high periods.
  An analog line the electrodes file names is an ``ElectricalSeries`` of that one electrode.
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
import math
import os
import re
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hwlink.edl import Collection, Dataset, Group, load, read_table
from hwlink.errors import HwlinkError
from hwlink.nwb_electrodes import Electrode, ElectrodesError, ElectrodeTableSpec, electrodes_from_rows, \
    read_electrodes
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

# units whose values are volts times a known factor (lower-cased); anything else needs volts_per_code or a
# conversion column in the electrodes file to be an ElectricalSeries (NWB's are in volts)
VOLT_UNITS = {"v": 1.0, "volt": 1.0, "volts": 1.0, "mv": 1e-3, "millivolt": 1e-3, "millivolts": 1e-3,
              "uv": 1e-6, "\u00b5v": 1e-6, "\u03bcv": 1e-6, "microvolt": 1e-6, "microvolts": 1e-6, "nv": 1e-9}
DEFAULT_DEVICE = "acquisition_device"

Progress = Callable[[int], None]  # called with the number of bytes just written
Electrodes = str | os.PathLike[str] | ElectrodeTableSpec | Iterable[Mapping[str, Any]]


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
    electrical_series: list[str] = field(default_factory=list)
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
              progress: Progress | None, columns: list[int] | None = None) -> Any:
    """A chunk-by-chunk reader of an HDF5 dataset (optionally some columns, transformed), for hdmf to write as it
    goes."""
    from hdmf.data_utils import GenericDataChunkIterator

    shape = _shape(source, columns)

    class Chunks(GenericDataChunkIterator):
        def __init__(self) -> None:
            self._source = source
            row_bytes = int(np.prod(source.shape[1:], dtype=np.int64)) * dtype.itemsize
            rows = max(1, min(shape[0], _chunk_rows(row_bytes)))
            buffer = (rows, *shape[1:])
            super().__init__(buffer_shape=buffer, chunk_shape=buffer)

        def _get_data(self, selection: tuple[slice, ...]) -> np.ndarray:
            if columns is None:
                block = self._source[selection]
            else:  # whole rows are read (contiguous in the file), then the columns taken
                block = self._source[selection[0]][:, columns][(slice(None), *selection[1:])]
            block = transform(block) if transform is not None else block
            if progress is not None:
                progress(block.nbytes)
            return np.asarray(block, dtype=dtype)

        def _get_maxshape(self) -> tuple[int, ...]:
            return shape

        def _get_dtype(self) -> np.dtype:
            return dtype

    return Chunks()


def _shape(source: h5py.Dataset, columns: list[int] | None) -> tuple[int, ...]:
    return tuple(source.shape) if columns is None else (source.shape[0], len(columns), *source.shape[2:])


def _compression_pays(sample: np.ndarray) -> bool:
    raw = np.ascontiguousarray(sample)
    if raw.nbytes < 4096:
        return False
    shuffled = raw.view(np.uint8).reshape(-1, raw.dtype.itemsize).T.tobytes()  # as HDF5's shuffle filter does
    return len(zlib.compress(shuffled, 1)) < COMPRESS_RATIO * raw.nbytes


def _wrapped(source: h5py.Dataset, transform: Callable[[np.ndarray], np.ndarray] | None, dtype: Any,
             progress: Progress | None, columns: list[int] | None = None) -> Any:
    """Data for pynwb: small arrays as they are, large ones streamed; gzip (with shuffle) where it pays.

    ``columns`` selects columns of a 2-D source (None: all)."""
    from hdmf.backends.hdf5 import H5DataIO

    dtype = np.dtype(dtype)
    if source.shape[0] == 0:
        return np.zeros(_shape(source, columns), dtype=dtype)
    trial = source[: min(source.shape[0], TRIAL_ROWS)]
    trial = trial if columns is None else trial[:, columns]
    trial = np.asarray(transform(trial) if transform is not None else trial, dtype=dtype)
    compress = _compression_pays(trial)
    data = _iterator(source, transform, dtype, progress, columns)
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
        # (dataset path, channel name) -> (row of the file's electrode table, the electrodes-file row)
        self.assigned: dict[tuple[str, str], tuple[int, Electrode]] = {}

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

    # -- electrodes ---------------------------------------------------------------------------------------
    def electrodes(self, spec: ElectrodeTableSpec) -> None:
        """Check every row against the collection (before anything is written), then build the electrode table,
        its groups and devices, in file order."""
        datasets = {str(dataset.unit_path).strip("/") or dataset.name: dataset
                    for dataset in _datasets(self.collection)}
        channels: dict[str, list[str]] = {}
        seen: dict[tuple[str, str], str] = {}
        resolved: list[tuple[str, Electrode]] = []
        for electrode in spec.electrodes:
            path = self._electrode_dataset(electrode, datasets)
            if path not in channels:
                try:
                    channels[path] = self._recorded_channels(electrode, path, datasets[path])
                except (OSError, KeyError) as error:
                    raise ExportError(f"{electrode.where}: dataset {path}: cannot read its signals: {error}") \
                        from None
            if electrode.channel not in channels[path]:
                raise ExportError(f"{electrode.where}: dataset {path} has no channel {electrode.channel!r} "
                                  f"(its channels: {', '.join(channels[path]) or 'none'})")
            key = (path, electrode.channel)
            if key in seen:
                raise ExportError(f"{electrode.where}: dataset {path} channel {electrode.channel!r} is already "
                                  f"described at {seen[key]} (one row per electrode)")
            seen[key] = electrode.where
            resolved.append((path, electrode))
        devices: dict[str, Any] = {}
        for device_name in dict.fromkeys(electrode.device or DEFAULT_DEVICE for electrode in spec.electrodes):
            rows = [e for e in spec.electrodes if (e.device or DEFAULT_DEVICE) == device_name]
            description = next((e.device_description for e in rows if e.device_description), None)
            if description is None:
                boards = dict.fromkeys(str(datasets[path].attributes.get("board", "")) for path, e in resolved
                                       if e in rows)
                boards.pop("", None)
                description = ("recording hardware" + (f" ({', '.join(boards)})" if boards else "") +
                               "; not described in the electrodes file")
            devices[device_name] = self.nwb.create_device(
                name=device_name, description=description,
                manufacturer=next((e.device_manufacturer for e in rows if e.device_manufacturer), None))
        groups: dict[str, Any] = {}
        for group_name in dict.fromkeys(electrode.group for electrode in spec.electrodes):
            rows = [e for e in spec.electrodes if e.group == group_name]
            device = next((e.device for e in rows if e.device), DEFAULT_DEVICE)
            groups[group_name] = self.nwb.create_electrode_group(
                name=group_name, location=", ".join(dict.fromkeys(e.location for e in rows)), device=devices[device],
                description=next((e.group_description for e in rows if e.group_description),
                                 f"electrode group {group_name}"))
        floats = [c for c in spec.optional_columns if any(c in e.position for e in spec.electrodes)]
        texts = [c for c in spec.optional_columns if any(c in e.text for e in spec.electrodes)]
        extra = {column: _typed([e.extra[column] for e in spec.electrodes]) for column in spec.extra_columns}
        for column in extra:
            self.nwb.add_electrode_column(name=column, description=f"column {column!r} of {spec.source}")
        for index, (path, electrode) in enumerate(resolved):
            values: dict[str, Any] = {c: electrode.position.get(c, math.nan) for c in floats}
            values.update({c: electrode.text.get(c, "") for c in texts})
            values.update({column: cells[index] for column, cells in extra.items()})
            self.nwb.add_electrode(location=electrode.location, group=groups[electrode.group], id=index, **values)
            self.assigned[(path, electrode.channel)] = (index, electrode)

    @staticmethod
    def _electrode_dataset(electrode: Electrode, datasets: dict[str, Dataset]) -> str:
        if electrode.dataset in datasets:
            return electrode.dataset
        named = [path for path, dataset in datasets.items() if dataset.name == electrode.dataset]
        if len(named) == 1:
            return named[0]
        if named:
            raise ExportError(f"{electrode.where}: several datasets are named {electrode.dataset!r} "
                              f"({', '.join(named)}); give the path")
        signal = [path for path, dataset in datasets.items() if _hdf5_parts(dataset)]
        raise ExportError(f"{electrode.where}: no dataset {electrode.dataset!r} in the collection (datasets with "
                          f"signals: {', '.join(signal) or 'none'})")

    def _recorded_channels(self, electrode: Electrode, path: str, dataset: Dataset) -> list[str]:
        """The channel names of a dataset's signals or analog line readings (what an electrodes row may name)."""
        found: list[str] = []
        for part in _hdf5_parts(dataset):
            with h5py.File(part, "r") as source:
                if "timestamps" not in source or "data" not in source:
                    continue
                if _layout(source) == "hwlink-line-readings-1":
                    if str(dataset.attributes.get("mode", "")).startswith("digital"):
                        raise ExportError(f"{electrode.where}: dataset {path} is a digital line, not an electrode")
                    found.extend(str(name) for name in source.attrs.get("line_names", []))
                else:
                    found.extend(_channel_names(source))
        if not found:
            raise ExportError(f"{electrode.where}: dataset {path} has no recorded signals (HDF5 samples or analog "
                              "line readings), so no channel of it can be an electrode")
        return list(dict.fromkeys(found))

    def volts_per_value(self, electrode: Electrode, dataset: Dataset, source: h5py.File, index: int,
                        where: str) -> tuple[float, float]:
        """NWB's conversion and offset (value x conversion + offset = volts) of one channel: the electrodes file's
        ``conversion``, else the dataset's ``volts_per_code`` (integer codes; ``volts_offset``), else its units
        when they are volts."""
        if electrode.conversion is not None:
            return electrode.conversion, 0.0
        data = source["data"]
        volts_per_code = dataset.attributes.get("volts_per_code", source.attrs.get("volts_per_code"))
        if volts_per_code and data.dtype.kind in "iu":
            offset = dataset.attributes.get("volts_offset", source.attrs.get("volts_offset"))
            return float(volts_per_code), float(offset or 0.0)
        units = data.attrs.get("units", dataset.attributes.get("units"))
        if units is not None and not isinstance(units, str | bytes):
            units = list(units)[index] if index < len(units) else None
        unit = units.decode() if isinstance(units, bytes) else str(units or "")
        factor = VOLT_UNITS.get(unit.strip().lower())
        if factor is None:
            raise ExportError(f"{electrode.where}: dataset {where} channel {electrode.channel!r} holds "
                              f"{unit or 'values without units'} (not volts, no volts_per_code); NWB's "
                              "ElectricalSeries is in volts: give a 'conversion' column (volts per recorded value)")
        return factor, 0.0

    def electrical_series(self, name: str, data: Any, timestamps: Any, rows: list[tuple[int, Electrode]],
                          scales: list[tuple[float, float]], where: str, description: str) -> Any:
        """An ElectricalSeries of some electrodes (data columns in ``rows`` order), in acquisition."""
        from pynwb.ecephys import ElectricalSeries

        offsets = {offset for _, offset in scales}
        if len(offsets) > 1:
            raise ExportError(f"{rows[0][1].where}: dataset {where}'s channels have different volts offsets; NWB "
                              "has one offset per series")
        factors = [factor for factor, _ in scales]
        same = all(factor == factors[0] for factor in factors)
        region = self.nwb.create_electrode_table_region(
            region=[index for index, _ in rows], description=f"the electrodes recorded in {where}")
        series = ElectricalSeries(
            name=name, data=data, electrodes=region, timestamps=timestamps,
            conversion=factors[0] if same else 1.0, channel_conversion=None if same else factors,
            offset=offsets.pop(), description=description,
            comments="timestamps: hwlink master clock (clock-synchronized), s; data: the recorded values "
                     "(volts = data x conversion" + ("" if same else " x channel_conversion") + " + offset)")
        self.nwb.add_acquisition(series)
        self.report.series.append(name)
        self.report.electrical_series.append(name)
        return series

    def dataset(self, dataset: Dataset, where: str) -> None:
        label = where.replace("/", "_")
        data = dataset.data
        if data is not None and data.parts:
            for part in data.part_paths():
                suffix = part.suffix.lower()
                if not part.exists():
                    self.report.notes.append(f"{where}: {part.name} is missing; skipped")
                elif suffix in (".h5", ".hdf5"):
                    self.hdf5(part, dataset, label, where)
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
    def hdf5(self, path: Path, dataset: Dataset, label: str, where: str) -> None:
        source = h5py.File(path, "r")
        self.sources.append(source)
        layout = _layout(source)
        if "timestamps" not in source or "data" not in source:
            self.report.notes.append(f"{label}: {path.name} has no timestamps/data (frames and other HDF5 "
                                     "content are not exported)")
            return
        if layout == "hwlink-line-readings-1":
            self.line_readings(source, dataset, label, where)
        else:
            self.signals(source, dataset, label, where)

    def signals(self, source: h5py.File, dataset: Dataset, label: str, where: str) -> None:
        data = source["data"]
        names = _channel_names(source)
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
        rate = source.attrs.get("sample_rate_hz")
        rate_text = f"; nominal rate {rate} Hz" if rate else ""
        timestamps: Any = _wrapped(source["timestamps"], _usec_to_s, np.float64, self.progress)
        width = data.shape[1] if data.ndim > 1 else 1
        electrodes = [(column, self.assigned[(where, name)]) for column, name in enumerate(names[:width])
                      if (where, name) in self.assigned]
        if electrodes:
            columns = [column for column, _ in electrodes]
            scales = [self.volts_per_value(electrode, dataset, source, column, where)
                      for column, (_, electrode) in electrodes]
            chosen = None if data.ndim == 1 or columns == list(range(width)) else columns
            timestamps = self.electrical_series(
                self.unique(label), _wrapped(data, None, data.dtype, self.progress, chosen), timestamps,
                [row for _, row in electrodes], scales, where,
                f"{label}: channels {', '.join(names[c] for c in columns)} (electrodes){rate_text}")
        rest = [column for column in range(width) if column not in {c for c, _ in electrodes}]
        if not rest:
            return
        name = self.unique(f"{label}_other_channels" if electrodes else label)
        chosen = None if len(rest) == width else rest
        description = f"{label}: channels {', '.join(names[c] for c in rest if c < len(names))}{rate_text}"
        series = self.pynwb.TimeSeries(  # timestamps: the ElectricalSeries' (a link), if there is one
            name=name, data=_wrapped(data, None, data.dtype, self.progress, chosen), unit=unit,
            conversion=conversion, timestamps=timestamps, description=description,
            comments="timestamps: hwlink master clock (clock-synchronized), s")
        self.nwb.add_acquisition(series)
        self.report.series.append(name)

    def line_readings(self, source: h5py.File, dataset: Dataset, label: str, where: str) -> None:
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
            if (where, line_name) in self.assigned:  # an electrode: an ElectricalSeries of one channel
                row = self.assigned[(where, line_name)]
                self.electrical_series(
                    name, level, stamps / 1e6, [row], [self.volts_per_value(row[1], dataset, source, 0, where)],
                    where, f"line {line_name} (id {line_id}) of {source.attrs.get('board', label)}: readings")
                if self.progress is not None:
                    self.progress(stamps.nbytes + level.nbytes)
                continue
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


def _layout(source: h5py.File) -> str | None:
    layout = source.attrs.get("hwlink_layout")
    return layout.decode() if isinstance(layout, bytes) else layout


def _channel_names(source: h5py.File) -> list[str]:
    data = source["data"]
    return [str(n) for n in data.attrs.get("channel_names", source.attrs.get("channel_names", []))]


def _hdf5_parts(dataset: Dataset) -> list[Path]:
    data = dataset.data
    if data is None or not data.parts:
        return []
    return [part for part in data.part_paths() if part.suffix.lower() in (".h5", ".hdf5") and part.exists()]


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
               progress: Progress | None = None, electrodes: Electrodes | None = None) -> ExportReport:
    """Write the EDL collection at ``collection_path`` to the NWB file ``output``; see the module docstring.

    ``electrodes``: an electrodes CSV file (path), rows as mappings column -> value, or a parsed
    :class:`~hwlink.nwb_electrodes.ElectrodeTableSpec`; the channels it names become ``ElectricalSeries``.
    """
    pynwb = _pynwb()
    from pynwb.file import Subject

    target = Path(output)
    if target.exists() and not overwrite:
        raise ExportError(f"{target} exists (use --overwrite to replace it)")
    unit = load(collection_path)
    if not isinstance(unit, Collection):
        raise ExportError(f"{collection_path}: is an EDL {unit.kind}, not a collection")
    spec = _electrode_spec(electrodes) if electrodes is not None else None
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
        if spec is not None:
            exporter.electrodes(spec)
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


def _electrode_spec(electrodes: Electrodes) -> ElectrodeTableSpec:
    try:
        if isinstance(electrodes, ElectrodeTableSpec):
            return electrodes
        if isinstance(electrodes, str | os.PathLike):
            return read_electrodes(electrodes)
        return electrodes_from_rows(electrodes)
    except ElectrodesError as error:
        raise ExportError(str(error)) from None
