"""The ``data`` and ``data_aux`` entries of a dataset manifest: a data file and its parts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwlink.edl.unit import EdlError, _opt_str


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
