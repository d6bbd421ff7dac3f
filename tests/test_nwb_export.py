"""`hwlink export nwb`: pynwb's validator finds no errors, and every timestamp and sample reads back as the EDL has it."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from pynwb import NWBHDF5IO, validate

import hwlink.nwb_export as nwb_export
from hwlink.cli.main import cli
from hwlink.edl import Collection, SignalWriter, read_signal_file, read_table
from hwlink.nwb_export import NwbMetadata, export_nwb
from hwlink.sync.tsync import read_tsync
from runtime_support import EXAMPLES, run_experiment

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BLINK1 = SHARED / "data" / "edl" / "blink1"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def exported(collection: Path, target: Path, *extra: str) -> Path:
    code, output = run("export", "nwb", str(collection), "-o", str(target), "-q", *extra)
    assert code == 0, output
    assert validate(path=str(target)) == []
    return target


def usec(seconds: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(seconds) * 1e6).astype(np.int64)


def test_record_collection(tmp_path: Path) -> None:
    code, output = run("record", "-b", "sim://?d2=square:20Hz&drift_ppm=100&analog_interval=5ms&seed=1",
                       "--lines", "2,A0", "--duration", "1s", "-o", str(tmp_path / "rec"), "-q")
    assert code == 0, output
    collection = tmp_path / "rec"
    target = exported(collection, tmp_path / "rec.nwb", "--subject-id", "m1", "--species", "Mus musculus",
                      "--sex", "F", "--age", "P90D")
    analog = read_signal_file(collection / "A0" / "A0.h5")
    header, rows = read_table(collection / "D2" / "D2.csv")
    with NWBHDF5IO(str(target), "r") as io:
        nwb = io.read()
        assert nwb.subject.subject_id == "m1" and nwb.subject.species == "Mus musculus"
        assert nwb.session_id == "rec"
        series = nwb.acquisition["A0"]
        assert np.array_equal(usec(series.timestamps[:]), analog["timestamps"])
        assert np.array_equal(series.data[:], analog["data"][:, 0])
        table = nwb.processing["tables"]["D2"]
        assert table.colnames == tuple(header)
        for index, column in enumerate(header):
            assert table[column].data[:].tolist() == [int(row[index]) for row in rows]
        level = nwb.acquisition["D2_level"]
        assert np.array_equal(usec(level.timestamps[:]), [int(row[0]) for row in rows])
        assert level.data[:].tolist() == [int(row[1]) for row in rows]
        highs = nwb.intervals["D2_high"]
        rises = [int(r[0]) for r, n in zip(rows, rows[1:]) if r[1] == "1" and n[1] == "0"]
        assert usec(highs["start_time"].data[:]).tolist() == rises
        # the clock sync is in the file: the tsync rows, exactly
        sync = nwb.processing["clock_sync"]["A0_A0_clocksync_sync"]
        tsync = read_tsync(collection / "A0" / "A0_clocksync.tsync")
        assert np.array_equal(sync["device-time"].data[:], tsync.time1)
        assert np.array_equal(sync["master-time"].data[:], tsync.time2)


@pytest.mark.parametrize("example", ["bandpass.toml", "pulse_on_rise.toml"])  # OE processors; a script
def test_run_collection_with_scripts_and_oe_processors(tmp_path: Path, example: str) -> None:
    result = run_experiment(EXAMPLES / example, tmp_path / "out", duration="1500ms")
    assert result.result.ok, result.output
    target = exported(result.path, tmp_path / "run.nwb")
    checked = 0
    with NWBHDF5IO(str(target), "r") as io:
        nwb = io.read()
        for h5 in sorted(result.path.rglob("*.h5")):
            content = read_signal_file(h5)
            layout = content["attrs"].get("hwlink_layout")
            name = h5.parent.name
            if layout == "hwlink-signals-1":
                series = nwb.acquisition[name]
                assert np.array_equal(usec(series.timestamps[:]), content["timestamps"])
                assert np.array_equal(series.data[:], content["data"])
                checked += 1
            elif layout == "hwlink-line-readings-1":
                names = dict(zip(content["attrs"]["line_ids"].tolist(), content["attrs"]["line_names"], strict=True))
                for line_id in np.unique(content["line_ids"]).tolist():
                    rows = content["line_ids"] == line_id
                    series = nwb.acquisition[f"{name}_{names[line_id]}"]
                    assert np.array_equal(usec(series.timestamps[:]), content["timestamps"][rows])
                    assert np.array_equal(series.data[:], content["data"][rows, 0])
                    checked += 1
        assert checked >= 1
        for csv in sorted(result.path.rglob("*.csv")):
            header, rows = read_table(csv)
            label = str(csv.parent.relative_to(result.path)).replace("/", "_")
            table = nwb.processing["tables"][label]
            assert len(table) == len(rows)
            for index, column in enumerate(table.colnames):
                assert [str(v) for v in table[column].data[:]] == [row[index] for row in rows]


def test_shared_syntalos_sample(tmp_path: Path) -> None:
    target = exported(BLINK1, tmp_path / "blink1.nwb")
    header, rows = read_table(BLINK1 / "events" / "table.csv")
    with NWBHDF5IO(str(target), "r") as io:
        nwb = io.read()
        events = nwb.processing["tables"]["events"]
        assert events["RecTime"].data[:].tolist() == [int(row[0]) for row in rows]
        assert events["State"].data[:].tolist() == [int(row[1]) for row in rows]
        controls = nwb.processing["tables"]["miniscope"]
        assert "ID" in controls.colnames and len(controls) > 0
        sync = nwb.processing["clock_sync"]["intan-signals_a870_data_sync"]
        tsync = read_tsync(BLINK1 / "intan-signals" / "a870_data.tsync")
        assert np.array_equal(sync.columns[0].data[:], tsync.time1)
        assert np.array_equal(sync.columns[1].data[:], tsync.time2)
        assert nwb.session_start_time.isoformat().startswith("2021-02-08T18:18:41")


def test_large_signal_streams_in_chunks_and_compresses_where_it_pays(tmp_path: Path, monkeypatch) -> None:
    collection = Collection.create(tmp_path, "big")
    rows = 300_000
    timestamps = np.arange(rows, dtype=np.int64) * 100 + 12_345
    smooth = (1000 * np.sin(np.arange(rows) / 500)).astype(np.int16).reshape(-1, 1)
    noise = np.random.default_rng(0).integers(-2**31, 2**31 - 1, size=(rows, 2), dtype=np.int64).astype(np.int32)
    for name, data in (("smooth", smooth), ("noise", noise)):
        dataset = collection.create_dataset(name)
        path = dataset.set_data_file(f"{name}.h5", summary=name)
        with SignalWriter(path, [f"c{n}" for n in range(data.shape[1])], data.dtype, sample_rate_hz=10_000) as w:
            w.append(timestamps, data)
    collection.close()
    monkeypatch.setattr(nwb_export, "CHUNK_BYTES", 64 << 10)  # many chunks
    seen: list[int] = []
    report = export_nwb(tmp_path / "big", tmp_path / "big.nwb", progress=seen.append,
                        metadata=NwbMetadata(session_description="big"))
    assert len(seen) > 20 and max(seen) <= (64 << 10) * 2
    assert validate(path=str(report.path)) == []
    with NWBHDF5IO(str(report.path), "r") as io:
        nwb = io.read()
        assert np.array_equal(nwb.acquisition["smooth"].data[:], smooth)
        assert np.array_equal(nwb.acquisition["noise"].data[:], noise)
        assert np.array_equal(usec(nwb.acquisition["noise"].timestamps[:]), timestamps)
    with h5py.File(report.path, "r") as file:
        assert file["acquisition/smooth/data"].compression == "gzip"
        assert file["acquisition/noise/data"].compression is None


@pytest.mark.parametrize("args, message", [
    (["--species", "Mus musculus"], "--subject-id"),
    (["--subject-id", "m1", "--sex", "female"], "--sex must be one of"),
    (["--subject-id", "m1", "--age", "90 days"], "ISO 8601 duration"),
    (["--session-start", "2024-05-01T10:00:00"], "time zone"),
    (["--session-start", "yesterday"], "ISO 8601"),
])
def test_missing_or_bad_metadata_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = run("export", "nwb", str(BLINK1), "-o", str(tmp_path / "x.nwb"), "-q", *args)
    assert code == 2 and message in output and "Traceback" not in output, output
    assert not (tmp_path / "x.nwb").exists() and not list(tmp_path.glob("*.partial.nwb"))


def test_refuses_to_overwrite_and_non_collections(tmp_path: Path) -> None:
    target = exported(BLINK1, tmp_path / "a.nwb")
    before = target.read_bytes()
    code, output = run("export", "nwb", str(BLINK1), "-o", str(target), "-q")
    assert code == 2 and "--overwrite" in output and target.read_bytes() == before
    code, output = run("export", "nwb", str(BLINK1 / "events"), "-o", str(tmp_path / "b.nwb"), "-q")
    assert code == 2 and "not a collection" in output
    code, output = run("export", "nwb", str(tmp_path), "-o", str(tmp_path / "c.nwb"), "-q")
    assert code == 2 and "Traceback" not in output


def test_wall_clock_anchor_and_metadata_from_attributes(tmp_path: Path) -> None:
    anchor = "2026-03-04T05:06:07.123456+00:00"
    collection = Collection.create(tmp_path, "anchored", attributes={
        "clock_start_utc": anchor, "experimenter": "Doe, Jane", "lab": "Vision",
        "subject": {"id": "m7", "species": "Mus musculus", "sex": "M", "age": "P60D"}})
    table = collection.create_dataset("trials").table_writer(["time_usec", "outcome"])
    table.append([1_500_000, "hit"])
    table.append([2_250_001, "miss"])
    collection.close()
    report = export_nwb(tmp_path / "anchored", tmp_path / "a.nwb")
    assert not [note for note in report.notes if "session_start_time" in note]
    assert validate(path=str(report.path)) == []
    with NWBHDF5IO(str(report.path), "r") as io:
        nwb = io.read()
        assert nwb.session_start_time.isoformat() == anchor
        assert nwb.subject.subject_id == "m7" and nwb.subject.age == "P60D" and nwb.lab == "Vision"
        trials = nwb.processing["tables"]["trials"]
        assert trials["time_usec"].data[:].tolist() == [1_500_000, 2_250_001]
        assert list(trials["outcome"].data[:]) == ["hit", "miss"]
    # without an anchor: the creation time, and a note saying so
    report = export_nwb(BLINK1, tmp_path / "b.nwb")
    assert any("no wall-clock anchor" in note for note in report.notes)
