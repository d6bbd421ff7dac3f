"""``hwlink sync simulate``: the three methods side by side, a plot, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import invoke_cli


def invoke(*args: str) -> tuple[int, str]:
    result = invoke_cli(*args)
    return result.exit_code, result.output


def row_values(output: str, label: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.startswith(label))
    return re.findall(r"[\d.]+ (?:µs|ms|s)", line)


def test_simulate_prints_hwlink_baseline_and_raw(tmp_path: Path) -> None:
    plot = tmp_path / "errors.png"
    code, output = invoke("sync", "simulate", "--rate", "30Hz", "--drift-ppm", "100", "--latency", "usb:1ms",
                          "--spikes", "0.05:5ms-20ms", "--duration", "2min", "--seed", "3", "--plot", str(plot))
    assert code == 0, output
    assert re.search(r"^\d+ timestamps at 30 Hz", output)
    for label in ("hwlink (drift-aware)", "Syntalos baseline", "raw receive time"):
        assert label in output
    p99 = {label: row_values(output, label)[1] for label in ("hwlink", "Syntalos", "raw")}
    assert p99["hwlink"].endswith("µs") and p99["raw"].endswith("ms")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_with_steps_reports_no_backward_output_for_hwlink() -> None:
    code, output = invoke("sync", "simulate", "--rate", "1kHz", "--drift-ppm", "-30", "--steps", "20s:+50ms",
                          "--duration", "40s")
    assert code == 0, output
    hwlink_line = next(line for line in output.splitlines() if line.startswith("hwlink"))
    assert hwlink_line.split()[-2] == "0"


def test_bad_input_is_one_line_and_exit_code_2() -> None:
    for args in (["--latency", "bogus"], ["--spikes", "2:1ms-2ms"], ["--rate", "fast"], ["--duration", "5"],
                 ["--steps", "10s"], ["--drift-ppm", "1e9"], ["--duration", "10ms"]):
        code, output = invoke("sync", "simulate", *args)
        assert code == 2, (args, output)
        assert "Traceback" not in output
        assert output.strip().splitlines()[-1].startswith("Error:")


def test_simulate_a_named_condition() -> None:
    code, output = invoke("sync", "simulate", "--condition", "counter32-wrap", "--duration", "6min", "--seed", "2")
    assert code == 0, output
    assert "32-bit" in output and "hwlink (drift-aware)" in output
    p99 = {label: row_values(output, label)[1] for label in ("hwlink", "raw")}
    assert p99["hwlink"].endswith("µs") and p99["raw"].endswith("ms")  # the wrap is unwrapped, not a reset
    code, output = invoke("sync", "simulate", "--condition", "warp-drive")
    assert code == 2 and "Traceback" not in output
