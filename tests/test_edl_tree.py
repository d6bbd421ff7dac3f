"""The EDL tree: manifests, names, create flags, data-file registration, crash-safe writes, the reader."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

from hwlink.edl import Collection, CreateFlag, Dataset, EdlError, Group, load, sanitize_name
from hwlink.errors import HwlinkError
from tests.conftest import SHARED

BLINK1 = SHARED / "data" / "edl" / "blink1"


def manifest(path: Path) -> dict:
    with open(path / "manifest.toml", "rb") as handle:
        return tomllib.load(handle)


def test_manifests_on_every_unit(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec", authors=[{"name": "Ada", "email": ""}, {"name": "Bo", "email": "b@x"}],
                           attributes={"subject_id": "m1", "modules": [{"id": "a", "name": "A"}]}) as collection:
        group = collection.create_group("behaviour")
        dataset = group.create_dataset("events")
    top = manifest(tmp_path / "rec")
    assert top["format_version"] == "1" and top["type"] == "collection"
    assert top["generator"] == "hwlink"
    assert top["authors"] == [{"name": "Ada"}, {"name": "Bo", "email": "b@x"}]
    collection_id = uuid.UUID(top["collection_id"])
    assert collection_id.version == 7 and top["collection_id"] == str(collection_id)
    for path, kind in ((tmp_path / "rec" / "behaviour", "group"), (dataset.path, "dataset")):
        document = manifest(path)
        assert document["type"] == kind and document["collection_id"] == top["collection_id"]
        assert isinstance(document["time_created"], datetime.datetime)
        assert document["time_created"].utcoffset() is not None
        assert "generator" not in document
    with open(tmp_path / "rec" / "attributes.toml", "rb") as handle:
        assert tomllib.load(handle) == {"subject_id": "m1", "modules": [{"id": "a", "name": "A"}]}
    assert not (dataset.path / "attributes.toml").exists()


def test_units_exist_on_disk_as_soon_as_created(tmp_path: Path) -> None:
    collection = Collection.create(tmp_path / "rec")
    dataset = collection.create_group("g").create_dataset("d")
    data_path = dataset.set_data_file("values.csv", "Values")
    # Nothing closed yet: a crash now still leaves a loadable tree listing the file.
    reloaded = Collection.open(tmp_path / "rec")
    entry = reloaded["g/d"].data
    assert entry is not None and [part.fname for part in entry.parts] == ["values.csv"]
    assert entry.media_type == "text/csv" and entry.summary == "Values"
    assert data_path == dataset.path / "values.csv"
    assert not list((tmp_path / "rec").rglob("*.tmp"))
    collection.close()


@pytest.mark.parametrize("raw, clean", [
    ("  Top Camera\t", "Top Camera"), ("a/b\\c", "a_b_c"), ("x:y", "xy"), ("AUX", "_AUX"), ("aux", "aux"),
    ("héllo.v1", "héllo.v1"),
])
def test_sanitize_like_syntalos(raw: str, clean: str) -> None:
    assert sanitize_name(raw) == clean


def test_empty_name_gets_random_four_characters() -> None:
    name = sanitize_name(" : ")
    assert len(name) == 4 and name.isalnum()


def test_names_are_looked_up_in_sanitised_form(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        first = collection.create_dataset("a:b")
        assert first.name == "ab"
        # Syntalos compares the raw name and creates a second 'ab' (Q2); here the clash is caught at once.
        with pytest.raises(EdlError, match="Dataset 'ab' already exists in collection 'rec'"):
            collection.create_dataset("a:b")
        assert collection.create_dataset("a:b", CreateFlag.CREATE_OR_OPEN) is first
        assert collection.dataset("ab") is first and collection["a:b"] is first
        assert [child.name for child in collection.children] == ["ab"]


def test_create_flags(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        with pytest.raises(EdlError, match="Group 'g' not found in collection 'rec'"):
            collection.create_group("g", CreateFlag.OPEN_ONLY)
        group = collection.create_group("g", CreateFlag.CREATE_OR_OPEN)
        assert collection.create_group("g", CreateFlag.CREATE_OR_OPEN) is group
        assert collection.create_group("g", CreateFlag.OPEN_ONLY) is group
        with pytest.raises(EdlError, match="Group 'g' already exists"):
            collection.create_group("g", CreateFlag.MUST_CREATE)
        with pytest.raises(EdlError, match="A group named 'g' already exists"):
            collection.create_dataset("g", CreateFlag.CREATE_OR_OPEN)
        with pytest.raises(EdlError, match="differ in more than letter case"):
            collection.create_dataset("G")
        with pytest.raises(EdlError, match="not found"):
            group.dataset("missing")


def test_existing_directory_that_is_not_a_unit_is_refused(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        (collection.path / "stray").mkdir()
        (collection.path / "stray" / "file.txt").write_text("x")
        with pytest.raises(EdlError, match="already exists on disk"):
            collection.create_dataset("stray")
        (collection.path / "empty").mkdir()
        assert collection.create_dataset("empty").path == collection.path / "empty"


def test_unwritable_or_existing_destination_gives_clear_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(EdlError, match="unable to create directory .*file.*Not a directory") as caught:
        Collection.create(blocker / "sub", "rec")
    assert isinstance(caught.value, HwlinkError) and "\n" not in str(caught.value)
    Collection.create(tmp_path, "rec").close()
    with pytest.raises(EdlError, match="already exists on disk"):
        Collection.create(tmp_path, "rec")


def test_data_files_parts_aux_and_q3_fix(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        dataset = collection.create_dataset("video")
        path = dataset.set_data_file("x:y.mkv", "Video")
        assert path.name == "xy.mkv"  # the registered name is the one the caller writes to (Q3 fixed)
        dataset.add_data_part("xy-2.mkv")
        dataset.add_aux_file("z_timestamps.tsync", key="ts", summary="Frame times")
        dataset.add_aux_file("settings.xml", summary="Settings")
        with pytest.raises(EdlError, match="already has a data part"):
            dataset.add_data_part("x:y.mkv")
    document = manifest(dataset.path)
    assert document["data"] == {"file_type": "mkv", "media_type": "video/x-matroska", "summary": "Video",
                                "parts": [{"fname": "xy.mkv", "index": 0}, {"fname": "xy-2.mkv", "index": 1}]}
    # aux entries sorted by key ('settings.xml' < 'ts'); no media type for tsync (Q7); no index on one part
    assert document["data_aux"] == [
        {"file_type": "xml", "summary": "Settings", "parts": [{"fname": "settings.xml"}]},
        {"file_type": "tsync", "summary": "Frame times", "parts": [{"fname": "z_timestamps.tsync"}]},
    ]


def test_scan_patterns_resolved_at_close(tmp_path: Path) -> None:
    collection = Collection.create(tmp_path, "rec")
    dataset = collection.create_dataset("cam")
    for name in ("vid10.mkv", "vid2.mkv", "vid2_timestamps.tsync", "vid10_timestamps.tsync"):
        dataset.path_for(name).write_bytes(b"x")
    dataset.set_data_scan_pattern("vid*", "Video")
    dataset.add_aux_scan_pattern("vid*.tsync", "Video timestamps")
    collection.close()
    document = manifest(dataset.path)
    assert [part["fname"] for part in document["data"]["parts"]] == ["vid2.mkv", "vid10.mkv"]
    assert [part["fname"] for part in document["data_aux"][0]["parts"]] == [
        "vid2_timestamps.tsync", "vid10_timestamps.tsync"]
    assert document["data_aux"][0]["summary"] == "Video timestamps"


def test_attributes_written_when_set_and_removed_when_emptied(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        dataset = collection.create_dataset("d")
        dataset.set_attribute("sample_rate", 30000.0)
        dataset.update_attributes({"video": {"width": 640, "colored": False}, "names": ["a", "b"]})
        with open(dataset.path / "attributes.toml", "rb") as handle:
            assert tomllib.load(handle) == {"sample_rate": 30000.0, "video": {"width": 640, "colored": False},
                                            "names": ["a", "b"]}
        dataset.update_attributes({"sample_rate": None, "video": None, "names": None})
        assert not (dataset.path / "attributes.toml").exists()


def test_round_trip_through_our_reader(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec", attributes={"k": 1}) as collection:
        collection.create_group("g").create_group("h").create_dataset("d").set_data_file("a.h5")
    loaded = Collection.open(tmp_path / "rec")
    assert loaded.collection_id == collection.collection_id and loaded.attributes == {"k": 1}
    assert [unit.unit_path for unit in loaded.walk()] == ["", "g", "g/h", "g/h/d"]
    dataset = loaded["g/h/d"]
    assert isinstance(dataset, Dataset) and dataset.data is not None
    assert dataset.data.file_type == "h5" and dataset.data.media_type is None
    assert dataset.data.part_paths() == [tmp_path / "rec" / "g" / "h" / "d" / "a.h5"]
    with pytest.raises(EdlError, match="read-only"):
        loaded.create_dataset("new")


def test_writable_open_adds_without_rewriting_untouched_units(tmp_path: Path) -> None:
    Collection.create(tmp_path, "rec").close()
    before = (tmp_path / "rec" / "manifest.toml").read_bytes()
    with Collection.open(tmp_path / "rec", writable=True) as collection:
        collection.create_dataset("later").add_aux_file("fix.tsync")
    assert (tmp_path / "rec" / "manifest.toml").read_bytes() == before
    assert manifest(tmp_path / "rec" / "later")["collection_id"] == str(collection.collection_id)


def test_reader_loads_syntalos_sample_blink1() -> None:
    stamp = {path: path.stat().st_mtime_ns for path in BLINK1.rglob("*")}
    collection = Collection.open(BLINK1)
    assert collection.name == "blink1" and collection.generator == "Syntalos 1.0.0"
    assert collection.collection_id == uuid.UUID("a87011dd-80a7-429c-af2f-e8d7608bc0ea")
    assert collection.attributes["success"] is True and len(collection.attributes["modules"]) == 16
    assert [child.name for child in collection.children] == [
        "events", "intan-signals", "miniscope", "sync-clock", "syntalos_internal", "videos"]
    video = collection["videos/tis-camera"]
    assert isinstance(video, Dataset) and video.data is not None
    assert video.data.media_type == "video/x-matroska" and video.data.parts[0].fname == "video.mkv"
    tsync = video.aux_file("tsync")  # old single-table data_aux form
    assert tsync is not None and tsync.part_paths()[0].name == "video_timestamps.tsync"
    assert video.attributes["video"]["framerate"] == 60.0
    assert isinstance(collection["syntalos_internal"], Group)
    assert len(list(collection.walk())) == 14
    collection.close()
    assert {path: path.stat().st_mtime_ns for path in BLINK1.rglob("*")} == stamp


def test_load_any_unit_and_reject_bad_manifests(tmp_path: Path) -> None:
    dataset = load(BLINK1 / "events")
    assert isinstance(dataset, Dataset) and dataset.parent is None
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.toml").write_text('format_version = "2"\ntype = "group"\n')
    with pytest.raises(EdlError, match="unsupported EDL format version '2'"):
        load(bad)
    (bad / "manifest.toml").write_text('format_version = "1"\ntype = "Dataset"\n')
    with pytest.raises(EdlError, match="unknown EDL unit type 'Dataset'"):
        load(bad)
    (bad / "manifest.toml").write_text('format_version = "1"\ntype = \n')
    with pytest.raises(EdlError, match="invalid TOML"):
        load(bad)
    with pytest.raises(EdlError, match="no EDL unit"):
        load(tmp_path)
    with pytest.raises(EdlError, match="is an EDL dataset, not a collection"):
        Collection.open(BLINK1 / "events")


def test_atomic_manifest_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collection = Collection.create(tmp_path, "rec")
    dataset = collection.create_dataset("d")
    before = (dataset.path / "manifest.toml").read_bytes()

    def failing_replace(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(EdlError, match="unable to write manifest .*No space left on device"):
        dataset.set_data_file("a.csv")
    monkeypatch.undo()
    assert (dataset.path / "manifest.toml").read_bytes() == before
    assert not list(dataset.path.glob(".*.tmp"))
    collection.close()


def test_close_rewrites_manifests_of_units_created_here(tmp_path: Path) -> None:
    collection = Collection.create(tmp_path, "rec")
    dataset = collection.create_dataset("d")
    (dataset.path / "manifest.toml").write_text("damaged")
    (collection.path / "manifest.toml").unlink()
    collection.close()
    assert manifest(dataset.path)["type"] == "dataset" and manifest(collection.path)["type"] == "collection"


def test_edl_package_stands_alone() -> None:
    code = ("import sys, hwlink.edl, hwlink.edl.inspect; "
            "bad = [m for m in sys.modules if m.startswith(('hwlink.drivers', 'hwlink.runtime', 'hwlink.cli', "
            "'hwlink.sync', 'hwlink.lines'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_short_tag_and_empty_datasets(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        assert collection.short_tag == collection.collection_id.hex[-8:]
        dataset = collection.create_dataset("d")
        assert dataset.is_empty
        dataset.add_aux_scan_pattern("*.tsync")
        assert not dataset.is_empty
        other = collection.create_dataset("e")
        other.set_data_file(f"{collection.short_tag}-e.csv")
        assert not other.is_empty and other.data.parts[0].fname.startswith(collection.short_tag)


FILE_SIZE_LIMIT_SCRIPT = """
import resource, signal, sys
import numpy as np
from hwlink.edl import Collection
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
collection = Collection.create(sys.argv[1], "rec")
table = collection.create_dataset("b").table_writer(["x"], flush_interval=60)
table.append([1])
signals = collection.create_dataset("a").signal_writer(["x"], np.int16)
try:
    signals.append(np.arange(2_000_000), np.zeros(2_000_000, dtype=np.int16))   # 4 MB + 16 MB: too big
except Exception as error:
    print("append:", type(error).__name__)
try:
    collection.close()
except Exception as error:
    print("close:", type(error).__name__, error)
"""


def test_a_failing_writer_does_not_keep_the_rest_from_closing(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT_SCRIPT, str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert "append: SignalWriteError" in out.stdout, out
    assert f"close: SignalWriteError writing '{tmp_path / 'rec' / 'a' / 'a.h5'}' failed: File too large\n" \
        in out.stdout, out
    assert (tmp_path / "rec" / "b" / "b.csv").read_text() == "x\n1\n"
    assert manifest(tmp_path / "rec")["type"] == "collection"
    assert manifest(tmp_path / "rec" / "a")["data"]["parts"] == [{"fname": "a.h5"}]
