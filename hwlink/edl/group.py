"""EDL groups: named containers of groups and datasets (a collection is the root group)."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hwlink.edl.dataset import Dataset
from hwlink.edl.files import fsync_directory, natural_key
from hwlink.edl.unit import MANIFEST, EdlError, Unit, _make_unit_directory, _now, sanitize_name


class CreateFlag(enum.Enum):
    """What ``create_group``/``create_dataset`` do when the child exists (Syntalos' EDLCreateFlag)."""

    OPEN_ONLY = "open-only"
    CREATE_OR_OPEN = "create-or-open"
    MUST_CREATE = "must-create"



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
    def _load_contents(self, manifest: Mapping[str, Any], where: Path,
                       load_unit: Callable[..., Unit]) -> None:
        try:
            entries = sorted(os.scandir(self._path), key=lambda entry: natural_key(entry.name))
        except OSError as error:
            raise EdlError(f"cannot list '{self._path}': {error.strerror or error}") from None
        for entry in entries:
            manifest_path = Path(entry.path) / MANIFEST
            if not entry.is_dir() or not manifest_path.is_file():
                continue
            child = load_unit(Path(entry.path), parent=self, writable=self._writable, lock=self._lock)
            if child.kind == "collection":
                raise EdlError(f"{entry.path}: a collection cannot be nested in another unit")
            self._children[entry.name] = child
