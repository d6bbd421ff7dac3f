"""Offline inspection of EDL trees: summaries for ``hwlink edl ls`` and format checks for ``hwlink edl verify``.

HDF5 (ours) and CSV files are understood here; readers for other file types (tsync, which lives in
``hwlink.sync``) are passed in by the caller so this package stays free of upward imports.
"""

from __future__ import annotations

import datetime
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from hwlink.edl.collection import Collection
from hwlink.edl.datafile import DataFile
from hwlink.edl.dataset import Dataset
from hwlink.edl.files import media_type_of
from hwlink.edl.group import Group
from hwlink.edl.loading import load
from hwlink.edl.tables import read_table
from hwlink.edl.unit import ATTRIBUTES, MANIFEST, EdlError, Unit, sanitize_name

# A reader returns (rows, (first, last) master-clock µs or None, problems).
FileReader = Callable[[Path], tuple[int, tuple[int, int] | None, list[str]]]

# Media types edlio 0.3.4 can dispatch on; anything else must go without media_type (format notes Q7).
_EDLIO_MEDIA_PREFIXES = ("video/", "text/csv", "application/json")
_EDLIO_FILE_TYPES = {"csv", "json", "json.zst", "tsync", "rhd", "zarr"}
_CHECK_CHUNK_ROWS = 1 << 20


@dataclass
class Finding:
    level: str  # "error" (a reader would fail or data is lost) or "warning" (legal but questionable)
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass
class FileSummary:
    path: Path
    size: int | None
    rows: int | None = None
    span: tuple[float, float] | None = None
    span_label: str = ""
    problems: list[str] = field(default_factory=list)


def _check_hdf5(path: Path, summary: FileSummary, thorough: bool) -> None:
    with h5py.File(path, "r") as file:
        columns = {name: file[name] for name in file if isinstance(file[name], h5py.Dataset)
                   and name != "sample_gaps"}
        if "timestamps" not in columns:
            summary.rows = None if not columns else int(next(iter(columns.values())).shape[0])
            return
        timestamps = columns["timestamps"]
        summary.rows = int(timestamps.shape[0])
        lengths = {name: int(column.shape[0]) for name, column in columns.items()}
        if len(set(lengths.values())) > 1:
            summary.problems.append(f"columns differ in length: {lengths}")
        if summary.rows:
            first, last = int(timestamps[0]), int(timestamps[-1])
            summary.span, summary.span_label = (first / 1e6, last / 1e6), "s"
            if thorough:
                previous = None
                for start in range(0, summary.rows, _CHECK_CHUNK_ROWS):
                    chunk = timestamps[start:start + _CHECK_CHUNK_ROWS]
                    steps = np.diff(chunk if previous is None else np.concatenate(([previous], chunk)))
                    if (steps < 0).any():
                        summary.problems.append(f"timestamps decrease after row {start + int(np.argmax(steps < 0))}")
                        break
                    previous = chunk[-1]


def _check_csv(path: Path, summary: FileSummary) -> None:
    header, rows = read_table(path)
    summary.rows = len(rows)
    if not header:
        summary.problems.append("empty table (no header)")
        return
    bad = next((index for index, row in enumerate(rows) if len(row) != len(header)), None)
    if bad is not None:
        summary.problems.append(f"row {bad + 1} has {len(rows[bad])} cells, the header {len(header)}")
    if rows and "time" in header[0].lower():
        try:
            first, last = float(rows[0][0]), float(rows[-1][0])
        except ValueError:
            return
        name = header[0]
        if name.lower().endswith(("usec", "_us")):
            summary.span, summary.span_label = (first / 1e6, last / 1e6), "s"
        else:
            summary.span, summary.span_label = (first, last), f"({name})"


