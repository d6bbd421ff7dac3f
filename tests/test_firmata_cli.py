"""The CLI on firmata URLs: the foundation commands, ``hwlink boards`` and ``hwlink latency``."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import serial.tools.list_ports
from click.testing import CliRunner
from serial.tools.list_ports_common import ListPortInfo

from hwlink.cli.main import cli
from hwlink.testing.firmata_board import SoftFirmataBoard
from tests.conftest import invoke_cli

HWLINK = Path(sys.executable).parent / "hwlink"


@pytest.fixture
def soft() -> Iterator[SoftFirmataBoard]:
    board = SoftFirmataBoard(jumpers={13: 2})
    board.start_pty()
    yield board
    board.stop()


def run(url: str, *args: str):
    return invoke_cli("-b", url, *args)


def test_lines_write_pulse_read(soft: SoftFirmataBoard) -> None:
    rows = run(soft.url, "lines").output.splitlines()
    assert rows[0].split() == ["LINE", "NAME", "MODES"] and len(rows) == 21
    assert any(r.split()[:2] == ["14", "A0"] and "analog-in (10 bit)" in r for r in rows)

    assert run(soft.url, "write", "13", "1").output.strip() == "line 13 (D13) <- 1"
    assert soft.wait_output(13, 1)
    assert run(soft.url, "write", "D6", "99", "--analog").exit_code == 0
    assert soft.wait_for(lambda: soft.pwm_value(6) == 99)

    soft.clear_events()
    result = run(soft.url, "pulse", "12", "--width", "5ms", "--count", "3", "--period", "20ms")
    assert result.exit_code == 0, result.output
    assert "3 pulse(s) of 5.000 ms on line 12 (D12)" in result.output
    assert soft.wait_for(lambda: len(soft.pulse_widths_usec(12)) == 3)

    soft.set_analog_input("A0", 777)
    result = run(soft.url + "?analog_interval=2ms", "read", "A0", "--count", "4", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["value"] for row in rows] == ["777"] * 4 and {row["line"] for row in rows} == {"A0"}


def test_errors_are_one_line_exit_2(soft: SoftFirmataBoard) -> None:
    result = run(soft.url, "write", "0", "1")
    assert result.exit_code == 2
    assert result.output.strip() == "Error: line 0 (D0) has no output; supported modes: none"
    result = run("firmata:///dev/no-such-port", "lines")
    assert result.exit_code == 2 and "cannot open firmata:///dev/no-such-port" in result.output
    soft.mute()
    result = run(soft.url + "?timeout=300ms", "lines")
    assert result.exit_code == 2 and "heard nothing" in result.output and "Traceback" not in result.output


def test_latency_loopback_histogram(soft: SoftFirmataBoard) -> None:
    result = run(soft.url, "latency", "--out", "13", "--in", "2", "--count", "20", "--interval", "2ms")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("20 edges 13 (D13) -> 2 (D2)")
    assert "p50" in lines[1] and "p99" in lines[1]
    counts = [int(line.split()[-2]) if line.rstrip().endswith("#") else int(line.split()[-1]) for line in lines[2:]]
    assert sum(counts) == 20 and len(counts) == 12


def test_latency_without_a_wire_says_so(soft: SoftFirmataBoard) -> None:
    result = run(soft.url, "latency", "--out", "12", "--in", "3", "--count", "3", "--timeout", "200ms")
    assert result.exit_code == 2
    assert "no change on line 3 (D3) within 200.000 ms after writing 1 to line 12 (D12)" in result.output


def test_latency_works_on_the_simulated_board_too() -> None:
    result = run("sim://?loopback=13:2&latency=const:300us", "latency", "--out", "13", "--in", "2", "--count", "5")
    assert result.exit_code == 0, result.output
    p50 = float(result.output.splitlines()[1].split("p50 ")[1].split(" ")[0])
    assert 250 <= p50 <= 5000


def test_boards_lists_ports_and_probes_them(soft: SoftFirmataBoard, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pty is no USB port, so the port list (the OS seam) is replaced by one describing our board's pty."""
    uno = ListPortInfo(soft.path, skip_link_detection=True)
    uno.vid, uno.pid, uno.description, uno.serial_number = 0x2341, 0x0043, "Arduino Uno", "7543"
    silent = ListPortInfo("/dev/does-not-exist", skip_link_detection=True)
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [uno, silent])
    result = CliRunner().invoke(cli, ["boards"])
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert rows[0].split() == ["URL", "DESCRIPTION"]
    assert any(row.startswith("sim://") for row in rows)
    uno_row = next(row for row in rows if row.startswith(f"firmata://{soft.path}"))
    assert "Arduino Uno (vid:pid 2341:0043, serial_number 7543)" in uno_row
    result = CliRunner().invoke(cli, ["boards", "--probe", "--timeout", "500ms"])
    rows = result.output.splitlines()
    assert "[firmware: StandardFirmata.ino 2.5]" in next(row for row in rows if soft.path in row)
    assert "[no Firmata: cannot open" in next(row for row in rows if "does-not-exist" in row)


def test_installed_executable_on_a_socket_url() -> None:
    with SoftFirmataBoard() as soft:
        soft.start_tcp()
        soft.set_digital_input(7, 1)
        done = subprocess.run([str(HWLINK), "read", "7", "--count", "1", "--format", "jsonl", "-b", soft.url],
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert '"line": "D7", "value": 1' in done.stdout
    assert np.isfinite(float(done.stdout.split('"time_usec": ')[1].split(",")[0]))


def test_read_reports_an_unplug_and_keeps_what_it_printed(soft: SoftFirmataBoard) -> None:
    soft.set_digital_input(7, 1)
    process = subprocess.Popen([str(HWLINK), "-b", soft.url, "read", "7", "--duration", "20s", "--format", "csv"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    header, first = process.stdout.readline(), process.stdout.readline()
    soft.unplug()
    rest, errors = process.communicate(timeout=10)
    assert process.returncode == 2
    assert header.startswith("time_usec,") and first.split(",")[2:4] == ["D7", "1"] and rest == ""
    message, = errors.strip().splitlines()  # EIO or "returned no data", depending on who notices first
    assert message.startswith("Error: board failed after 1 reading(s): connection lost (")
