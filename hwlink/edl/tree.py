"""The EDL tree: Collection, Group and Dataset objects mirroring unit directories on disk.

Writing follows the format notes' recommended profile (edl-format.md §8): ``format_version = "1"``, ``type``,
``time_created`` as a native TOML offset date-time, the collection's UUIDv7 on every unit, ``generator`` and
``authors`` on the collection, ``file_type`` always and ``media_type`` only where edlio has a loader,
``data_aux`` as an array of tables, ``index`` only for multi-part files.

Crash safety: a unit's directory and manifest are written the moment it is created, a dataset's manifest is
rewritten whenever its file list changes, attributes are written when set, and every write replaces the
file atomically (temp file, fsync, rename). ``close()`` rewrites what changed, children before parents.

Reading accepts Syntalos' and edlio's collections too (old single-table ``data_aux``, ``index = 0`` on single
parts, string or local ``time_created``); units loaded from disk are never rewritten unless changed.
"""

from __future__ import annotations

import datetime
import enum
import fnmatch
import os
import secrets
import string
import threading
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from hwlink.edl.files import atomic_write_text, file_type_of, fsync_directory, media_type_of, natural_key
from hwlink.edl.ids import uuid7
from hwlink.edl.toml import dumps
from hwlink.errors import HwlinkError

if TYPE_CHECKING:
    from hwlink.edl.signals import LineReadingWriter, SignalWriter
    from hwlink.edl.tables import TableWriter

FORMAT_VERSION = "1"
MANIFEST = "manifest.toml"
ATTRIBUTES = "attributes.toml"
DEFAULT_GENERATOR = "hwlink"


class EdlError(HwlinkError):
    """An EDL tree cannot be created, opened or changed as asked."""


class CreateFlag(enum.Enum):
    """What ``create_group``/``create_dataset`` do when the child exists (Syntalos' EDLCreateFlag)."""

    OPEN_ONLY = "open-only"
    CREATE_OR_OPEN = "create-or-open"
    MUST_CREATE = "must-create"


_NAME_FALLBACK_ALPHABET = string.ascii_letters + string.digits


def sanitize_name(name: str) -> str:
    """Syntalos' unit-name sanitizer: strip edge spaces/tabs, ``/`` and ``\\`` to ``_``, drop ``:``,
    ``AUX`` -> ``_AUX``, an empty result becomes a random 4-character name."""
    text = str(name).strip(" \t").replace("/", "_").replace("\\", "_").replace(":", "")
    if text == "AUX":
        text = "_AUX"
    if text in ("", ".", ".."):
        text = "".join(secrets.choice(_NAME_FALLBACK_ALPHABET) for _ in range(4))
    return text


def _now() -> datetime.datetime:
    """Local time with its UTC offset, second resolution (what Syntalos writes)."""
    return datetime.datetime.now().astimezone().replace(microsecond=0)


