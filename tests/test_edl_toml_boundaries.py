"""The manifest TOML writer, byte for byte: exact text per value type, the key and string edge cases, None
handling, and the values it must refuse (a manifest Syntalos and edlio read is text, not just data)."""

from __future__ import annotations

import datetime
import tomllib
from pathlib import Path

import numpy as np
import pytest

from hwlink.edl import DataFile, DataPart, EdlError
from hwlink.edl.toml import TomlWriteError, dumps, format_key, format_string, format_value


@pytest.mark.parametrize("value, text", [
    (True, "true"), (False, "false"), (0, "0"), (-(2**63), "-9223372036854775808"), (2**63 - 1, "9223372036854775807"),
    (1.0, "1.0"), (-0.0, "-0.0"), (1e300, "1e+300"), (1.5e-7, "1.5e-07"), (float("nan"), "nan"),
    (float("inf"), "inf"), (float("-inf"), "-inf"), (0.1, "0.1"), (12345678901234567.0, "1.2345678901234568e+16"),
    ("", '""'), ("a", '"a"'),
    (np.int64(-3), "-3"), (np.float32(0.5), "0.5"), (np.bool_(True), "true"), (np.array([1, 2]), "[1, 2]"),
    ((1, "x"), '[1, "x"]'), ([], "[]"), ([None, 1], '["null", 1]'), ({}, "{}"), ({"a": None}, "{}"),
    ({"a": 1, "b c": [2]}, '{a = 1, "b c" = [2]}'), ({"a": 1, "n": None, "z": 2}, "{a = 1, z = 2}"),
    (datetime.date(2026, 1, 2), "2026-01-02"), (datetime.time(3, 4, 5), "03:04:05"),
    (datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC), "2026-01-02T03:04:05.000006+00:00"),
    (datetime.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),
])
def test_each_value_type_has_its_exact_text(value, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize("key, text", [
    ("a", "a"), ("A-z_09", "A-z_09"), ("", '""'), ("a b", '"a b"'), ("a.b", '"a.b"'), ("µ", '"µ"'),
    ("a\n", '"a\\n"'),
])
def test_keys_are_bare_only_when_toml_allows_it(key: str, text: str) -> None:
    assert format_key(key) == text


@pytest.mark.parametrize("key", [1, None, ("a",), b"a"])
def test_non_string_keys_are_refused(key) -> None:
    with pytest.raises(TomlWriteError, match="^TOML keys must be strings, got "):
        format_key(key)
    with pytest.raises(TomlWriteError):
        dumps({key: 1})


@pytest.mark.parametrize("char, escaped", [
    ("\b", "\\b"), ("\t", "\\t"), ("\n", "\\n"), ("\f", "\\f"), ("\r", "\\r"), ('"', '\\"'), ("\\", "\\\\"),
    ("\x00", "\\u0000"), ("\x1f", "\\u001F"), ("\x7f", "\\u007F"), ("\x07", "\\u0007"),
    (" ", " "), ("~", "~"), ("\x80", "\x80"), ("µ", "µ"), ("'", "'"),
])
def test_every_escape_boundary(char: str, escaped: str) -> None:
    assert format_string(f"a{char}b") == f'"a{escaped}b"'
    assert tomllib.loads(f"x = {format_string(char)}")["x"] == char


@pytest.mark.parametrize("value", [object(), b"bytes", {1, 2}, 1j, datetime.timedelta(1)])
def test_values_toml_cannot_hold_are_refused(value) -> None:
    with pytest.raises(TomlWriteError, match=f"^cannot write {type(value).__name__} value "):
        format_value(value)
    with pytest.raises(TypeError):  # TomlWriteError is a TypeError too
        dumps({"x": value})


def test_document_layout_exactly() -> None:
    document = {
        "format_version": "1", "skip": None, "n": np.int32(3),
        "table": {"x": 1, "inner": {"y": [1.0]}, "none": None},
        "parts": [{"fname": "a.csv", "index": 0}, {"fname": "b.csv", "sub": {"k": "v"}}],
        "empty_list": [],
        "mixed": [{"a": 1}, 2],
        "tuple_tables": ({"t": 1},),
    }
    assert dumps(document) == (
        'format_version = "1"\n'
        "n = 3\n"
        "empty_list = []\n"
        "mixed = [{a = 1}, 2]\n"
        "\n"
        "[table]\n"
        "x = 1\n"
        "\n"
        "[table.inner]\n"
        "y = [1.0]\n"
        "\n"
        "[[parts]]\n"
        'fname = "a.csv"\n'
        "index = 0\n"
        "\n"
        "[[parts]]\n"
        'fname = "b.csv"\n'
        "\n"
        "[parts.sub]\n"
        'k = "v"\n'
        "\n"
        "[[tuple_tables]]\n"
        "t = 1\n"
    )
    assert tomllib.loads(dumps(document))["tuple_tables"] == [{"t": 1}]


def test_quoted_keys_in_table_headers_and_empty_documents() -> None:
    assert dumps({}) == ""
    assert dumps({"a": None}) == ""
    assert dumps({"a b": {"c.d": {"e": 1}}}) == '["a b"]\n\n["a b"."c.d"]\ne = 1\n'
    assert dumps({"t": {}}) == "[t]\n"
    assert dumps({"x": [{"y": [{"z": 1}]}]}) == "[[x]]\n\n[[x.y]]\nz = 1\n"
    assert tomllib.loads(dumps({"x": [{"y": [{"z": 1}]}]})) == {"x": [{"y": [{"z": 1}]}]}


# ----- data-file manifest entries: part indices and the list-order fallback ----------------------------------


def test_single_part_entries_carry_no_index_and_multi_part_entries_always_do() -> None:
    single = DataFile([DataPart("a.csv", 5)], file_type="csv")
    assert single.to_manifest() == {"file_type": "csv", "parts": [{"fname": "a.csv"}]}
    multi = DataFile([DataPart("b.csv", -1), DataPart("a.csv", 0), DataPart("c.csv", -1)], media_type="text/csv",
                     summary="s")
    # index -1 means "list order": the position is written, so a reader never sees -1
    assert multi.to_manifest() == {"media_type": "text/csv", "summary": "s", "parts": [
        {"fname": "b.csv", "index": 0}, {"fname": "a.csv", "index": 0}, {"fname": "c.csv", "index": 2}]}
    assert DataFile([]).to_manifest() == {"parts": []}
    assert dumps({"data": DataFile([DataPart("x.h5")], file_type="hdf5").to_manifest()}) == \
        '[data]\nfile_type = "hdf5"\n\n[[data.parts]]\nfname = "x.h5"\n'


def test_manifest_entries_read_back_with_their_fallbacks(tmp_path: Path) -> None:
    entry = DataFile.from_manifest({"parts": [{"fname": "b", "index": 1}, {"fname": "a", "index": 0}],
                                    "file_type": "csv", "summary": 3}, tmp_path, tmp_path / "manifest.toml")
    assert entry.part_paths() == [tmp_path / "a", tmp_path / "b"]
    assert (entry.file_type, entry.media_type, entry.summary, entry.type_label) == ("csv", None, "3", "csv")
    bare = DataFile.from_manifest({"parts": None}, tmp_path, tmp_path)
    assert bare.parts == [] and bare.type_label == "?"
    assert DataFile.from_manifest({"parts": [{"fname": "z"}]}, tmp_path, tmp_path).parts == [DataPart("z", -1)]
    assert DataFile([], file_type="csv", media_type="text/csv").type_label == "text/csv"
    with pytest.raises(EdlError, match="data part without 'fname'"):
        DataFile.from_manifest({"parts": [{"name": "x"}]}, tmp_path, tmp_path)
    with pytest.raises(EdlError, match="data entry must be a table, got list"):
        DataFile.from_manifest([], tmp_path, tmp_path)
    with pytest.raises(EdlError, match="no base directory"):
        DataFile([DataPart("a")]).part_paths()


def test_only_the_blank_line_before_a_first_table_is_trimmed() -> None:
    assert dumps({"X": 1, "Xy": {"XX": "X"}}) == 'X = 1\n\n[Xy]\nXX = "X"\n'
    assert dumps({"XX": {"a": 1}}) == "[XX]\na = 1\n"
