"""edlio 0.3.4, the reference reader, loads every kind of collection hwlink writes and reads its data back."""

from __future__ import annotations

import uuid
from pathlib import Path

import edlio
import numpy as np

from hwlink.edl import Collection, CreateFlag
from hwlink.sync.tsync import TSyncFileMode, TSyncWriter, read_tsync


def _units(unit: edlio.EDLGroup) -> dict[str, object]:
    found: dict[str, object] = {}

    def visit(group: edlio.EDLGroup, prefix: str) -> None:
        for child in group.children:
            found[prefix + child.name] = child
            if isinstance(child, edlio.EDLGroup):
                visit(child, prefix + child.name + "/")

    visit(unit, "")
    return found


def test_edlio_loads_tree_ids_attributes_csv_and_tsync(tmp_path: Path) -> None:
    pairs = np.array([[0, 1_000], [1_000_000, 1_001_050], [2_000_000, 2_002_100]], dtype=np.int64)
    with Collection.create(tmp_path, "session 1", generator="hwlink test",
                           authors=[{"name": "Ada Lovelace", "email": "ada@example.org"}],
                           attributes={"subject_id": "m01", "success": True, "recording_length_msec": 1234,
                                       "modules": [{"id": "x", "name": "X"}, {"id": "y", "name": "Y"}]}) as collection:
        behaviour = collection.create_group("behaviour")
        events = behaviour.create_dataset("events")
        events.update_attributes({"time_unit": "us", "columns": ["time_usec", "event"]})
        with events.table_writer(["time_usec", "event", "value"], summary="Lever presses") as table:
            table.extend([[100, "press", 1], [250, "release", 0], [900, "press", 1]])
        tsync_path = events.add_aux_file("events_clocksync.tsync", summary="Clock sync")
        with TSyncWriter(tsync_path, mode=TSyncFileMode.SYNCPOINTS, collection_id=collection.collection_id,
                         tolerance_us=1000) as sync:
            sync.add_many(pairs[:, 0], pairs[:, 1])
        signals = collection.create_group("daq").create_group("dev1", CreateFlag.CREATE_OR_OPEN)
        ai = signals.create_dataset("ai").signal_writer(["ai0"], np.float32, sample_rate_hz=1000)
        ai.append(np.arange(10), np.ones(10, dtype=np.float32))
        collection.create_dataset("empty")

    loaded = edlio.load(tmp_path / "session 1")
    assert isinstance(loaded, edlio.EDLCollection) and loaded.name == "session 1"
    assert loaded.collection_id == collection.collection_id and loaded.collection_id.version == 7
    assert loaded.time_created == collection.time_created
    assert loaded.attributes["subject_id"] == "m01" and loaded.attributes["recording_length_msec"] == 1234
    assert [dict(module) for module in loaded.attributes["modules"]] == [{"id": "x", "name": "X"},
                                                                         {"id": "y", "name": "Y"}]
    assert [dict(author) for author in loaded.authors] == [{"name": "Ada Lovelace", "email": "ada@example.org"}]
    units = _units(loaded)
    assert sorted(units) == ["behaviour", "behaviour/events", "daq", "daq/dev1", "daq/dev1/ai", "empty"]
    kinds = {name: type(unit).__name__ for name, unit in units.items()}
    assert kinds["behaviour"] == "EDLGroup" and kinds["daq/dev1/ai"] == "EDLDataset"
    for name in units:  # every unit's own manifest carries the id (a direct load does not inherit it)
        assert edlio.load(tmp_path / "session 1" / name).collection_id == collection.collection_id

    events_ds = units["behaviour/events"]
    assert dict(events_ds.attributes) == {"time_unit": "us", "columns": ["time_usec", "event"]}
    assert list(events_ds.read_data()) == [["time_usec", "event", "value"], ["100", "press", "1"],
                                           ["250", "release", "0"], ["900", "press", "1"]]
    assert events_ds.data.summary == "Lever presses"
    tsync = next(iter(events_ds.read_aux_data("tsync")))
    np.testing.assert_array_equal(np.asarray(tsync.times), pairs)
    assert tsync.collection_id == collection.collection_id
    np.testing.assert_array_equal(read_tsync(tsync_path).times, pairs)

    ai_ds = units["daq/dev1/ai"]
    assert ai_ds.data.file_type == "h5" and ai_ds.data.media_type is None
    assert [Path(path).name for path in ai_ds.data.part_paths()] == ["ai.h5"]


def test_edlio_reads_multi_part_tables_in_index_order(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        dataset = collection.create_dataset("table")
        second = dataset.add_data_part("part-b.csv", index=1)
        first = dataset.add_data_part("part-a.csv", index=0)
        first.write_text("t;v\n1;a\n")
        second.write_text("t;v\n2;b\n")
    rows = list(edlio.load(tmp_path / "rec").dataset_by_name("table").read_data())
    assert rows == [["t", "v"], ["1", "a"], ["t", "v"], ["2", "b"]]


def test_edlio_accepts_every_manifest_after_reopening_and_adding(tmp_path: Path) -> None:
    Collection.create(tmp_path, "rec").close()
    with Collection.open(tmp_path / "rec", writable=True) as collection:
        collection.create_group("later").create_dataset("d").set_data_file("x.csv")
        (collection.path / "later" / "d" / "x.csv").write_text("a;b\n1;2\n")
    loaded = edlio.load(tmp_path / "rec")
    dataset = loaded.group_by_name("later").dataset_by_name("d")
    assert list(dataset.read_data()) == [["a", "b"], ["1", "2"]]
    assert isinstance(loaded.collection_id, uuid.UUID)


def test_our_reader_and_verify_take_collections_written_by_edlio(tmp_path: Path) -> None:
    from hwlink.edl.inspect import verify_tree

    written = edlio.EDLCollection("by-edlio")
    written.root_path = tmp_path
    dataset = written.group_by_name("grp", create=True).dataset_by_name("tab", create=True)
    _, path = dataset.data.new_part("t.csv")
    dataset.data.media_type = "text/csv"
    Path(path).write_text("a;b\n1;2\n")
    written.attributes["x"] = 1
    written.save()

    collection = Collection.open(tmp_path / "by-edlio")
    assert collection.collection_id == written.collection_id and collection.attributes == {"x": 1}
    table = collection["grp/tab"]
    assert table.data.media_type == "text/csv" and table.data.part_paths() == [Path(path)]
    assert collection.time_created.tzinfo is None  # edlio writes local times without offset (Q8)
    findings = verify_tree(tmp_path / "by-edlio")
    assert {finding.level for finding in findings} == {"warning"}
    assert any("UTC offset" in finding.message for finding in findings)
    assert any("no generator" in finding.message for finding in findings)
