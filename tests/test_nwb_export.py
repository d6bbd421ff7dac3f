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


# ----- electrodes: channels an electrodes file names are ElectricalSeries -----------------------------------
def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_record_collection_with_electrodes(tmp_path: Path) -> None:
    code, output = run("record", "-b", "sim://?analog_interval=5ms&drift_ppm=50&seed=3", "--lines", "A0,A1,A2",
                       "--duration", "1s", "-o", str(tmp_path / "rec"), "-q")
    assert code == 0, output
    collection = tmp_path / "rec"
    electrodes = write_csv(tmp_path / "electrodes.csv", (
        "dataset,channel,location,group,group_description,device,device_description,x,y,z,imp,filtering,shank\n"
        'A0,A0,CA1,tetrode1,"tetrode 1, left CA1",drive1,8-tetrode drive,-2.0,1.5,1.25,150000,0.1-7500 Hz,1\n'
        "A1,A1,CA3,tetrode2,,drive1,,-2.1,,1.3,,,2\n"))
    target = exported(collection, tmp_path / "rec.nwb", "--electrodes", str(electrodes))
    with NWBHDF5IO(str(target), "r") as io:
        nwb = io.read()
        table = nwb.electrodes
        assert len(table) == 2 and list(table.id[:]) == [0, 1]
        assert list(table["location"].data[:]) == ["CA1", "CA3"]
        assert list(table["group_name"].data[:]) == ["tetrode1", "tetrode2"]
        assert [group.name for group in table["group"].data[:]] == ["tetrode1", "tetrode2"]
        assert table["x"].data[:].tolist() == [-2.0, -2.1] and np.isnan(table["y"].data[1])
        assert table["imp"].data[0] == 150000 and list(table["filtering"].data[:]) == ["0.1-7500 Hz", ""]
        assert table["shank"].data[:].tolist() == [1, 2]
        group = nwb.electrode_groups["tetrode1"]
        assert group.description == "tetrode 1, left CA1" and group.location == "CA1"
        assert group.device is nwb.devices["drive1"] and nwb.devices["drive1"].description == "8-tetrode drive"
        assert nwb.electrode_groups["tetrode2"].device is nwb.devices["drive1"]
        for row, line in enumerate(("A0", "A1")):
            recorded = read_signal_file(collection / line / f"{line}.h5")
            series = nwb.acquisition[line]
            assert series.neurodata_type == "ElectricalSeries"
            assert series.electrodes.data[:].tolist() == [row] and series.electrodes.table is table
            assert series.data.dtype == recorded["data"].dtype  # the codes as recorded, not volts
            assert np.array_equal(series.data[:], recorded["data"][:, 0])
            assert np.array_equal(usec(series.timestamps[:]), recorded["timestamps"])
            assert series.unit == "volts" and series.conversion == recorded["attrs"]["volts_per_code"]
            assert series.conversion == pytest.approx(5.0 / 1023)
        # the line the file does not name stays a TimeSeries
        other = nwb.acquisition["A2"]
        assert other.neurodata_type == "TimeSeries"
        assert np.array_equal(other.data[:], read_signal_file(collection / "A2" / "A2.h5")["data"][:, 0])


def test_run_collection_signal_channels_as_electrodes_from_python(tmp_path: Path) -> None:
    result = run_experiment(EXAMPLES / "bandpass.toml", tmp_path / "out", duration="1500ms")
    assert result.result.ok, result.output
    raw = read_signal_file(result.path / "raw" / "raw.h5")
    assert raw["attrs"]["channel_names"] == ["ch0", "ch1", "ch2", "ch3"]  # signal-source: no units
    rows = [{"dataset": "raw", "channel": "ch3", "location": "DG", "group": "shank1", "conversion": 2e-6},
            {"dataset": "raw", "channel": "ch0", "location": "CA1", "group": "shank0", "conversion": 1e-6},
            {"dataset": "raw", "channel": "ch1", "location": "CA1", "group": "shank0", "conversion": 1e-6}]
    report = export_nwb(result.path, tmp_path / "run.nwb", electrodes=rows)
    assert report.electrical_series == ["raw"]
    assert validate(path=str(report.path)) == []
    with NWBHDF5IO(str(report.path), "r") as io:
        nwb = io.read()
        series = nwb.acquisition["raw"]
        assert series.neurodata_type == "ElectricalSeries"
        # columns in recorded order (ch0, ch1, ch3); each points at its own electrode-table row
        assert series.electrodes.data[:].tolist() == [1, 2, 0]
        assert list(nwb.electrodes["location"].data[:]) == ["DG", "CA1", "CA1"]
        assert series.data.dtype == np.float32 and np.array_equal(series.data[:], raw["data"][:, [0, 1, 3]])
        assert np.array_equal(usec(series.timestamps[:]), raw["timestamps"])
        assert series.conversion == 1.0 and series.channel_conversion[:].tolist() == pytest.approx([1e-6, 1e-6, 2e-6])
        rest = nwb.acquisition["raw_other_channels"]
        assert rest.neurodata_type == "TimeSeries" and np.array_equal(rest.data[:], raw["data"][:, [2]])
        assert np.array_equal(usec(rest.timestamps[:]), raw["timestamps"])
        assert nwb.acquisition["filtered"].neurodata_type == "TimeSeries"  # not named: as before


