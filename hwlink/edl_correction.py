"""Offline correction of an EDL dataset with the tsync file(s) registered as its auxiliary data.

Syntalos (and hwlink recorders) store a stream's clock-sync file next to its data: ``data_aux`` entries whose
type is ``tsync``. This module builds the mapping from those files the way edlio's Intan loader does (all
SYNCPOINTS parts stacked in part order) or, for a CONTINUOUS file, the index table, and applies it to the
dataset's CSV and HDF5 data parts.

It lives above both ``hwlink.sync`` and ``hwlink.edl`` (as the CLI and runtime do) so those two stay independent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hwlink.edl import Dataset, load
from hwlink.sync.offline import (
    IndexTable,
    OfflineError,
    Progress,
    SyncPointMap,
    TimeMapping,
    correct_csv,
    correct_hdf5,
)
from hwlink.sync.tsync import TSyncFileMode, read_tsync

__all__ = ["open_dataset", "dataset_mapping", "correct_edl_dataset", "device_clock_column"]

_CSV = {".csv", ".tsv", ".txt"}
_HDF5 = {".h5", ".hdf5", ".hdf"}
# Preferred HDF5 datasets to correct, in order: hwlink line-reading files keep device-clock stamps here.
_HDF5_CANDIDATES = ("device_timestamps",)
# hwlink's layouts name their clocks: these columns/datasets are device-clock times (what a tsync maps) ...
DEVICE_CLOCK_COLUMNS = ("device_time_usec", "device_timestamps")
# ... and these are already on the master clock; mapping them again through the tsync would shift them by the
# device clock's offset (a wrong result, not an error), so they are refused.
MASTER_CLOCK_COLUMNS = ("time_usec", "arrival_time_usec", "timestamps", "arrival_timestamps")


def open_dataset(path: str | os.PathLike[str]) -> Dataset:
    unit = load(path)
    if not isinstance(unit, Dataset):
        raise OfflineError(f"{path}: is an EDL {unit.kind}, not a dataset")
    return unit


def dataset_mapping(dataset: Dataset, *, rate_hz: float | None = None) -> TimeMapping:
    """The mapping of the dataset's aux tsync file(s): SYNCPOINTS parts stacked (as edlio does) or an index table."""
    entry = dataset.aux_file("tsync")
    if entry is None or not entry.parts:
        raise OfflineError(f"{dataset.path}: dataset '{dataset.name}' has no aux tsync file")
    files = [read_tsync(path) for path in entry.part_paths()]
    modes = {file.mode for file in files}
    if modes == {TSyncFileMode.CONTINUOUS}:
        if len(files) != 1 or rate_hz is not None:
            raise OfflineError(f"{dataset.path}: a CONTINUOUS tsync maps indices directly "
                               "(one file, no sample rate)")
        return IndexTable.from_tsync(files[0])
    if modes != {TSyncFileMode.SYNCPOINTS}:
        raise OfflineError(f"{dataset.path}: aux tsync files mix modes {sorted(m.name for m in modes)}")
    rows = np.vstack([SyncPointMap.from_tsync(file).rows for file in files])
    points = SyncPointMap(rows=rows, source=str(entry.part_paths()[0]))
    return points.sample_map(rate_hz) if rate_hz is not None else points.time_map()


def correct_edl_dataset(
    path: str | os.PathLike[str],
    *,
    mapping: TimeMapping | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    column: str | int | None = None,
    hdf5_dataset: str | None = None,
    rate_hz: float | None = None,
    scale: float = 1.0,
    progress: Progress | None = None,
) -> list[str]:
    """Correct every data part of the EDL dataset at ``path`` with its aux tsync (or ``mapping``, if given);
    returns what was written.

    CSV parts: ``column`` mapped to master µs into ``<stem>_master<suffix>`` in ``output_dir`` (default: the
    dataset directory; the new files are not registered in the manifest). HDF5 parts: ``hdf5_dataset`` (default
    ``device_timestamps``) mapped into a new dataset ``<name>_master_us`` in the same file.

    The tsync maps the *device* clock. In hwlink's own tables the device-clock column is ``device_time_usec``
    (the default where a part has it, else column 0); a column of hwlink's layouts that is already on the master
    clock (``time_usec``, ``arrival_time_usec``, ``timestamps``) is refused with an error naming the right one.
    """
    dataset = open_dataset(path)
    if mapping is None:
        mapping = dataset_mapping(dataset, rate_hz=rate_hz)
    if dataset.data is None or not dataset.data.parts:
        raise OfflineError(f"{dataset.path}: dataset '{dataset.name}' has no data files")
    target_dir = Path(output_dir) if output_dir is not None else dataset.path
    written: list[str] = []
    for part in dataset.data.part_paths():
        suffix = part.suffix.lower()
        if suffix in _CSV:
            target = target_dir / f"{part.stem}_master{part.suffix}"
            correct_csv(part, target, device_clock_column(part, column), mapping, scale=scale, progress=progress)
            written.append(str(target))
        elif suffix in _HDF5:
            name = hdf5_dataset or _default_hdf5_dataset(part)
            _refuse_master_clock(part, name, DEVICE_CLOCK_COLUMNS[1])
            written.append(f"{part}:{correct_hdf5(part, name, mapping, scale=scale, progress=progress)}")
        else:
            raise OfflineError(f"{part}: cannot correct {suffix or 'untyped'} files (CSV and HDF5 parts are supported)")
    return written


def _refuse_master_clock(part: Path, name: str, device_column: str) -> None:
    if name in MASTER_CLOCK_COLUMNS:
        raise OfflineError(f"{part}: {name!r} is already on the master clock; the tsync maps device-clock times "
                           f"(use {device_column!r})")


def device_clock_column(part: Path, column: str | int | None) -> str | int:
    """The column to map: the one asked for (refused if hwlink's layout has it on the master clock), else the
    device-clock column of hwlink tables, else column 0 (foreign tables: the caller knows its clock)."""
    import csv

    with open(part, newline="", encoding="utf-8") as stream:
        first = stream.readline()
    delimiter = ";" if ";" in first else ("\t" if "\t" in first else ",")
    header = next(csv.reader([first], delimiter=delimiter), [])
    device = next((name for name in DEVICE_CLOCK_COLUMNS if name in header), None)
    if column is None:
        return device if device is not None else 0
    position = int(column) if isinstance(column, int) or str(column).isdigit() else None
    name = header[position] if position is not None and 0 <= position < len(header) else str(column)
    if device is not None and name in MASTER_CLOCK_COLUMNS:
        _refuse_master_clock(part, name, device)
    return column


def _default_hdf5_dataset(path: Path) -> str:
    import h5py

    with h5py.File(path, "r") as file:
        for name in _HDF5_CANDIDATES:
            if name in file:
                return name
        names = ", ".join(sorted(file))
    raise OfflineError(f"{path}: choose the HDF5 dataset to correct (it has: {names})")
