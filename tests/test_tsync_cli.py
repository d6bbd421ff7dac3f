"""``hwlink tsync ...`` and ``hwlink align`` through click's runner (real files, real edlio on the outputs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from edlio.dataio.tsyncfile import TSyncFile

from hwlink.cli.main import cli
from hwlink.sync.align import simulate_edges
from hwlink.sync.offline import SyncPointMap
from hwlink.sync.tsync import TSyncWriter, read_tsync, read_tsync_header
from tests.conftest import SHARED, invoke_cli

LEGACY = SHARED / "data" / "edl" / "blink1" / "intan-signals" / "a870_data.tsync"


def run(*args: str):
    return invoke_cli(*args)


@pytest.fixture
def sample(syntalos_tsync: Path) -> Path:
    return syntalos_tsync


@pytest.fixture
def syncpoints(tmp_path: Path) -> Path:
    path = tmp_path / "sync.tsync"
    with TSyncWriter(path, tolerance_us=1500, block_size=128) as writer:
        device = np.arange(0, 60_000_000, 1_000_000)
        writer.add_many(device, device + device // 20_000 + 700)  # +50 ppm, 700 µs offset
    return path


def corrupt(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[read_tsync_header(path).header_bytes + 5] ^= 1
    path.write_bytes(bytes(data))
    return path


def test_info_shows_header_counts_range_and_checksums(sample: Path) -> None:
    result = run("tsync", "info", str(sample), str(LEGACY))
    assert result.exit_code == 0, result.output
    assert "mode:          CONTINUOUS, block size 1500" in result.output
    assert "time1:         frame-no (index, UINT32), range 0 .. 3124" in result.output
    assert "time2:         master-time (µs, UINT64), range 46911 .. 125006924" in result.output
    assert "entries:       3125" in result.output and "ok (3 block(s) verified)" in result.output
    assert "1.2-legacy-2.x" in result.output and '{"tolerance_us": "1500"}' in result.output


def test_info_on_bad_files_is_one_line_and_exit_2(sample: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tsync"
    junk.write_bytes(b"hello world, not a tsync file")
    result = CliRunner().invoke(cli, ["tsync", "info", str(junk)])
    assert result.exit_code == 2
    assert f"{junk}: not a tsync file" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["tsync", "info", str(corrupt(sample))])
    assert result.exit_code == 2 and "data block 0 checksum mismatch" in result.output


def test_verify_exit_codes(sample: Path, syncpoints: Path, tmp_path: Path) -> None:
    good = run("tsync", "verify", str(sample), str(syncpoints), str(LEGACY))
    assert good.exit_code == 0 and good.output.count(": ok (") == 3
    truncated = tmp_path / "cut.tsync"
    truncated.write_bytes(sample.read_bytes()[:-100])
    bad = CliRunner().invoke(cli, ["tsync", "verify", str(sample), str(truncated), str(corrupt(syncpoints))])
    assert bad.exit_code == 1
    lines = bad.output.splitlines()
    assert lines[0].endswith("ok (3125 entries, 1.2)")
    assert "FAILED: truncated" in lines[1] and "FAILED: data block 0 checksum mismatch" in lines[2]


def test_dump_csv_and_npy(sample: Path, tmp_path: Path) -> None:
    result = run("tsync", "dump", str(sample))
    lines = result.output.splitlines()
    assert lines[0] == "frame-no,master-time" and lines[1] == "0,46911" and len(lines) == 3126
    out = tmp_path / "pairs.npy"
    assert run("tsync", "dump", str(sample), "--format", "npy", "-o", str(out)).exit_code == 0
    assert np.array_equal(np.load(out), read_tsync(sample).times)
    csv_out = tmp_path / "pairs.csv"
    run("tsync", "dump", str(sample), "-o", str(csv_out))
    assert csv_out.read_text().splitlines() == lines


def test_plot_writes_a_png(syncpoints: Path, sample: Path, tmp_path: Path) -> None:
    for source in (syncpoints, sample):
        png = tmp_path / f"{source.stem}.png"
        assert run("tsync", "plot", str(source), "-o", str(png)).exit_code == 0
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_correct_csv_npy_and_hdf5(syncpoints: Path, tmp_path: Path) -> None:
    mapping = SyncPointMap.from_tsync(syncpoints).time_map()
    table = tmp_path / "events.csv"
    table.write_text("Time;Event\n0;start\n1500.5;lever\n59000;end\n")
    result = run("tsync", "correct", str(table), "-t", str(syncpoints), "--column", "Time", "--unit", "ms")
    assert result.exit_code == 0 and "3 rows" in result.output
    corrected = (tmp_path / "events_master.csv").read_text().splitlines()
    assert corrected[0] == "Time_master_us;Event"  # --unit ms in, master µs out: the header says so
    assert [float(line.split(";")[0]) for line in corrected[1:]] == pytest.approx(
        mapping(np.array([0.0, 1500.5e3, 59000e3])).tolist(), abs=1e-3)
    values = tmp_path / "device.npy"
    np.save(values, np.arange(0, 10_000_000, 7, dtype=np.int64))
    assert run("tsync", "correct", str(values), "-t", str(syncpoints)).exit_code == 0
    assert np.array_equal(np.load(tmp_path / "device_master.npy"), mapping(np.load(values)))
    h5 = tmp_path / "samples.h5"
    with h5py.File(h5, "w") as file:
        file["index"] = np.arange(300_000)
    result = run("tsync", "correct", str(h5), "-t", str(syncpoints), "--dataset", "index", "--rate", "30kHz")
    assert result.exit_code == 0
    with h5py.File(h5, "r") as file:
        expected = SyncPointMap.from_tsync(syncpoints).sample_times(300_000, 30_000.0)
        assert np.array_equal(file["index_master_us"][:], expected)


def test_correct_errors_exit_2(syncpoints: Path, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\0")
    for args, message in [
        ([str(table), "-t", str(syncpoints)], "needs --column"),
        ([str(table), "-t", str(syncpoints), "--column", "zzz"], "no column 'zzz'"),
        ([str(binary), "-t", str(syncpoints)], "unsupported input"),
        ([str(table), "-t", str(table), "--column", "a"], "not a tsync file"),
        ([str(table), "--column", "a"], "give the tsync file"),
        ([str(tmp_path)], "no EDL unit"),
    ]:
        result = CliRunner().invoke(cli, ["tsync", "correct", *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_align_reports_qc_and_writes_tsync_and_times(tmp_path: Path) -> None:
    sim = simulate_edges(duration_s=300, drift_ppm=40, seed=4)
    master, secondary = tmp_path / "m.npy", tmp_path / "s.txt"
    np.save(master, sim.master)
    secondary.write_text("edge_s\n" + "".join(f"{v:.9f}\n" for v in sim.secondary))
    times = tmp_path / "events.npy"
    np.save(times, sim.secondary[::3] + 0.01)
    out_tsync, out_times = tmp_path / "map.tsync", tmp_path / "events_master.npy"
    result = run("align", str(master), str(secondary), "--rate", "30kHz", "--tsync", str(out_tsync),
                 "--times", str(times), "-o", str(out_times), "--max-residual", "1")
    assert result.exit_code == 0, result.output
    assert re.search(r"drift \+(39\.9|40\.0)\d* ppm", result.output)
    assert "within 1 sample 100.00 %" in result.output
    assert TSyncFile(out_tsync).times.shape[0] >= 3
    corrected = np.load(out_times)
    truth = sim.true_master_of_secondary(np.load(times)) * 1e6
    assert np.abs(corrected - truth).max() < 1.5e6 / sim.rate_hz
    as_json = json.loads(run("align", str(master), str(secondary), "--rate", "30kHz", "--json").output)
    assert as_json["max_residual_samples"] <= 1.0 and as_json["matched"] > 290


def test_align_qc_failure_and_bad_input(tmp_path: Path) -> None:
    sim = simulate_edges(duration_s=120, drift_ppm=40, seed=1)
    master, secondary = tmp_path / "m.npy", tmp_path / "s.npy"
    np.save(master, sim.master)
    np.save(secondary, sim.secondary)
    strict = CliRunner().invoke(cli, ["align", str(master), str(secondary), "--rate", "30kHz",
                                      "--max-residual", "0.01"])
    assert strict.exit_code == 1 and "QC failed" in strict.output
    text = tmp_path / "bad.txt"
    text.write_text("1.0\n2.0\nthree\n")
    result = CliRunner().invoke(cli, ["align", str(text), str(secondary), "--rate", "30kHz"])
    assert result.exit_code == 2 and "line 3: not a number" in result.output
    in_ms = tmp_path / "s_ms.npy"
    np.save(in_ms, sim.secondary * 1000)  # the wrong unit for one of the files: nothing lines up
    result = CliRunner().invoke(cli, ["align", str(master), str(in_ms), "--rate", "30kHz"])
    assert result.exit_code == 2 and "overlap" in result.output and "Traceback" not in result.output


def test_align_takes_a_negative_lag_hint(tmp_path: Path) -> None:
    sim = simulate_edges(duration_s=120, drift_ppm=-30, offset_s=-2.7, seed=6)
    master, secondary = tmp_path / "m.npy", tmp_path / "s.npy"
    np.save(master, sim.master)
    np.save(secondary, sim.secondary)
    result = run("align", str(master), str(secondary), "--rate", "30kHz", "--offset=-3s", "--json")
    assert json.loads(result.output)["coarse_lag"] == pytest.approx(-2.7, abs=0.01)
    bad = CliRunner().invoke(cli, ["align", str(master), str(secondary), "--rate", "30kHz", "--offset=3"])
    assert bad.exit_code == 2 and "needs a unit" in bad.output
