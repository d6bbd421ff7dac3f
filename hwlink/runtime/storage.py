"""EDL storage handles for scripts: the engine owns the collection, a worker asks it for groups and datasets.

As in Syntalos, a script's ``create_dataset`` must create: a dataset name already used in the run (by this
script, another one or a recorder) is refused with Syntalos' error. hwlink's own uses for a module (the tsync
file of ``init_clock_synchronizer``, an Open Ephys processor's recording directory) share the module's
dataset instead (``module_dataset``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from hwlink.runtime.ports import SyntalosPyError


class StorageOwner(Protocol):
    collection_path: Path | None
    module_name: str

    def storage_request(self, op: str, explicit: bool = True, **fields: Any) -> dict[str, Any]: ...


class EdlDataset:
    """A dataset directory in the run's collection; files written here are registered with the engine."""

    def __init__(self, host: StorageOwner, path: Path, name: str, unit: str) -> None:
        self._host = host
        self.path = Path(path)
        self.name = name
        self._unit = unit

    @property
    def is_empty(self) -> bool:
        return not any(p.name not in ("manifest.toml", "attributes.toml") for p in self.path.iterdir())

    def set_data_file(self, file_name: str, summary: str = "", scan: bool = False) -> Path:
        self._host.storage_request("set-data-file", unit=self._unit, file_name=file_name, summary=summary,
                                   scan=scan)
        return self.path / file_name

    def add_aux_file(self, file_name: str, key: str = "", summary: str = "", scan: bool = False) -> Path:
        self._host.storage_request("add-aux-file", unit=self._unit, file_name=file_name, key=key, summary=summary,
                                   scan=scan)
        return self.path / file_name

    def path_for_basename(self, basename: str) -> Path:
        return self.path / basename

    def set_attribute(self, key: str, value: Any) -> None:
        self._host.storage_request("set-attribute", unit=self._unit, key=key, value=value)

    def __repr__(self) -> str:
        return f"<EdlDataset {self._unit}>"


class EdlGroup:
    """A group directory in the run's collection."""

    def __init__(self, host: StorageOwner, path: Path, name: str, unit: str) -> None:
        self._host = host
        self.path = Path(path)
        self.name = name
        self._unit = unit

    def create_group(self, name: str) -> EdlGroup:
        """Create-or-open (Syntalos' semantics for groups)."""
        reply = self._host.storage_request("group", parent=self._unit, name=str(name))
        return EdlGroup(self._host, Path(reply["path"]), reply["name"], reply["unit"])

    def create_dataset(self, name: str) -> EdlDataset:
        """Must create: a name already used in the run raises SyntalosPyError."""
        reply = self._host.storage_request("dataset", parent=self._unit, name=str(name))
        return EdlDataset(self._host, Path(reply["path"]), reply["name"], reply["unit"])

    def set_attribute(self, key: str, value: Any) -> None:
        self._host.storage_request("set-attribute", unit=self._unit, key=key, value=value)

    def __repr__(self) -> str:
        return f"<EdlGroup {self._unit or '/'}>"


def root_group(host: StorageOwner) -> EdlGroup:
    if host.collection_path is None:
        raise SyntalosPyError("No EDL root group available (prepare step has not been reached yet).")
    return EdlGroup(host, host.collection_path, host.collection_path.name, "")


def module_dataset(host: StorageOwner) -> EdlDataset:
    """The module's own dataset (named after it) for hwlink's own files; shared with the script's default
    dataset, and created on first use."""
    root_group(host)
    reply = host.storage_request("dataset", explicit=False, parent="", name=host.module_name)
    return EdlDataset(host, Path(reply["path"]), reply["name"], reply["unit"])
