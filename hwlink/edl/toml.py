"""A small TOML 1.0 writer (reading is stdlib ``tomllib``).

Manifests need native offset date-times, arrays of tables and correctly escaped strings; the writer covers
exactly the value types EDL metadata uses (str, bool, int, float, datetime/date/time, lists, tuples,
mappings, numpy scalars and arrays). ``None`` values are omitted like Syntalos does, inside arrays they become
the string ``"null"``.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from hwlink.errors import HwlinkError

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


class TomlWriteError(HwlinkError, TypeError):
    """A value cannot be represented in TOML."""


def _plain(value: Any) -> Any:
    """numpy scalars/arrays and tuples to plain Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def format_key(key: str) -> str:
    if not isinstance(key, str):
        raise TomlWriteError(f"TOML keys must be strings, got {key!r}")
    return key if _BARE_KEY.fullmatch(key) else format_string(key)


def format_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _format_float(number: float) -> str:
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    text = repr(number)
    return text if any(c in text for c in ".eEn") else text + ".0"


def format_value(value: Any) -> str:
    """An inline TOML value (tables become inline tables)."""
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, str):
        return format_string(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(format_value("null" if item is None else item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = [f"{format_key(k)} = {format_value(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}" if items else "{}"
    raise TomlWriteError(f"cannot write {type(value).__name__} value {value!r} to TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)


def _emit_table(table: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    simple: list[tuple[str, Any]] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    table_arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for key, raw in table.items():
        value = _plain(raw)
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append((key, value))
        elif _is_table_array(value):
            table_arrays.append((key, value))
        else:
            simple.append((key, value))
    for key, value in simple:
        lines.append(f"{format_key(key)} = {format_value(value)}")
    for key, sub in tables:
        sub_path = [*path, format_key(key)]
        lines.append("")
        lines.append(f"[{'.'.join(sub_path)}]")
        _emit_table(sub, sub_path, lines)
    for key, items in table_arrays:
        sub_path = [*path, format_key(key)]
        for item in items:
            lines.append("")
            lines.append(f"[[{'.'.join(sub_path)}]]")
            _emit_table(item, sub_path, lines)


def dumps(document: Mapping[str, Any]) -> str:
    """Serialize a mapping as a TOML document (keys in insertion order)."""
    lines: list[str] = []
    _emit_table(document, [], lines)
    text = "\n".join(lines).lstrip("\n")
    return text + "\n" if text else ""