def summarize_file(path: Path, entry: DataFile, readers: Mapping[str, FileReader],
                   thorough: bool = False) -> FileSummary:
    """Size, rows and time range of one data file; problems found on the way are listed, not raised."""
    try:
        size = path.stat().st_size
    except OSError:
        return FileSummary(path, None, problems=["file is missing"])
    summary = FileSummary(path, size)
    file_type = (entry.file_type or "").lower()
    try:
        if file_type in ("h5", "hdf5"):
            _check_hdf5(path, summary, thorough)
        elif file_type == "csv" or (entry.media_type or "").startswith("text/csv"):
            _check_csv(path, summary)
        elif file_type in readers:
            rows, span, problems = readers[file_type](path)
            summary.rows, summary.problems = rows, list(problems)
            if span is not None:
                summary.span, summary.span_label = (span[0] / 1e6, span[1] / 1e6), "s"
    except Exception as error:  # any unreadable file is a finding, not a crash of the inspection
        summary.problems.append(f"cannot read: {error}")
    return summary


def _size(size: int | None) -> str:
    if size is None:
        return "MISSING"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return ""


def _describe_file(role: str, entry: DataFile, readers: Mapping[str, FileReader]) -> list[str]:
    lines = []
    for path in entry.part_paths():
        summary = summarize_file(path, entry, readers)
        text = f"{role}: {path.name}  [{entry.type_label}]  {_size(summary.size)}"
        if summary.rows is not None:
            text += f"  {summary.rows} rows"
        if summary.span is not None:
            first, last = summary.span
            text += f"  {first:.6g} .. {last:.6g} {summary.span_label}"
        if entry.summary:
            text += f"  - {entry.summary}"
        for problem in summary.problems:
            text += f"  ! {problem}"
        lines.append(text)
    return lines


def describe_tree(path: Path, readers: Mapping[str, FileReader] | None = None) -> list[str]:
    """Human-readable listing of a unit and everything below it."""
    root = load(path)
    readers = readers or {}
    lines: list[str] = []

    def visit(unit: Unit, depth: int) -> None:
        indent = "  " * depth
        head = f"{indent}{unit.name}{'/' if not isinstance(unit, Collection) or depth else ''}  {unit.kind}"
        if isinstance(unit, Collection):
            head += f"  id {unit.collection_id}"
            if unit.generator:
                head += f"  generator {unit.generator!r}"
        if unit.time_created is not None:
            head += f"  created {unit.time_created.isoformat()}"
        lines.append(head)
        if isinstance(unit, Dataset):
            if unit.data is not None:
                lines.extend(f"{indent}  {text}" for text in _describe_file("data", unit.data, readers))
            for entry in unit.aux_data:
                lines.extend(f"{indent}  {text}" for text in _describe_file("aux ", entry, readers))
        elif isinstance(unit, Group):
            for child in unit.children:
                visit(child, depth + 1)

    visit(root, 0)
    return lines


# ----- verify ------------------------------------------------------------------------------------------------
def verify_tree(path: Path, readers: Mapping[str, FileReader] | None = None) -> list[Finding]:
    """Every problem found in the tree at ``path``: format rules, name rules, and the data files themselves."""
    try:
        root = load(path)
    except EdlError as error:
        return [Finding("error", str(path), str(error))]
    readers = readers or {}
    findings: list[Finding] = []
    collection_id = root.collection_id
    units = list(root.walk()) if isinstance(root, Group) else [root]
    for unit in units:
        where = unit.unit_path or unit.name
        findings += _verify_manifest(unit, where, collection_id)
        if isinstance(unit, Group):
            findings += _verify_children(unit, where)
        if isinstance(unit, Dataset):
            findings += _verify_dataset(unit, where, readers)
    return findings


