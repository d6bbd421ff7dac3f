"""Electrode descriptions for NWB export: which recorded channels are electrodes, and where they are.

An electrodes file is a CSV table with a header and one row per electrode; its columns are NWB's
``ElectrodeTable`` columns plus the two that say which recorded channel the row describes.

Required (NWB needs a location and a group for every electrode):

* ``dataset``: the signal dataset, by its path in the collection (``raw``, ``ephys/probe1``) or its name
* ``channel``: the channel name as recorded (a signal file's channel, or an analog line's name)
* ``location``: brain area of the electrode (NWB ``location``, e.g. ``CA1``)
* ``group``: electrode group name (NWB ``ElectrodeGroup``, e.g. ``shank0``)

Optional (empty cells are missing values):

* ``group_description``; ``device`` (the probe/amplifier the group is on, NWB ``Device``),
  ``device_description``, ``device_manufacturer``: one value per group/device, given on any of its rows
* ``x``, ``y``, ``z`` (position in the brain, NWB's axes: +x posterior, +y inferior, +z right),
  ``rel_x``, ``rel_y``, ``rel_z`` (position on the probe), ``imp`` (impedance, ohms): numbers
* ``filtering`` (hardware filtering), ``reference`` (reference electrode or scheme): text
* ``conversion``: volts per recorded value, for datasets that do not say (no ``volts_per_code``, units not volts)

Any other column becomes a custom column of the electrode table (ints, floats or text as the cells allow).
Cells are trimmed; empty optional cells are missing values. Errors name the file and its line (header = line 1).
Parsing needs no collection: which dataset and channel a row names is checked by the export.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwlink.errors import HwlinkError

__all__ = ["Electrode", "ElectrodesError", "ElectrodeTableSpec", "read_electrodes", "electrodes_from_rows",
           "REQUIRED_COLUMNS", "FLOAT_COLUMNS", "TEXT_COLUMNS"]

REQUIRED_COLUMNS = ("dataset", "channel", "location", "group")
FLOAT_COLUMNS = ("x", "y", "z", "rel_x", "rel_y", "rel_z", "imp")
TEXT_COLUMNS = ("filtering", "reference")
GROUP_COLUMNS = ("group_description", "device")
DEVICE_COLUMNS = ("device_description", "device_manufacturer")
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, *FLOAT_COLUMNS, *TEXT_COLUMNS, *GROUP_COLUMNS, *DEVICE_COLUMNS, "conversion")
RESERVED = ("id", "group_name")  # columns the electrode table makes itself
NAME = re.compile(r"^[^/:]+$")  # NWB object names: no slash; colons confuse HDF5 tools


class ElectrodesError(HwlinkError, ValueError):
    """An electrodes file (or rows given from Python) cannot describe electrodes; the message names the row."""


@dataclass(frozen=True)
class Electrode:
    """One row: a recorded channel that is an electrode."""

    where: str  # "FILE line N" (or "electrodes row N" from Python), for errors
    dataset: str
    channel: str
    location: str
    group: str
    group_description: str | None = None
    device: str | None = None
    device_description: str | None = None
    device_manufacturer: str | None = None
    position: dict[str, float] = field(default_factory=dict)  # x, y, z, rel_x, rel_y, rel_z, imp given
    text: dict[str, str] = field(default_factory=dict)  # filtering, reference given
    conversion: float | None = None
    extra: dict[str, str] = field(default_factory=dict)  # custom columns


@dataclass
class ElectrodeTableSpec:
    """Every electrode of a file, in file order, and the custom columns it adds."""

    source: str
    electrodes: list[Electrode]
    extra_columns: list[str]
    optional_columns: list[str]  # known optional columns present in the header


def read_electrodes(path: str | os.PathLike[str]) -> ElectrodeTableSpec:
    """Parse an electrodes CSV file (UTF-8, comma-, tab- or semicolon-separated as its header line is; header
    first); see the module docstring."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ElectrodesError(f"{source}: cannot read the electrodes file: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ElectrodesError(f"{source} line {line}: not UTF-8 text (byte {error.start}); save the electrodes "
                              "file as UTF-8 CSV") from None
    if "\x00" in text:
        raise ElectrodesError(f"{source}: contains NUL bytes; the electrodes file must be a UTF-8 CSV text file")
    first = text.split("\n", 1)[0]
    # comma; else tab or semicolon (spreadsheets in locales with a decimal comma save CSV with ';')
    delimiter = next((d for d in (",", "\t", ";") if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[str, list[str]]] = []
    header: list[str] | None = None
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines
            if header is None:
                header = [cell.strip() for cell in cells]
                header_line = reader.line_num
                continue
            rows.append((f"{source} line {reader.line_num}", cells))
    except csv.Error as error:
        raise ElectrodesError(f"{source} line {reader.line_num}: not valid CSV: {error}") from None
    if header is None:
        raise ElectrodesError(f"{source}: empty; an electrodes file needs a header ({', '.join(REQUIRED_COLUMNS)}) "
                              "and one row per electrode")
    where_header = f"{source} line {header_line}"
    records: list[tuple[str, dict[str, str]]] = []
    for where, cells in rows:
        if len(cells) > len(header):
            raise ElectrodesError(f"{where}: {len(cells)} cells but the header has {len(header)} columns")
        records.append((where, dict(zip(header, cells, strict=False))))
    return _spec(source, where_header, header, records)


def electrodes_from_rows(rows: Iterable[Mapping[str, Any]], source: str = "electrodes") -> ElectrodeTableSpec:
    """The same as :func:`read_electrodes`, from rows given in Python (mappings column -> value)."""
    records: list[tuple[str, dict[str, str]]] = []
    header: list[str] = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise ElectrodesError(f"{source} row {number}: a mapping of column -> value, not {type(row).__name__}")
        record = {}
        for key, value in row.items():
            name = str(key).strip()
            if name not in header:
                header.append(name)
            record[name] = "" if value is None else str(value)
        records.append((f"{source} row {number}", record))
    return _spec(source, f"{source} columns", header, records)


def _spec(source: str, where_header: str, header: list[str], records: list[tuple[str, dict[str, str]]]) -> \
        ElectrodeTableSpec:
    seen: set[str] = set()
    for column in header:
        if not column:
            raise ElectrodesError(f"{where_header}: a column has no name")
        if column in seen:
            raise ElectrodesError(f"{where_header}: column {column!r} appears twice")
        if column in RESERVED:
            raise ElectrodesError(f"{where_header}: column {column!r} is made by the electrode table itself; "
                                  "remove it (the group goes in column 'group')")
        seen.add(column)
    missing = [column for column in REQUIRED_COLUMNS if column not in seen]
    if missing:
        raise ElectrodesError(f"{where_header}: missing required column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)} (an electrodes file needs {', '.join(REQUIRED_COLUMNS)})")
    if not records:
        raise ElectrodesError(f"{source}: no electrodes (a header but no rows)")
    extra = [column for column in header if column not in KNOWN_COLUMNS]
    for column in extra:
        if not NAME.match(column):
            raise ElectrodesError(f"{where_header}: column name {column!r} cannot name an NWB column (no / or :)")
    electrodes = [_electrode(where, record, extra) for where, record in records]
    optional = [column for column in (*FLOAT_COLUMNS, *TEXT_COLUMNS) if column in seen]
    _check_consistent(electrodes)
    return ElectrodeTableSpec(source, electrodes, extra, optional)


def _electrode(where: str, record: dict[str, str], extra: list[str]) -> Electrode:
    cells = {key: value.strip() for key, value in record.items()}
    for column in REQUIRED_COLUMNS:
        if not cells.get(column):
            raise ElectrodesError(f"{where}: column {column!r} is empty (NWB needs a {column} for every electrode)"
                                  if column in ("location", "group") else f"{where}: column {column!r} is empty")
    for column in ("group", "device"):
        if cells.get(column) and not NAME.match(cells[column]):
            raise ElectrodesError(f"{where}: {column} {cells[column]!r} cannot be an NWB name (no / or :)")
    position: dict[str, float] = {}
    for column in FLOAT_COLUMNS:
        if cells.get(column):
            position[column] = _number(where, column, cells[column])
    conversion = None
    if cells.get("conversion"):
        conversion = _number(where, "conversion", cells["conversion"])
        if not conversion > 0:
            raise ElectrodesError(f"{where}: conversion must be volts per recorded value, > 0; got "
                                  f"{cells['conversion']!r}")
    if "imp" in position and position["imp"] < 0:
        raise ElectrodesError(f"{where}: imp (impedance, ohms) cannot be negative: {cells['imp']!r}")
    return Electrode(
        where=where, dataset=cells["dataset"].strip("/"), channel=cells["channel"], location=cells["location"],
        group=cells["group"], group_description=cells.get("group_description") or None,
        device=cells.get("device") or None, device_description=cells.get("device_description") or None,
        device_manufacturer=cells.get("device_manufacturer") or None, position=position,
        text={column: cells[column] for column in TEXT_COLUMNS if cells.get(column)}, conversion=conversion,
        extra={column: cells.get(column, "") for column in extra})


def _number(where: str, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ElectrodesError(f"{where}: column {column!r} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ElectrodesError(f"{where}: column {column!r} must be a finite number, got {text!r}")
    return value


def _check_consistent(electrodes: list[Electrode]) -> None:
    """A group has one description and one device; a device one description and manufacturer."""
    groups: dict[str, dict[str, tuple[str, str]]] = {}
    devices: dict[str, dict[str, tuple[str, str]]] = {}
    for electrode in electrodes:
        for table, key, columns in ((groups, electrode.group, GROUP_COLUMNS),
                                    (devices, electrode.device or "", DEVICE_COLUMNS)):
            known = table.setdefault(key, {})
            for column in columns:
                value = getattr(electrode, column)
                if value is None:
                    continue
                if column in known and known[column][0] != value:
                    owner = f"group {electrode.group!r}" if table is groups else f"device {electrode.device!r}"
                    raise ElectrodesError(f"{electrode.where}: {column} {value!r} differs from {known[column][0]!r} "
                                          f"given for {owner} at {known[column][1]}")
                known.setdefault(column, (value, electrode.where))
