"""``hwlink record`` on the simulated board, and ``hwlink edl ls|verify``: in-process and as real processes
stopped by Ctrl-C and killed with SIGKILL."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import warnings
import tomllib
from pathlib import Path

import edlio
from edlio.dataio.tsyncfile import TSyncFile as EdlioTSyncFile
import h5py
import numpy as np
import pytest

from hwlink.edl import Collection, read_signal_file, read_table
from hwlink.sync.tsync import TSyncTruncationWarning, read_tsync
from tests.conftest import SHARED, invoke_cli

BLINK1 = SHARED / "data" / "edl" / "blink1"
BOARD = "sim://?d2=square:10Hz&drift_ppm=200&offset=2s&analog_interval=5ms&seed=3"
RUN_CLI = "from hwlink.cli.main import main; main()"
PROGRESS = re.compile(r"recording\s+([\d.]+) s: D2 (\d+), A0 (\d+)")


def run(*args: str) -> tuple[int, str]:
    result = invoke_cli(*args)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rec")
    code, output = run("record", "-b", BOARD, "--lines", "2,A0", "--duration", "1200ms", "-o", str(out / "session:1"),
                       "-q")
    assert code == 0, output
    assert f"recorded: {out / 'session1'}" in output
    return out / "session1"


def test_record_writes_one_dataset_per_line(recording: Path) -> None:
    collection = Collection.open(recording)
    assert [child.name for child in collection.children] == ["A0", "D2"]
    attributes = collection.attributes
    assert attributes["board"] == BOARD and attributes["lines"] == ["D2", "A0"] and attributes["success"] is True
    assert 1100 <= attributes["recording_length_msec"] <= 5000 and attributes["stopped_early"] is False
    assert collection.generator.startswith("hwlink ")
    analog, digital = collection["A0"], collection["D2"]
    assert analog.data.file_type == "h5" and digital.data.media_type == "text/csv"
    assert analog.attributes["line_name"] == "A0" and digital.attributes["mode"] == "digital-in"
    assert analog.aux_file("tsync").parts[0].fname == "A0_clocksync.tsync"


def test_recorded_data_and_clock_sync_agree(recording: Path) -> None:
    content = read_signal_file(recording / "A0" / "A0.h5")
    rows = content["timestamps"].shape[0]
    assert 150 <= rows <= 400  # 5 ms sampling for 1.2 s
    assert (np.diff(content["timestamps"]) >= 0).all()
    assert (content["line_ids"] == 14).all() and content["data"].max() <= 1023
    # the device clock has its own offset (2 s at board open) and 200 ppm drift: mapped onto the master clock,
    # the difference stays constant within the drift over 1.2 s plus sync noise
    assert np.ptp(content["device_timestamps"] - content["timestamps"]) < 2_000
    lag = content["arrival_timestamps"] - content["timestamps"]
    assert (lag >= 0).all() and np.median(lag) < 1000
    # interpolating the tsync aux file at the device times reproduces the recorded timestamps
    tsync = read_tsync(recording / "A0" / "A0_clocksync.tsync")
    assert tsync.intact and tsync.time_names == ("device-time", "master-time")
    rebuilt = np.interp(content["device_timestamps"], tsync.time1, tsync.time2)
    assert np.abs(rebuilt - content["timestamps"]).max() <= 10
    header, table = read_table(recording / "D2" / "D2.csv")
    assert header == ["time_usec", "value", "device_time_usec", "arrival_time_usec"]
    assert 20 <= len(table) <= 30  # 10 Hz square wave: 20 edges per second
    values = [int(row[1]) for row in table]
    assert all(a != b for a, b in zip(values, values[1:]))


def test_edlio_loads_the_recording(recording: Path) -> None:
    loaded = edlio.load(recording)
    datasets = {dataset.name: dataset for dataset in loaded.datasets}
    assert sorted(datasets) == ["A0", "D2"]
    assert str(loaded.collection_id) == tomllib.loads((recording / "manifest.toml").read_text())["collection_id"]
    rows = list(datasets["D2"].read_data())
    assert rows[0] == ["time_usec", "value", "device_time_usec", "arrival_time_usec"]
    assert rows[1:] == read_table(recording / "D2" / "D2.csv")[1]
    for name in ("A0", "D2"):
        tsync = next(iter(datasets[name].read_aux_data("tsync")))
        np.testing.assert_array_equal(np.asarray(tsync.times),
                                      read_tsync(recording / name / f"{name}_clocksync.tsync").times)


def test_edl_ls_and_verify(recording: Path) -> None:
    code, output = run("edl", "ls", str(recording))
    assert code == 0
    assert re.search(r"A0\.h5 +\[h5\] +[\d.]+ kB +\d+ rows +[\d.]+ \.\. [\d.]+ s", output), output
    assert "A0_clocksync.tsync  [tsync]" in output and "D2.csv  [text/csv]" in output
    code, output = run("edl", "verify", str(recording))
    assert code == 0 and output.strip().endswith("0 error(s), 0 warning(s)"), output


def test_verify_finds_problems_and_lists_syntalos_sample() -> None:
    code, output = run("edl", "verify", str(BLINK1))
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 4 and all("file is missing" in line for line in errors)  # the sample ships no videos
    code, output = run("edl", "ls", str(BLINK1))
    assert code == 0 and "time-pulses.tsync  [tsync]  968 B  66 rows" in output
    assert "table.csv  [text/csv]  1.8 kB  130 rows  315 .. 64574 (RecTime)" in output


def test_verify_reports_damaged_files(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        dataset = collection.create_dataset("t")
        with dataset.table_writer(["a", "b"]) as table:
            table.append([1, 2])
        collection.create_dataset("Bad:name")
    with open(tmp_path / "rec" / "t" / "t.csv", "a") as handle:
        handle.write("3\n")
    (tmp_path / "rec" / "Badname").rename(tmp_path / "rec" / "Bad name ")
    code, output = run("edl", "verify", str(tmp_path / "rec"))
    assert code == 1
    assert "error: t: t.csv: row 2 has 1 cells, the header 2" in output
    assert "warning: Bad name : name is not sanitised" in output


def test_bad_input_one_line_exit_2(tmp_path: Path) -> None:
    for args, message in (
        (["--lines", "2,Z9"], "unknown line 'Z9'"),
        (["--lines", "2,,A0"], "bad --lines"),
        (["--lines", "2", "--analog", "D2"], "a line is named twice"),
        (["--analog", "D2"], "does not support analog-in"),
        ([], "nothing to record"),
        (["--lines", "2", "--duration", "5"], "needs a unit"),
    ):
        code, output = run("record", "-b", "sim://", "-o", str(tmp_path), *args)
        assert code == 2, (args, output)
        assert message in output and "Traceback" not in output
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    code, output = run("record", "--lines", "2", "--duration", "10ms", "-o", str(tmp_path / "taken"))
    assert code == 2 and "exists and is not empty" in output and len(output.strip().splitlines()) == 1
    code, output = run("edl", "verify", str(tmp_path))
    assert code == 2 and "no EDL unit" in output
    code, output = run("edl", "ls", str(tmp_path))
    assert code == 2 and "no EDL unit" in output and "Traceback" not in output
    code, output = run("record", "--lines", "2", "--duration", "10ms", "-o", str(tmp_path / "taken" / "x" / "y"))
    assert code == 2 and "Not a directory" in output and len(output.strip().splitlines()) == 1


def _start(out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", RUN_CLI, "record", "-b", BOARD, "--lines", "2,A0",
                             "--duration", "60s", "-o", str(out / "rec")],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _progress_after(process: subprocess.Popen[str], seconds: float) -> tuple[int, int]:
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    for line in process.stderr:
        match = PROGRESS.search(line)
        if match and float(match.group(1)) >= seconds:
            return int(match.group(2)), int(match.group(3))
        assert time.monotonic() < deadline, "no progress"
    raise AssertionError("recorder ended early")


def test_sigkill_leaves_readable_collection_with_data_up_to_last_flush(tmp_path: Path) -> None:
    process = _start(tmp_path)
    try:
        edges, samples = _progress_after(process, 1.5)
        time.sleep(1.2)  # > one flush interval (0.5 s) after the progress line
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    path = tmp_path / "rec"
    loaded = edlio.load(path)  # every manifest is complete
    datasets = {dataset.name: dataset for dataset in loaded.datasets}
    rows = list(datasets["D2"].read_data())
    assert len(rows) - 1 >= edges
    with h5py.File(path / "A0" / "A0.h5", "r") as file:
        timestamps = file["timestamps"][()]
        assert timestamps.shape[0] >= samples and file["data"].shape == (timestamps.shape[0], 1)
        assert (np.diff(timestamps) >= 0).all()
    assert Collection.open(path)["A0"].data.parts[0].fname == "A0.h5"
    # the clock-sync points are flushed with the data: the mapping covers (nearly) everything that was kept,
    # and the file is whole (strict hwlink read and edlio's reader both accept it)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TSyncTruncationWarning)
        tsync = read_tsync(path / "A0" / "A0_clocksync.tsync")
    assert tsync.intact and tsync.time2.max() >= timestamps[-1] - 1_500_000
    assert len(EdlioTSyncFile(str(path / "A0" / "A0_clocksync.tsync")).times) == len(tsync)


def test_ctrl_c_stops_cleanly_with_everything_saved(tmp_path: Path) -> None:
    process = _start(tmp_path)
    try:
        _progress_after(process, 1.0)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped: " in err and "Traceback" not in err
    collection = Collection.open(tmp_path / "rec")
    assert collection.attributes["stopped_early"] is True and collection.attributes["success"] is True
    reported = int(re.search(r"A0: (\d+) reading", err).group(1))
    assert read_signal_file(tmp_path / "rec" / "A0" / "A0.h5")["timestamps"].shape[0] == reported
    assert read_tsync(tmp_path / "rec" / "A0" / "A0_clocksync.tsync").intact
    code, output = run("edl", "verify", str(tmp_path / "rec"))
    assert code == 0, output


def test_board_failure_saves_what_was_recorded(tmp_path: Path) -> None:
    code, output = run("record", "-b", "sim://?fail_after=600ms&analog_interval=5ms", "--lines", "A0", "--duration",
                       "20s", "-o", str(tmp_path / "rec"), "-q")
    assert code == 2 and "board failed, recording saved in" in output and "Traceback" not in output
    collection = Collection.open(tmp_path / "rec")
    assert collection.attributes["success"] is False and "disconnected" in collection.attributes["failure_reason"]
    assert read_signal_file(tmp_path / "rec" / "A0" / "A0.h5")["timestamps"].shape[0] > 50
    assert read_tsync(tmp_path / "rec" / "A0" / "A0_clocksync.tsync").intact


def test_record_nidaq_signal_blocks_into_hdf5(tmp_path: Path) -> None:
    from hwlink.testing.nidaq_sim import SimulatedDevice, SimulatedNidaq

    with SimulatedNidaq([SimulatedDevice()]):
        code, output = run("record", "-b", "nidaq://Dev1?rate=5kHz&block=250&di_rate=1kHz", "--lines",
                           "ai0,ai1,port0/line1", "--duration", "600ms", "-o", str(tmp_path / "ni"), "-q")
    assert code == 0, output
    collection = Collection.open(tmp_path / "ni")
    # the analog lines arrive as SignalBlocks: one HDF5 signal dataset, no per-sample line datasets
    assert [child.name for child in collection.children] == ["port0_line1", "signals"]
    signals = read_signal_file(tmp_path / "ni" / "signals" / "signals.h5")
    rows = signals["timestamps"].shape[0]
    assert rows >= 2500 and rows % 250 == 0 and signals["data"].shape == (rows, 2)
    assert signals["data"].dtype == np.float32 and signals["attrs"]["channel_names"] == ["ai0", "ai1"]
    assert "sample_gaps" not in signals and signals["attrs"]["first_sample_index"] == 0
    assert (np.diff(signals["timestamps"]) >= 0).all() and signals["timestamps"][0] > 0
    assert f"signals: {rows} sample(s)" in output
    header, rows_csv = read_table(tmp_path / "ni" / "port0_line1" / "port0_line1.csv")
    assert len(rows_csv) >= 1  # the line's initial level is recorded (subscribed before the mode is set)
    assert collection["signals"].attributes["channel_names"] == ["ai0", "ai1"]


def test_record_firmata_board_without_device_clock(tmp_path: Path) -> None:
    from hwlink.testing.firmata_board import SoftFirmataBoard

    soft = SoftFirmataBoard()
    url = soft.start_pty()
    try:
        soft.set_analog_input("A0", 777)
        toggler_done = time.monotonic() + 0.6

        def toggle() -> None:
            level = 0
            while time.monotonic() < toggler_done:
                level ^= 1
                soft.set_digital_input(7, level)
                time.sleep(0.1)

        toggler = threading.Thread(target=toggle)
        toggler.start()
        code, output = run("record", "-b", url, "--lines", "7", "--analog", "A0", "--duration", "900ms", "-o",
                           str(tmp_path / "fw"), "-q")
        toggler.join()
    finally:
        soft.stop()
    assert code == 0, output
    collection = Collection.open(tmp_path / "fw")
    assert [child.name for child in collection.children] == ["A0", "D7"]
    assert collection["D7"].aux_data == [] and collection["A0"].aux_data == []  # no device clock, no tsync
    header, rows = read_table(tmp_path / "fw" / "D7" / "D7.csv")
    assert header == ["time_usec", "value", "device_time_usec"] and len(rows) >= 4
    assert all(row[2] == "" for row in rows)
    content = read_signal_file(tmp_path / "fw" / "A0" / "A0.h5")
    assert "device_timestamps" not in content and "arrival_timestamps" not in content
    assert content["timestamps"].shape[0] > 5 and (content["data"][:, 0] == 777).all()
    code, output = run("edl", "verify", str(tmp_path / "fw"))
    assert code == 0, output


def test_verify_media_type_rules(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        collection.create_dataset("sync").set_data_file("a.tsync", media_type="application/octet-stream")
        collection.create_dataset("frames").set_data_file("f.h5", media_type="application/x-hdf5")
    for name in ("a.tsync", "f.h5"):
        (tmp_path / "rec" / ("sync" if name == "a.tsync" else "frames") / name).write_bytes(b"")
    code, output = run("edl", "verify", str(tmp_path / "rec"))
    assert code == 1
    assert "error: sync: data media_type 'application/octet-stream' is unknown to edlio, which prefers it over " \
           "file_type 'tsync'" in output
    assert "warning: frames: data media_type 'application/x-hdf5' is unknown to edlio" in output