def _verify_manifest(unit: Unit, where: str, collection_id: uuid.UUID | None) -> list[Finding]:
    findings = []
    with open(unit.path / MANIFEST, "rb") as handle:
        manifest = tomllib.load(handle)
    if not isinstance(manifest.get("format_version"), str):
        findings.append(Finding("warning", where, "format_version should be the string \"1\""))
    created = manifest.get("time_created")
    if created is None:
        findings.append(Finding("error", where, "time_created is missing (edlio fails with KeyError)"))
    elif not isinstance(created, datetime.datetime) or created.tzinfo is None:
        findings.append(Finding("warning", where, "time_created should be a TOML date-time with UTC offset"))
    if unit.collection_id is None:
        findings.append(Finding("warning", where, "no collection_id"))
    elif collection_id is not None and unit.collection_id != collection_id:
        findings.append(Finding("error", where, f"collection_id {unit.collection_id} differs from the "
                                                f"collection's {collection_id}"))
    if isinstance(unit, Collection) and not manifest.get("generator"):
        findings.append(Finding("warning", where, "collection has no generator"))
    if unit.parent is not None and sanitize_name(unit.name) != unit.name:
        findings.append(Finding("warning", where, f"name is not sanitised (Syntalos would use "
                                                  f"'{sanitize_name(unit.name)}')"))
    for leftover in unit.path.glob(f".{MANIFEST}.*.tmp"):
        findings.append(Finding("warning", where, f"leftover temporary file {leftover.name} (interrupted write)"))
    for leftover in unit.path.glob(f".{ATTRIBUTES}.*.tmp"):
        findings.append(Finding("warning", where, f"leftover temporary file {leftover.name} (interrupted write)"))
    return findings


def _verify_children(group: Group, where: str) -> list[Finding]:
    findings = []
    seen: dict[str, str] = {}
    for child in group.children:
        folded = child.name.lower()
        if folded in seen:
            findings.append(Finding("error", where, f"children '{seen[folded]}' and '{child.name}' differ only in "
                                                    "letter case"))
        seen[folded] = child.name
    for entry in sorted(group.path.iterdir()):
        if entry.is_dir() and not (entry / MANIFEST).is_file():
            findings.append(Finding("warning", where, f"directory '{entry.name}' has no manifest (ignored by "
                                                      "readers)"))
    return findings


def _verify_entry(entry: DataFile, role: str, where: str) -> list[Finding]:
    findings = []
    if not entry.parts:
        findings.append(Finding("warning", where, f"{role} entry has no parts"))
    if not entry.media_type and not entry.file_type:
        findings.append(Finding("error", where, f"{role} entry has neither media_type nor file_type"))
    if entry.media_type and not entry.media_type.startswith(_EDLIO_MEDIA_PREFIXES) \
            and "json" not in entry.media_type:
        if (entry.file_type or "").lower() in _EDLIO_FILE_TYPES:
            findings.append(Finding("error", where, f"{role} media_type '{entry.media_type}' is unknown to edlio, "
                                                    f"which prefers it over file_type '{entry.file_type}' and "
                                                    "then fails to read"))
        else:
            findings.append(Finding("warning", where, f"{role} media_type '{entry.media_type}' is unknown to "
                                                      "edlio (write file_type only)"))
    expected = media_type_of(entry.parts[0].fname) if entry.parts else None
    if expected and entry.media_type and entry.media_type != expected:
        findings.append(Finding("warning", where, f"{role} media_type '{entry.media_type}' for a "
                                                  f"'{entry.file_type}' file (expected '{expected}')"))
    indexes = [part.index for part in entry.parts if part.index >= 0]
    if len(indexes) != len(set(indexes)):
        findings.append(Finding("error", where, f"{role} parts repeat an index: {indexes}"))
    return findings


def _verify_dataset(dataset: Dataset, where: str, readers: Mapping[str, FileReader]) -> list[Finding]:
    findings: list[Finding] = []
    entries: list[tuple[str, DataFile]] = []
    if dataset.data is None:
        # aux-only datasets (a board's clock sync) hold something, and one whose `contents` attribute says why it
        # is empty is no surprise: no warning for either
        if not dataset.aux_data and "contents" not in dataset.attributes:
            findings.append(Finding("warning", where, "dataset has no data"))
    else:
        entries.append(("data", dataset.data))
    entries += [("aux", entry) for entry in dataset.aux_data]
    for role, entry in entries:
        findings += _verify_entry(entry, role, where)
        for path in entry.part_paths():
            summary = summarize_file(path, entry, readers, thorough=True)
            for problem in summary.problems:
                level = "warning" if problem.startswith("truncated") else "error"
                findings.append(Finding(level, where, f"{path.name}: {problem}"))
    return findings
