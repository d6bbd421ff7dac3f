"""Loading EDL trees from disk: manifests and attributes read back into collections, groups and datasets.

Reading accepts Syntalos' and edlio's collections too (old single-table ``data_aux``, ``index = 0`` on single
parts, string or local ``time_created``); units loaded from disk are never rewritten unless changed.
"""

from __future__ import annotations

import datetime
import os
import threading
import tomllib
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwlink.edl.unit import ATTRIBUTES, FORMAT_VERSION, MANIFEST, UNIT_CLASSES, EdlError, Unit

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



def _load_unit(path: Path, *, parent: Unit | None, writable: bool, lock: threading.RLock) -> Unit:
    manifest_path = path / MANIFEST
    manifest = _read_toml(manifest_path)
    version = str(manifest.get("format_version", "unknown"))
    if version != FORMAT_VERSION:
        raise EdlError(f"{manifest_path}: unsupported EDL format version '{version}' (expected '1')")
    kind = manifest.get("type")
    cls = UNIT_CLASSES.get(kind) if isinstance(kind, str) else None
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
    unit._load_contents(manifest, manifest_path, _load_unit)
    return unit


def load(path: str | os.PathLike[str], *, writable: bool = False) -> Unit:
    """Load any EDL unit (collection, group or dataset) and everything below it."""
    directory = Path(path)
    if not (directory / MANIFEST).is_file():
        raise EdlError(f"'{directory}' is no EDL unit (no {MANIFEST})")
    return _load_unit(directory, parent=None, writable=writable, lock=threading.RLock())