def _parse_time(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time())
    if value in (None, ""):
        return None
    try:
        return datetime.datetime.fromisoformat(str(value))
    except ValueError as error:
        raise EdlError(f"bad time_created {value!r}: {error}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise EdlError(f"{path}: invalid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise EdlError(f"{path}: not UTF-8 text (byte {error.start}): not a TOML file") from None
    except IsADirectoryError:
        raise EdlError(f"{path}: is a directory, not a TOML file") from None


@dataclass
class DataPart:
    """One file of a (possibly multi-part) data entry; ``index`` -1 means "list order"."""

    fname: str
    index: int = -1


@dataclass
class DataFile:
    """A ``data`` or ``data_aux`` entry: its parts, type tags and summary."""

    parts: list[DataPart] = field(default_factory=list)
    file_type: str | None = None
    media_type: str | None = None
    summary: str | None = None
    key: str | None = None
    base_path: Path | None = None

    def sorted_parts(self) -> list[DataPart]:
        return sorted(self.parts, key=lambda part: part.index)

    def part_paths(self) -> list[Path]:
        """Absolute paths of the parts in index order."""
        if self.base_path is None:
            raise EdlError("data file has no base directory")
        return [self.base_path / part.fname for part in self.sorted_parts()]

    def to_manifest(self) -> dict[str, Any]:
        table: dict[str, Any] = {}
        if self.file_type:
            table["file_type"] = self.file_type
        if self.media_type:
            table["media_type"] = self.media_type
        if self.summary:
            table["summary"] = self.summary
        multi = len(self.parts) > 1
        table["parts"] = [
            {"fname": part.fname, **({"index": part.index if part.index >= 0 else position} if multi else {})}
            for position, part in enumerate(self.parts)
        ]
        return table

    @classmethod
    def from_manifest(cls, table: Mapping[str, Any], base_path: Path, where: Path) -> DataFile:
        if not isinstance(table, Mapping):
            raise EdlError(f"{where}: data entry must be a table, got {type(table).__name__}")
        parts = []
        for raw in table.get("parts", []) or []:
            if not isinstance(raw, Mapping) or "fname" not in raw:
                raise EdlError(f"{where}: data part without 'fname'")
            parts.append(DataPart(str(raw["fname"]), int(raw.get("index", -1))))
        return cls(parts, _opt_str(table.get("file_type")), _opt_str(table.get("media_type")),
                   _opt_str(table.get("summary")), base_path=base_path)

    @property
    def type_label(self) -> str:
        return self.media_type or self.file_type or "?"


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class Unit:
    """Common part of collections, groups and datasets: name, path, manifest keys, attributes."""

    kind: ClassVar[str] = ""

    def __init__(self, path: Path, *, parent: Group | None, collection_id: uuid.UUID | None,
                 time_created: datetime.datetime | None, attributes: dict[str, Any] | None,
                 writable: bool, lock: threading.RLock, extra_manifest: dict[str, Any] | None = None) -> None:
        self._path = path
        self._parent = parent
        self._collection_id = collection_id
        self._time_created = time_created
        self._attributes: dict[str, Any] = dict(attributes or {})
        self._writable = writable
        self._lock = lock
        self._dirty = False
        self._created_here = False  # created by this process: its manifest is rewritten at close
        self._closed = False
        self._extra_manifest = dict(extra_manifest or {})

    # ----- identity -----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._path.name

    @property
    def path(self) -> Path:
        return self._path

    @property
    def parent(self) -> Group | None:
        return self._parent

    @property
    def collection(self) -> Collection | None:
        unit: Unit | None = self
        while unit is not None and not isinstance(unit, Collection):
            unit = unit.parent
        return unit

    @property
    def collection_id(self) -> uuid.UUID | None:
        return self._collection_id

    @property
    def time_created(self) -> datetime.datetime | None:
        return self._time_created

    @property
    def writable(self) -> bool:
        return self._writable

    @property
    def unit_path(self) -> str:
        """Slash-separated path from the collection (``""`` for the collection itself)."""
        names: list[str] = []
        unit: Unit | None = self
        while unit is not None and unit.parent is not None:
            names.append(unit.name)
            unit = unit.parent
        return "/".join(reversed(names))

    # ----- attributes ---------------------------------------------------------------------------------
    @property
    def attributes(self) -> dict[str, Any]:
        """A copy of the unit's free-form attributes (``attributes.toml``)."""
        return dict(self._attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute and write ``attributes.toml`` at once (``None`` removes the key)."""
        self.update_attributes({key: value})

    def update_attributes(self, values: Mapping[str, Any]) -> None:
        self._require_writable()
        with self._lock:
            for key, value in values.items():
                if not isinstance(key, str):
                    raise EdlError(f"attribute keys must be strings, got {key!r}")
                if value is None:
                    self._attributes.pop(key, None)
                else:
                    self._attributes[key] = value
            self._write_attributes()

    # ----- saving -------------------------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self._writable:
            raise EdlError(f"EDL unit '{self._path}' was opened read-only")
        if self._closed:
            raise EdlError(f"EDL unit '{self._path}' is closed")

    def _manifest(self) -> dict[str, Any]:
        document: dict[str, Any] = {"format_version": FORMAT_VERSION, "type": self.kind}
        if self._collection_id is not None:
            document["collection_id"] = str(self._collection_id)
        document["time_created"] = self._time_created or _now()
        document.update(self._extra_manifest)
        return document

    def _write_manifest(self) -> None:
        with self._lock:
            try:
                atomic_write_text(self._path / MANIFEST, dumps(self._manifest()))
            except OSError as error:
                raise EdlError(f"unable to write manifest in '{self._path}': {error.strerror or error}") from None
            self._dirty = False

    def _write_attributes(self) -> None:
        target = self._path / ATTRIBUTES
        try:
            if self._attributes:
                atomic_write_text(target, dumps(self._attributes))
            elif target.exists():
                target.unlink()
        except OSError as error:
            raise EdlError(f"unable to write attributes in '{self._path}': {error.strerror or error}") from None

    def save(self) -> None:
        """Write the manifest (and attributes) now."""
        self._require_writable()
        with self._lock:
            self._write_manifest()
            self._write_attributes()

    def close(self) -> None:
        """Rewrite the manifest of a unit created here or changed since; safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            if self._writable and (self._dirty or self._created_here):
                self._write_manifest()
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.unit_path or self.name!r} at {self._path}>"


class Group(Unit):
    """A named container of groups and datasets."""

    kind = "group"

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._children: dict[str, Unit] = {}

    # ----- children -----------------------------------------------------------------------------------
    @property
    def children(self) -> list[Unit]:
        return [self._children[name] for name in sorted(self._children, key=natural_key)]

    @property
    def groups(self) -> list[Group]:
        return [child for child in self.children if isinstance(child, Group)]

    @property
    def datasets(self) -> list[Dataset]:
        return [child for child in self.children if isinstance(child, Dataset)]

    def __iter__(self) -> Iterator[Unit]:
        return iter(self.children)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and sanitize_name(name) in self._children

    def __getitem__(self, name: str) -> Unit:
        """Child by name, or a slash-separated path of names (``"videos/raw-video"``)."""
        unit: Unit = self
        for piece in name.split("/"):
            if not isinstance(unit, Group):
                raise KeyError(name)
            child = unit._children.get(piece) or unit._children.get(sanitize_name(piece))
            if child is None:
                raise KeyError(name)
            unit = child
        return unit

    def walk(self) -> Iterator[Unit]:
        """This unit and every descendant, parents before children."""
        yield self
        for child in self.children:
            if isinstance(child, Group):
                yield from child.walk()
            else:
                yield child

    def group(self, name: str) -> Group:
        return self.create_group(name, CreateFlag.OPEN_ONLY)

    def dataset(self, name: str) -> Dataset:
        return self.create_dataset(name, CreateFlag.OPEN_ONLY)

    def create_group(self, name: str, flag: CreateFlag = CreateFlag.MUST_CREATE) -> Group:
        """Create (or open, per ``flag``) a child group; names are looked up in their sanitised form."""
        child = self._child(name, Group, flag)
        assert isinstance(child, Group)
        return child

    def create_dataset(self, name: str, flag: CreateFlag = CreateFlag.MUST_CREATE) -> Dataset:
        """Create (or open, per ``flag``) a child dataset; names are looked up in their sanitised form."""
        child = self._child(name, Dataset, flag)
        assert isinstance(child, Dataset)
        return child

    def _child(self, name: str, cls: type[Group] | type[Dataset], flag: CreateFlag) -> Unit:
        flag = CreateFlag(flag)
        wanted = sanitize_name(name)
        kind = cls.kind.capitalize()
        with self._lock:
            existing = self._children.get(wanted)
            if existing is None and name in self._children:
                existing = self._children[name]
            if existing is not None:
                if not isinstance(existing, cls):
                    raise EdlError(f"A {existing.kind} named '{existing.name}' already exists in "
                                   f"{self.kind} '{self.name}'.")
                if flag is CreateFlag.MUST_CREATE:
                    raise EdlError(f"{kind} '{existing.name}' already exists in {self.kind} '{self.name}'.")
                return existing
            if flag is CreateFlag.OPEN_ONLY:
                raise EdlError(f"{kind} '{wanted}' not found in {self.kind} '{self.name}'.")
            self._require_writable()
            for other in self._children:
                if other.lower() == wanted.lower():
                    raise EdlError(f"{kind} name '{wanted}' clashes with '{other}' in {self.kind} '{self.name}' "
                                   "(sibling names must differ in more than letter case)")
            path = self._path / wanted
            _make_unit_directory(path)
            child = cls(path, parent=self, collection_id=self._collection_id, time_created=_now(),
                        attributes=None, writable=True, lock=self._lock)
            child._write_manifest()
            child._created_here = True
            self._children[wanted] = child
            fsync_directory(self._path)
            return child

    def close(self) -> None:
        """Close every descendant (children first), then this unit; a failing child does not keep the others
        (or this manifest) from being saved, its error is raised afterwards."""
        with self._lock:
            if self._closed:
                return
            errors: list[Exception] = []
            for child in self.children:
                try:
                    child.close()
                except Exception as error:
                    errors.append(error)
        super().close()
        if errors:
            raise errors[0]

    # ----- loading ------------------------------------------------------------------------------------
    def _load_children(self) -> None:
        try:
            entries = sorted(os.scandir(self._path), key=lambda entry: natural_key(entry.name))
        except OSError as error:
            raise EdlError(f"cannot list '{self._path}': {error.strerror or error}") from None
        for entry in entries:
            manifest_path = Path(entry.path) / MANIFEST
            if not entry.is_dir() or not manifest_path.is_file():
                continue
            child = _load_unit(Path(entry.path), parent=self, writable=self._writable, lock=self._lock)
            if isinstance(child, Collection):
                raise EdlError(f"{entry.path}: a collection cannot be nested in another unit")
            self._children[entry.name] = child


def _make_unit_directory(path: Path) -> None:
    """Create a unit directory; an existing *empty* directory without a manifest is adopted."""
    try:
        path.mkdir(parents=False)
    except FileExistsError:
        if not path.is_dir() or (path / MANIFEST).exists() or any(path.iterdir()):
            raise EdlError(f"cannot create EDL unit '{path}': it already exists on disk") from None
    except OSError as error:
        raise EdlError(f"unable to create EDL directory '{path}': {error.strerror or error}") from None


class Collection(Group):
    """The root of one recording. Use ``Collection.create(...)`` or ``Collection.open(path)``."""

    kind = "collection"

    @classmethod
    def create(cls, directory: str | os.PathLike[str], name: str | None = None, *,
               generator: str = DEFAULT_GENERATOR, authors: list[Mapping[str, str]] | None = None,
               collection_id: uuid.UUID | None = None, time_created: datetime.datetime | None = None,
               attributes: Mapping[str, Any] | None = None) -> Collection:
        """Create a new collection at ``directory/name`` (or at ``directory`` itself when no name is given).

        The collection directory must not exist yet (or be empty); its parents are created.
        """
        base = Path(directory)
        path = base / sanitize_name(name) if name is not None else base
        if name is None:
            sanitized = sanitize_name(path.name)
            if sanitized != path.name:
                path = path.with_name(sanitized)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EdlError(f"unable to create directory '{path.parent}': {error.strerror or error}") from None
        _make_unit_directory(path)
        extra: dict[str, Any] = {"generator": generator}
        if authors:
            extra["authors"] = [_author(author) for author in authors]
        collection = cls(path, parent=None, collection_id=collection_id or uuid7(),
                         time_created=time_created or _now(), attributes=None, writable=True,
                         lock=threading.RLock(), extra_manifest=extra)
        collection._write_manifest()
        collection._created_here = True
        if attributes:
            collection.update_attributes(attributes)
        return collection

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writable: bool = False) -> Collection:
        """Load a collection written by hwlink, Syntalos or edlio; ``writable`` allows adding to it."""
        unit = load(path, writable=writable)
        if not isinstance(unit, Collection):
            raise EdlError(f"'{path}' is an EDL {unit.kind}, not a collection")
        return unit

    @property
    def generator(self) -> str | None:
        return _opt_str(self._extra_manifest.get("generator"))

    @property
    def authors(self) -> list[dict[str, Any]]:
        return [dict(author) for author in self._extra_manifest.get("authors", [])]

    @property
    def short_tag(self) -> str:
        """Last 8 hex digits of the collection id, Syntalos' prefix for traceable file names."""
        return self._collection_id.hex[-8:] if self._collection_id else ""


