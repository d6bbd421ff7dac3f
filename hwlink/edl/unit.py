"""The part every EDL unit shares (collection, group, dataset): identity, manifest keys, attributes, saving.

Writing follows the format notes' recommended profile (edl-format.md §8): ``format_version = "1"``, ``type``,
``time_created`` as a native TOML offset date-time, the collection's UUIDv7 on every unit.

Crash safety: a unit's directory and manifest are written the moment it is created, attributes are written when
set, and every write replaces the file atomically (temp file, fsync, rename). ``close()`` rewrites what changed,
children before parents.
"""

from __future__ import annotations

import datetime
import secrets
import string
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from hwlink.edl.files import atomic_write_text
from hwlink.edl.toml import dumps
from hwlink.errors import HwlinkError

FORMAT_VERSION = "1"
MANIFEST = "manifest.toml"
ATTRIBUTES = "attributes.toml"


class EdlError(HwlinkError):
    """An EDL tree cannot be created, opened or changed as asked."""


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


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _make_unit_directory(path: Path) -> None:
    """Create a unit directory; an existing *empty* directory without a manifest is adopted."""
    try:
        path.mkdir(parents=False)
    except FileExistsError:
        if not path.is_dir() or (path / MANIFEST).exists() or any(path.iterdir()):
            raise EdlError(f"cannot create EDL unit '{path}': it already exists on disk") from None
    except OSError as error:
        raise EdlError(f"unable to create EDL directory '{path}': {error.strerror or error}") from None



# kind (the manifest's ``type``) -> class; every Unit subclass with a kind registers itself when defined
UNIT_CLASSES: dict[str, type[Unit]] = {}


class Unit:
    """Common part of collections, groups and datasets: name, path, manifest keys, attributes."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            UNIT_CLASSES[cls.kind] = cls

    def __init__(self, path: Path, *, parent: Unit | None, collection_id: uuid.UUID | None,
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
    def parent(self) -> Unit | None:
        """The group (or collection) holding this unit; ``None`` for the unit a tree was loaded from."""
        return self._parent

    @property
    def collection(self) -> Unit | None:
        """The collection at the root of this unit's tree (``None`` when the tree was loaded below one)."""
        unit: Unit = self
        while unit.parent is not None:
            unit = unit.parent
        return unit if unit.kind == "collection" else None

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

    def _load_contents(self, manifest: Mapping[str, Any], where: Path,
                       load_unit: Callable[..., Unit]) -> None:
        """Read what the manifest lists below this unit (children, data files); ``load_unit`` loads a child."""

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

