"""`hwlink align` on XDF files (LabRecorder's format): streams read with pyxdf from an XDF written per its spec."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from hwlink.cli.main import cli
from hwlink.sync.tsync import read_tsync
from hwlink.testing.xdf_writer import XdfStream, write_xdf

RATE_HZ = 1000
DRIFT_PPM = 80.0
OFFSET_S = 3.2


def recording(tmp_path: Path, seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    """A master TTL channel sampled at 1 kHz and the same pulses as markers on a drifting secondary clock."""
    rng = np.random.default_rng(seed)
    edges = 5.0 + np.cumsum(rng.uniform(0.4, 1.2, size=150))  # true times, master clock (s)
    samples = np.arange(0, int((edges[-1] + 2) * RATE_HZ))
    master_time = 100.0 + samples / RATE_HZ  # the master stream's clock starts at 100 s
    level = np.zeros(samples.size, dtype=np.float32)
    for edge in edges:
        start = int(np.ceil(edge * RATE_HZ))
        level[start:start + 50] = 1.0  # 50 ms pulses
    kept = np.sort(rng.choice(edges.size, size=edges.size - 6, replace=False))  # a few edges missed
    secondary = np.round((OFFSET_S + (100.0 + edges[kept]) * (1 + DRIFT_PPM * 1e-6)) * 1e4) / 1e4
    ttl = XdfStream("Sync", "TTL", "float32", master_time, level, RATE_HZ, ["ttl"], [(100.0, 0.0), (300.0, 0.0)])
    markers = XdfStream("Camera edges", "Markers", "string", secondary, [["pulse"] for _ in secondary],
                        clock_offsets=[(100.0, 0.0), (300.0, 0.0)])
    path = write_xdf(tmp_path / "session.xdf", [ttl, markers])
    master_edges = 100.0 + np.ceil(edges * RATE_HZ) / RATE_HZ
    return path, master_edges[kept], secondary


def test_align_reads_streams_of_an_xdf_file(tmp_path: Path) -> None:
    path, master_edges, secondary = recording(tmp_path)
    times = tmp_path / "times.txt"
    times.write_text("".join(f"{value!r}\n" for value in secondary.tolist()))
    result = CliRunner().invoke(cli, [
        "align", str(path), str(path), "--master-stream", "Sync", "--secondary-stream", "Camera edges",
        "--rate", "1kHz", "--offset", f"{OFFSET_S + 100 * DRIFT_PPM * 1e-6}s", "--json",
        "--tsync", str(tmp_path / "map.tsync"), "--times", str(times), "-o", str(tmp_path / "mapped.npy")])
    assert result.exit_code == 0, result.output
    qc = json.loads(result.output.splitlines()[0])
    assert qc["matched"] == secondary.size and qc["master_edges"] == 150
    assert abs(qc["drift_ppm"] - DRIFT_PPM) < 2
    mapped = np.load(tmp_path / "mapped.npy") / 1e6  # master µs -> s
    assert np.abs(mapped - master_edges).max() <= 1.0 / RATE_HZ
    assert len(read_tsync(tmp_path / "map.tsync")) >= 2


def test_align_xdf_errors_are_one_line(tmp_path: Path) -> None:
    path, _, _ = recording(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["align", str(path), str(path), "--rate", "1kHz"])
    assert result.exit_code == 2 and "--master-stream" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["align", str(path), str(path), "--rate", "1kHz", "--master-stream", "EEG",
                                 "--secondary-stream", "Sync"])
    assert result.exit_code == 2 and "no stream named 'EEG'" in result.output and "Camera edges" in result.output
    result = runner.invoke(cli, ["align", str(path), str(path), "--rate", "1kHz", "--master-stream", "Sync",
                                 "--secondary-stream", "Sync", "--column", "pupil"])
    assert result.exit_code == 2 and "no channel 'pupil'" in result.output and "ttl" in result.output
    broken = tmp_path / "broken.xdf"
    broken.write_bytes(path.read_bytes()[:2000])
    result = runner.invoke(cli, ["align", str(broken), str(path), "--rate", "1kHz", "--master-stream", "Sync",
                                 "--secondary-stream", "Sync"])
    assert result.exit_code == 2 and "Traceback" not in result.output