def test_electrode_columns_stream_in_chunks_with_the_datasets_conversion(tmp_path: Path, monkeypatch) -> None:
    collection = Collection.create(tmp_path, "probe", attributes={"clock_start_utc": "2026-01-02T03:04:05+00:00"})
    rows = 120_000
    timestamps = np.arange(rows, dtype=np.int64) * 33 + 7  # 30.3 kHz
    codes = np.random.default_rng(5).integers(-2000, 2000, size=(rows, 3), dtype=np.int16)
    microvolts = np.random.default_rng(6).normal(0, 50, size=(rows, 2)).astype(np.float32)
    amp = collection.create_dataset("amp")
    amp.update_attributes({"volts_per_code": 0.195e-6})
    with amp.signal_writer(["A-000", "A-001", "A-002"], np.int16, sample_rate_hz=30_300) as writer:
        writer.append(timestamps, codes)
    lfp = collection.create_dataset("lfp")
    with lfp.signal_writer(["L0", "L1"], np.float32, units="uV") as writer:
        writer.append(timestamps, microvolts)
    collection.close()
    electrodes = write_csv(tmp_path / "probe.csv", (
        "dataset,channel,location,group,rel_y\n"
        "amp,A-002,VISp,probe,40\namp,A-000,VISp,probe,0\nlfp,L1,VISp,probe,20\n"))
    monkeypatch.setattr(nwb_export, "CHUNK_BYTES", 32 << 10)
    seen: list[int] = []
    report = export_nwb(tmp_path / "probe", tmp_path / "probe.nwb", electrodes=electrodes, progress=seen.append)
    assert len(seen) > 20
    assert validate(path=str(report.path)) == []
    with NWBHDF5IO(str(report.path), "r") as io:
        nwb = io.read()
        amp_series, lfp_series = nwb.acquisition["amp"], nwb.acquisition["lfp"]
        assert np.array_equal(amp_series.data[:], codes[:, [0, 2]]) and amp_series.data.dtype == np.int16
        assert amp_series.electrodes.data[:].tolist() == [1, 0] and amp_series.conversion == 0.195e-6
        assert np.array_equal(nwb.acquisition["amp_other_channels"].data[:], codes[:, [1]])
        assert np.array_equal(lfp_series.data[:], microvolts[:, [1]]) and lfp_series.conversion == 1e-6
        assert np.array_equal(nwb.acquisition["lfp_other_channels"].data[:], microvolts[:, [0]])
        assert nwb.electrodes["rel_y"].data[:].tolist() == [40.0, 0.0, 20.0]
        for name in ("amp", "lfp", "amp_other_channels"):
            assert np.array_equal(usec(nwb.acquisition[name].timestamps[:]), timestamps)


@pytest.fixture(scope="module")
def small_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("electrodes")
    collection = Collection.create(root, "small")
    with collection.create_dataset("ephys").signal_writer(["c0", "c1"], np.float32, units="V") as writer:
        writer.append(np.arange(10, dtype=np.int64) * 1000, np.zeros((10, 2), np.float32))
    table = collection.create_dataset("trials").table_writer(["time_usec", "outcome"])
    table.append([1, "hit"])
    collection.close()
    return root / "small"


HEADER = "dataset,channel,location,group\n"


