"""The pin/pulse CLI through click's runner, and once through the installed ``hwlink`` executable."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwlink.cli.main import cli
from tests.conftest import invoke_cli

HWLINK = Path(sys.executable).parent / "hwlink"


def run(*args: str, env: dict | None = None):
    return invoke_cli(*args, env=env)


def test_lines_table_lists_capabilities() -> None:
    result = run("lines")
    assert result.exit_code == 0
    rows = result.output.splitlines()
    assert rows[0].split() == ["LINE", "NAME", "MODES"]
    assert any(r.split()[:2] == ["3", "D3"] and "pwm-out (0..255)" in r for r in rows)
    assert any(r.split()[:2] == ["14", "A0"] and "analog-in (10 bit)" in r for r in rows)
    assert len(rows) == 22


def test_write_digital_and_analog() -> None:
    assert run("write", "13", "1").output.strip() == "line 13 (D13) <- 1"
    assert run("write", "D3", "200", "--analog").output.strip() == "line 3 (D3) <- 200"
    assert run("write", "DAC0", "4095", "--analog").exit_code == 0


def test_pulse_reports_achieved_widths() -> None:
    result = run("pulse", "13", "--width", "4ms", "--count", "3", "--period", "20ms")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["pulse 1", "pulse 2", "pulse 3"]
    assert "3 pulse(s) of 4.000 ms on line 13 (D13)" in lines[3]


def test_read_csv_with_count_and_loopback_board() -> None:
    result = CliRunner().invoke(cli, ["-b", "sim://?a0=const:321&analog_interval=2ms", "read", "A0", "--count", "5",
                                      "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 5
    assert {row["line"] for row in rows} == {"A0"} and {row["value"] for row in rows} == {"321"}
    times = [int(row["time_usec"]) for row in rows]
    assert times == sorted(times)
    assert all(row["device_time_usec"] for row in rows)


def test_read_jsonl_and_table_for_a_duration() -> None:
    env = {"HWLINK_BOARD": "sim://?d2=square:100Hz&latency=none"}
    result = CliRunner().invoke(cli, ["read", "2", "--duration", "200ms", "--format", "jsonl"], env=env)
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) >= 20 and {r["line"] for r in records} == {"D2"}
    table = CliRunner().invoke(cli, ["read", "2", "--count", "3", "-b", "sim://?d2=square:100Hz"])
    assert table.stdout.splitlines()[0].split()[:3] == ["TIME", "(s)", "LINE"]
    assert len(table.stdout.splitlines()) == 4


@pytest.mark.parametrize(
    "args, message",
    [(["read", "99"], "unknown line '99'"), (["pulse", "13", "--width", "5"], "needs a unit"),
     (["pulse", "13", "--width", "5 parsecs"], "bad duration"), (["-b", "foo://x", "lines"], "known schemes: "),
     (["write", "A0", "1"], "has no output"), (["write", "13", "7"], "0 or 1"),
     (["write", "3", "999", "--analog"], "out of range 0..255"), (["lines", "-b", "sim://?x=1"], "unknown sim://"),
     (["read", "2", "--count", "1", "--duration", "1s"], "either --duration or --count"),
     (["pulse", "13", "--count", "2", "--period", "1ms", "--width", "2ms"], "must exceed")],
)
def test_bad_input_gives_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_board_failure_during_read_keeps_what_was_read() -> None:
    result = CliRunner().invoke(cli, ["-b", "sim://?d2=square:100Hz&fail_after=300ms", "read", "2", "--format",
                                      "csv"])
    assert result.exit_code == 2
    assert "board failed after" in result.stderr and "disconnected" in result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].startswith("time_usec") and len(rows) > 10


def test_demo_reports_latency_and_widths() -> None:
    result = run("demo", "--pulses", "5", "--width", "5ms", "--period", "20ms")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "output 13 (D13): 5 pulses of 5.000 ms" in text
    assert "input 2 (D2): 10 edges" in text
    assert "edge latency to host" in text and "device clock: offset" in text and "ppm" in text
    assert "analog 14 (A0):" in text


def test_demo_without_wiring_says_so() -> None:
    result = run("demo", "-b", "sim://", "--pulses", "2", "--width", "2ms", "--period", "10ms")
    assert result.exit_code != 0  # the loopback check failed: a script running the demo must see it
    assert "saw 0 of 4 edges" in result.output and "loopback check failed" in result.stderr


def test_installed_executable_and_ctrl_c_flushes_output() -> None:
    assert HWLINK.exists(), f"console script missing at {HWLINK}"
    version = subprocess.run([HWLINK, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("hwlink, version")
    bad = subprocess.run([HWLINK, "read", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    process = subprocess.Popen([HWLINK, "-b", "sim://?d2=square:200Hz", "read", "2", "--format", "csv"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               # a suite started in the background (`make test &`) inherits an ignored SIGINT
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout is not None
    first = [process.stdout.readline(), process.stdout.readline()]  # running (a loaded machine imports slowly)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    assert process.stderr is not None
    code = process.wait(timeout=20)  # the rest of the output fits the pipe
    out, err = process.stdout.read(), process.stderr.read()  # not communicate(): it skips readline's buffer
    assert code == 0, err
    rows = "".join(first + [out]).splitlines()
    assert rows[0].startswith("time_usec") and len(rows) > 20
    assert all(row.count(",") == 4 for row in rows)  # no half-written line
    assert f"{len(rows) - 1} reading(s)" in err
