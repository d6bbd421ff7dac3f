"""EDL datasets: the leaf holding one stream's data files, its auxiliary files, and the writers filling them.

``file_type`` is always written and ``media_type`` only where edlio has a loader; ``data_aux`` is written as an
array of tables and ``index`` only for multi-part files (edl-format.md §8). A dataset's manifest is rewritten
whenever its file list changes, so a crash leaves every file it had registered listed.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwlink.edl.datafile import DataFile, DataPart
from hwlink.edl.files import file_type_of, media_type_of, natural_key
from hwlink.edl.unit import ATTRIBUTES, MANIFEST, EdlError, Unit, sanitize_name

if TYPE_CHECKING:
    from hwlink.edl.signals import LineReadingWriter, SignalWriter
    from hwlink.edl.tables import TableWriter


class Dataset(Unit):
    """A leaf holding the data files of one stream, plus auxiliary files (e.g. tsync clock-sync files)."""

    kind = "dataset"

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._data: DataFile | None = None
        self._aux: dict[str, DataFile] = {}
        self._data_pattern: tuple[str, str | None] | None = None
        self._aux_patterns: dict[str, str | None] = {}
        self._writers: list[Any] = []

    # ----- data file model ----------------------------------------------------------------------------
    @property
    def data(self) -> DataFile | None:
        """The main data entry (``None`` when the dataset has no data files)."""
        return self._data

    @property
    def aux_data(self) -> list[DataFile]:
        """Auxiliary entries, sorted by key as Syntalos writes them."""
        return [self._aux[key] for key in sorted(self._aux)]

    def aux_file(self, kind: str) -> DataFile | None:
        """First aux entry whose type contains ``kind`` (e.g. ``"tsync"``), else whose summary does."""
        for entry in self.aux_data:
            if kind in (entry.file_type or "") or kind in (entry.media_type or ""):
                return entry
        for entry in self.aux_data:
            if kind in (entry.summary or ""):
                return entry
        return None

    @property
    def is_empty(self) -> bool:
        return not (self._data and self._data.parts) and not self._aux and not self._data_pattern \
            and not self._aux_patterns

    def path_for(self, fname: str) -> Path:
        """Where a file of this dataset lives (registers nothing); the name is sanitised like unit names."""
        return self._path / sanitize_name(str(fname))

    def _entry(self, fname: str, summary: str | None, media_type: str | None, file_type: str | None,
               key: str | None = None) -> tuple[DataFile, str]:
        safe = self.path_for(fname).name
        entry = DataFile([DataPart(safe)], file_type or file_type_of(safe),
                         media_type if media_type is not None else media_type_of(safe), summary or None, key,
                         self._path)
        return entry, safe

    def set_data_file(self, fname: str, summary: str | None = None, *, media_type: str | None = None,
                      file_type: str | None = None) -> Path:
        """Make ``fname`` the (single) main data file; returns its absolute path. The manifest is rewritten now
        so a crash afterwards still leaves the file listed. The registered name is the sanitised one."""
        self._require_writable()
        with self._lock:
            self._data, safe = self._entry(fname, summary, media_type, file_type)
            self._write_manifest()
            return self._path / safe

    def add_data_part(self, fname: str, index: int | None = None) -> Path:
        """Append a part to the main data (multi-part recordings)."""
        self._require_writable()
        with self._lock:
            if self._data is None:
                self._data, safe = self._entry(fname, None, None, None)
                if index is not None:
                    self._data.parts[0].index = int(index)
            else:
                safe = self.path_for(fname).name
                if any(part.fname == safe for part in self._data.parts):
                    raise EdlError(f"dataset '{self.name}' already has a data part '{safe}'")
                self._data.parts.append(DataPart(safe, -1 if index is None else int(index)))
            self._write_manifest()
            return self._path / safe

    def add_aux_file(self, fname: str, key: str | None = None, summary: str | None = None, *,
                     media_type: str | None = None, file_type: str | None = None) -> Path:
        """Register an auxiliary file (e.g. the tsync of this stream's clock sync) under ``key`` (default: its
        name), replacing an entry with the same key; returns its absolute path."""
        self._require_writable()
        with self._lock:
            entry, safe = self._entry(fname, summary, media_type, file_type)
            entry.key = key or safe
            self._aux[entry.key] = entry
            self._write_manifest()
            return self._path / safe

    def add_aux_file_part(self, fname: str, key: str, index: int | None = None) -> Path:
        self._require_writable()
        with self._lock:
            entry = self._aux.get(key)
            if entry is None:
                return self.add_aux_file(fname, key)
            safe = self.path_for(fname).name
            entry.parts.append(DataPart(safe, -1 if index is None else int(index)))
            self._write_manifest()
            return self._path / safe

    def set_data_scan_pattern(self, pattern: str, summary: str | None = None) -> None:
        """Main data = the files matching ``pattern`` when the dataset is saved (for externally written files)."""
        self._require_writable()
        with self._lock:
            self._data_pattern = (pattern, summary)
            self._dirty = True

    def add_aux_scan_pattern(self, pattern: str, summary: str | None = None) -> None:
        self._require_writable()
        with self._lock:
            self._aux_patterns[pattern] = summary
            self._dirty = True

    def _resolve_patterns(self) -> None:
        if not self._data_pattern and not self._aux_patterns:
            return
        try:
            files = sorted((entry.name for entry in os.scandir(self._path) if entry.is_file()
                            and entry.name not in (MANIFEST, ATTRIBUTES) and not entry.name.startswith(".")),
                           key=natural_key)
        except OSError:
            files = []
        taken: set[str] = set()
        for pattern, summary in self._aux_patterns.items():
            matches = [name for name in files if fnmatch.fnmatchcase(name, pattern)]
            taken.update(matches)
            if matches:
                self._aux[pattern] = DataFile([DataPart(name, i) for i, name in enumerate(matches)],
                                              file_type_of(matches[0]), media_type_of(matches[0]), summary,
                                              pattern, self._path)
        if self._data_pattern:
            pattern, summary = self._data_pattern
            matches = [name for name in files if fnmatch.fnmatchcase(name, pattern) and name not in taken]
            self._data = (DataFile([DataPart(name, i) for i, name in enumerate(matches)], file_type_of(matches[0]),
                                   media_type_of(matches[0]), summary, None, self._path) if matches else None)

    def _manifest(self) -> dict[str, Any]:
        self._resolve_patterns()
        document = super()._manifest()
        if self._data is not None and self._data.parts:
            document["data"] = self._data.to_manifest()
        aux = [entry.to_manifest() for entry in self.aux_data if entry.parts]
        if aux:
            document["data_aux"] = aux
        return document

    # ----- writers ------------------------------------------------------------------------------------
    def signal_writer(self, channel_names: list[str] | tuple[str, ...], dtype: Any, *,
                      fname: str | None = None, summary: str | None = None, **options: Any) -> SignalWriter:
        """Open an HDF5 signal writer (``data`` samples x channels + ``timestamps`` µs) as this dataset's data."""
        from hwlink.edl.signals import SignalWriter

        self._require_writable()
        path = self.path_for(fname or f"{self.name}.h5")
        writer = SignalWriter(path, channel_names, dtype, collection_id=self._collection_id, **options)
        self.set_data_file(path.name, summary or f"Signals: {', '.join(map(str, channel_names))}")
        self._writers.append(writer)
        return writer

    def line_reading_writer(self, line_names: Mapping[int, str], *, fname: str | None = None,
                            summary: str | None = None, **options: Any) -> LineReadingWriter:
        """Open an HDF5 writer of LineReadings (``timestamps``, ``data`` values, ``line_ids``, device time)."""
        from hwlink.edl.signals import LineReadingWriter

        self._require_writable()
        path = self.path_for(fname or f"{self.name}.h5")
        writer = LineReadingWriter(path, line_names, collection_id=self._collection_id, **options)
        self.set_data_file(path.name, summary or f"Line readings: {', '.join(line_names.values())}")
        self._writers.append(writer)
        return writer

    def table_writer(self, header: list[str] | tuple[str, ...], *, fname: str | None = None,
                     summary: str | None = None, **options: Any) -> TableWriter:
        """Open a semicolon-separated CSV table writer (Syntalos' table format) as this dataset's data."""
        from hwlink.edl.tables import TableWriter

        self._require_writable()
        path = self.path_for(fname or f"{self.name}.csv")
        writer = TableWriter(path, header, **options)
        self.set_data_file(path.name, summary)
        self._writers.append(writer)
        return writer

    def close(self) -> None:
        """Close this dataset's writers (flushing their data), then rewrite the manifest if it changed."""
        with self._lock:
            if self._closed:
                return
            writers, self._writers = self._writers, []
        errors = []
        for writer in writers:
            try:
                writer.close()
            except Exception as error:  # one failing writer must not keep the others' data from closing
                errors.append(error)
        if self._writable and (self._data_pattern or self._aux_patterns):
            self._dirty = True
        super().close()
        if errors:
            raise errors[0]

    # ----- loading ------------------------------------------------------------------------------------
    def _load_contents(self, manifest: Mapping[str, Any], where: Path,
                       load_unit: Callable[..., Unit]) -> None:
        if "data" in manifest:
            self._data = DataFile.from_manifest(manifest["data"], self._path, where)
        raw_aux = manifest.get("data_aux")
        entries = [] if raw_aux is None else [raw_aux] if isinstance(raw_aux, Mapping) else list(raw_aux)
        for position, table in enumerate(entries):
            entry = DataFile.from_manifest(table, self._path, where)
            first = entry.parts[0].fname if entry.parts else f"aux-{position}"
            entry.key = first if first not in self._aux else f"{first}#{position}"
            self._aux[entry.key] = entry