@pytest.mark.parametrize("content, message", [
    ("dataset,channel,location\nephys,c0,CA1\n", "line 1: missing required column group"),
    ("", "empty"),
    (HEADER, "no electrodes"),
    (HEADER + "ephys,c0,CA1,g\nnope,c1,CA1,g\n", "line 3: no dataset 'nope'"),
    (HEADER + "ephys,c0,CA1,g\nephys,c7,CA1,g\n", "line 3: dataset ephys has no channel 'c7' (its channels: c0, c1)"),
    (HEADER + "ephys,c0,CA1,g\nephys,c0,CA3,g\n", "line 3: dataset ephys channel 'c0' is already described at"),
    (HEADER.encode() + b"ephys,c0,CA1,g\nephys,c1,Hippocampus \xe9,g\n", "line 3: not UTF-8"),
    (HEADER + "ephys,c0,,g\n", "line 2: column 'location' is empty"),
    (HEADER + "trials,outcome,CA1,g\n", "line 2: dataset trials has no recorded signals"),
    (HEADER + "ephys,c0,CA1,g,extra\n", "line 2: 5 cells but the header has 4 columns"),
    ("dataset,channel,location,group,x\nephys,c0,CA1,g,left\n", "line 2: column 'x' must be a number"),
    ("dataset,channel,location,group,device\nephys,c0,CA1,g,a\nephys,c1,CA1,g,b\n", "line 3: device 'b' differs"),
    ("dataset,channel,location,group\nephys,c0,CA1,shank/1\n", "line 2: group 'shank/1' cannot be an NWB name"),
    ("dataset,channel,location,group,id\nephys,c0,CA1,g,1\n", "line 1: column 'id' is made by the electrode table"),
])
def test_bad_electrodes_file_is_one_clear_line(tmp_path: Path, small_collection: Path, content: str | bytes,
                                               message: str) -> None:
    electrodes = tmp_path / "bad_electrodes.csv"
    electrodes.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, output = run("export", "nwb", str(small_collection), "-o", str(tmp_path / "x.nwb"), "-q",
                       "--electrodes", str(electrodes))
    assert code == 2 and "Traceback" not in output, output
    assert f"{electrodes}" in output and message in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "x.nwb").exists() and not list(tmp_path.glob("*.partial.nwb"))


def test_bad_electrode_rows_from_python(tmp_path: Path, small_collection: Path) -> None:
    with pytest.raises(nwb_export.ExportError, match=r"electrodes row 2: column 'group' is empty"):
        export_nwb(small_collection, tmp_path / "x.nwb", electrodes=[
            {"dataset": "ephys", "channel": "c0", "location": "CA1", "group": "g"},
            {"dataset": "ephys", "channel": "c1", "location": "CA1", "group": ""}])
    with pytest.raises(nwb_export.ExportError, match=r"missing\.csv: cannot read"):
        export_nwb(small_collection, tmp_path / "x.nwb", electrodes=tmp_path / "missing.csv")
    assert not (tmp_path / "x.nwb").exists()


def test_readme_electrodes_example_is_the_example_file() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    shown = readme.split("```csv\n", 1)[1].split("```", 1)[0]
    assert shown == (EXAMPLES / "electrodes.csv").read_text(encoding="utf-8")


def test_spreadsheet_saved_electrodes_file(tmp_path: Path, small_collection: Path) -> None:
    """A BOM, CRLF line ends, ';' separators (decimal-comma locales), quoted cells and blank lines all read."""
    electrodes = tmp_path / "electrodes.csv"
    electrodes.write_bytes("\ufeffdataset;channel;location;group;y\r\n/ephys;c1;\"CA1; dorsal\";g;2.5\r\n\r\n"
                           "ephys;c0;CA3;g;\r\n".encode())
    target = exported(small_collection, tmp_path / "s.nwb", "--electrodes", str(electrodes))
    with NWBHDF5IO(str(target), "r") as io:
        nwb = io.read()
        assert list(nwb.electrodes["location"].data[:]) == ["CA1; dorsal", "CA3"]
        assert nwb.electrodes["y"].data[0] == 2.5 and np.isnan(nwb.electrodes["y"].data[1])
        series = nwb.acquisition["ephys"]
        assert series.electrodes.data[:].tolist() == [1, 0] and series.conversion == 1.0  # units V
        assert nwb.electrode_groups["g"].location == "CA1; dorsal, CA3"