def _author(author: Mapping[str, str]) -> dict[str, str]:
    if not author.get("name"):
        raise EdlError(f"an author needs a name, got {dict(author)!r}")
    return {key: str(value) for key, value in author.items() if value not in (None, "")}


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
    def _load_data(self, manifest: Mapping[str, Any], where: Path) -> None:
        if "data" in manifest:
            self._data = DataFile.from_manifest(manifest["data"], self._path, where)
        raw_aux = manifest.get("data_aux")
        entries = [] if raw_aux is None else [raw_aux] if isinstance(raw_aux, Mapping) else list(raw_aux)
        for position, table in enumerate(entries):
            entry = DataFile.from_manifest(table, self._path, where)
            first = entry.parts[0].fname if entry.parts else f"aux-{position}"
            entry.key = first if first not in self._aux else f"{first}#{position}"
            self._aux[entry.key] = entry


_UNIT_CLASSES: dict[str, type[Unit]] = {"collection": Collection, "group": Group, "dataset": Dataset}


def _load_unit(path: Path, *, parent: Group | None, writable: bool, lock: threading.RLock) -> Unit:
    manifest_path = path / MANIFEST
    manifest = _read_toml(manifest_path)
    version = str(manifest.get("format_version", "unknown"))
    if version != FORMAT_VERSION:
        raise EdlError(f"{manifest_path}: unsupported EDL format version '{version}' (expected '1')")
    kind = manifest.get("type")
    cls = _UNIT_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EdlError(f"{manifest_path}: unknown EDL unit type {kind!r}")
    raw_id = manifest.get("collection_id")
    try:
        collection_id = uuid.UUID(str(raw_id)) if raw_id not in (None, "") else None
    except ValueError:
        raise EdlError(f"{manifest_path}: bad collection_id {raw_id!r}") from None
    attributes = _read_toml(path / ATTRIBUTES) if (path / ATTRIBUTES).is_file() else {}
    extra = {key: manifest[key] for key in ("generator", "authors", "collection_moniker") if key in manifest}
    if isinstance(extra.get("authors"), Mapping):
        extra["authors"] = [extra["authors"]]
    unit = cls(path, parent=parent, collection_id=collection_id, time_created=_parse_time(manifest.get("time_created")),
               attributes=attributes, writable=writable, lock=lock, extra_manifest=extra)
    if isinstance(unit, Dataset):
        unit._load_data(manifest, manifest_path)
    elif isinstance(unit, Group):
        unit._load_children()
    return unit


def load(path: str | os.PathLike[str], *, writable: bool = False) -> Unit:
    """Load any EDL unit (collection, group or dataset) and everything below it."""
    directory = Path(path)
    if not (directory / MANIFEST).is_file():
        raise EdlError(f"'{directory}' is no EDL unit (no {MANIFEST})")
    return _load_unit(directory, parent=None, writable=writable, lock=threading.RLock())
