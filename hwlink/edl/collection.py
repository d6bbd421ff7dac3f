"""EDL collections: the root of one recording, with its generator, authors and collection id.

``generator`` and ``authors`` are written on the collection only (edl-format.md §8).
"""

from __future__ import annotations

import datetime
import os
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwlink.edl.group import Group
from hwlink.edl.ids import uuid7
from hwlink.edl.loading import load
from hwlink.edl.unit import EdlError, _make_unit_directory, _now, _opt_str, sanitize_name

DEFAULT_GENERATOR = "hwlink"


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



def _author(author: Mapping[str, str]) -> dict[str, str]:
    if not author.get("name"):
        raise EdlError(f"an author needs a name, got {dict(author)!r}")
    return {key: str(value) for key, value in author.items() if value not in (None, "")}
