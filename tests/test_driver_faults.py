"""Faults every driver meets the same way: a subscriber that raises, a device gone silent, line noise as data.

The callback isolation, the silence watchdog and the range check live in ``Board``; these tests run them on
``sim://`` and on the Firmata driver against the software Firmata board over a real pty.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Iterator

import pytest

from hwlink.drivers import open_board
from hwlink.drivers import firmata_protocol as fp
from hwlink.drivers.firmata import FirmataBoard
from hwlink.errors import BoardError, ConfigError
from hwlink.lines import LineModeFlags, LineReading
from hwlink.testing.firmata_board import SoftFirmataBoard

IN, OUT, AN = LineModeFlags.IS_INPUT, LineModeFlags.IS_OUTPUT, LineModeFlags.ANALOG


def test_a_raising_subscriber_on_sim_is_removed_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    calls = {"broken": 0}

    def broken(reading: LineReading) -> None:
        calls["broken"] += 1
        raise RuntimeError("subscriber bug")

    good: queue.Queue[LineReading] = queue.Queue()
    errors: list[BoardError] = []
    with open_board("sim://?analog_interval=1ms") as board, caplog.at_level(logging.ERROR):
        board.subscribe(broken, on_error=errors.append)
        board.subscribe(good.put)
        board.set_mode("A0", IN)
        first = good.get(timeout=5)
        deadline = time.monotonic() + 5
        later = 0
        while later < 50 and time.monotonic() < deadline:  # the device thread is still delivering
            good.get(timeout=5)
            later += 1
        assert first.line_id == 14 and later == 50
        assert calls["broken"] == 1  # reported once, then unsubscribed
        assert board.error is None and errors == []
        assert len(board.callback_errors) == 1 and "subscriber bug" in board.callback_errors[0]
        assert "subscriber bug" in caplog.text
        # commands still work: the board is alive
        board.set_mode(13, OUT)
        board.write_digital(13, 1)


def test_a_raising_signal_subscriber_is_isolated_too() -> None:
    with open_board("sim://") as board:
        seen: list[object] = []

        def broken(block: object) -> None:
            raise ValueError("bad signal subscriber")

        board.subscribe_signals(broken)
        board.subscribe_signals(seen.append)
        board._deliver_signals("block")  # type: ignore[arg-type]
        board._deliver_signals("block2")  # type: ignore[arg-type]
        assert seen == ["block", "block2"]
        assert len(board.callback_errors) == 1


def test_a_raising_error_callback_does_not_hide_the_failure_from_the_others() -> None:
    with open_board("sim://?fail_after=200ms") as board:
        got: queue.Queue[BoardError] = queue.Queue()

        def broken(error: BoardError) -> None:
            raise RuntimeError("error callback bug")

        board.subscribe(lambda r: None, on_error=broken)
        board.subscribe(lambda r: None, on_error=got.put)
        assert isinstance(got.get(timeout=5), BoardError)


def test_a_silent_sim_board_is_declared_dead() -> None:
    errors: queue.Queue[BoardError] = queue.Queue()
    with open_board("sim://?analog_interval=5ms&mute_after=300ms&silence=1s") as board:
        board.subscribe(lambda r: None, on_error=errors.put)
        board.set_mode("A0", IN)
        error = errors.get(timeout=15)
        assert "no data from the device" in str(error)
        assert board.silences == 1 and board.error is error


def test_a_quiet_digital_line_is_not_silence() -> None:
    """Digital inputs report changes only: no reading for longer than the limit is no fault."""
    with open_board("sim://?silence=300ms") as board:
        board.set_mode(2, IN)
        time.sleep(1.5)
        assert board.error is None and board.silences == 0


def test_out_of_range_values_are_dropped_and_counted() -> None:
    got: list[LineReading] = []
    with open_board("sim://?analog_interval=1s") as board:
        board.subscribe(got.append)
        board.set_mode("A0", IN)
        board.set_mode(2, IN)
        board._deliver(LineReading(14, 16251, 1, None))
        board._deliver(LineReading(14, -1, 1, None))
        board._deliver(LineReading(14, 1023, 1, None))
        board._deliver(LineReading(2, 2, 1, None))
        assert [r.value for r in got if r.time_usec == 1] == [1023]
        assert board.dropped_values == {14: 2, 2: 1}


@pytest.mark.parametrize("url", [
    "sim://?drift_ppm=1e400", "sim://?drift_ppm=nan", "sim://?drift_ppm=inf", "sim://?drift_ppm=-1e6",
    "sim://?drift_change=nan", "sim://?offset=1e30s", "sim://?offset=-1e30s", "sim://?seed=-1",
    "sim://?a0=sine:1Hz:nan", "sim://?a0=const:inf", "sim://?a0=noise:-5", "sim://?d2=square:1Hz:x",
    "sim://?d2=square:1e400Hz", "sim://?analog_interval=1e400s", "sim://?silence=0s",
    "firmata:///dev/null?timeout=1e400s", "firmata:///dev/null?silence=nan", "firmata:///dev/null?baud=99999999999",
])
def test_numbers_in_urls_are_checked_before_use(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError):
        open_board(url)
    assert time.monotonic() - started < 5


# ----- Firmata ------------------------------------------------------------------------------------------

@pytest.fixture
def soft() -> Iterator[SoftFirmataBoard]:
    board = SoftFirmataBoard()
    board.start_pty()
    yield board
    board.stop()


def test_a_firmata_board_that_stops_sending_is_declared_dead(soft: SoftFirmataBoard) -> None:
    errors: queue.Queue[BoardError] = queue.Queue()
    board = open_board(soft.url + "?analog_interval=10ms&silence=1s")
    try:
        readings: queue.Queue[LineReading] = queue.Queue()
        board.subscribe(readings.put, on_error=errors.put)
        board.set_mode("A0", IN)
        readings.get(timeout=5)
        soft.mute()
        error = errors.get(timeout=15)
        assert "no data from the device" in str(error) and board.silences == 1
    finally:
        board.close()


def test_firmata_garbage_never_becomes_an_impossible_reading(soft: SoftFirmataBoard) -> None:
    board = open_board(soft.url + "?analog_interval=10ms")
    assert isinstance(board, FirmataBoard)
    try:
        readings: list[LineReading] = []
        lock = threading.Lock()

        def keep(reading: LineReading) -> None:
            with lock:
                readings.append(reading)

        board.subscribe(keep)
        board.set_mode("A0", IN)
        soft.set_analog_input("A0", 300)
        rng = random.Random(15)
        garbage = bytes(rng.randrange(256) for _ in range(4096))
        # make sure the noise has analog messages for channel 0 with 14-bit values in it
        garbage += bytes((fp.ANALOG_MESSAGE | 0, 0x7B, 0x7E)) * 8
        soft.inject(garbage)
        time.sleep(0.5)
        with lock:
            values = [r.value for r in readings if r.line_id == 14]
        assert values and max(values) <= 1023
        assert board.dropped_values.get(14, 0) >= 8
        assert board.error is None
    finally:
        board.close()


def test_a_silent_board_fails_the_run_and_its_dataset_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import tomllib

    from click.testing import CliRunner

    from hwlink.cli.main import cli

    experiment = tmp_path / "silent.toml"
    experiment.write_text("""
[experiment]
name = "silent"
duration = "20s"

[modules.board]
kind = "board"
url = "sim://?analog_interval=5ms&mute_after=500ms&silence=1s"
inputs = ["A0"]

[modules.rec]
kind = "recorder"
name = "readings"

[[connect]]
from = "board.readings"
to = "rec.in"
""")
    result = CliRunner().invoke(cli, ["run", str(experiment), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "no data from the device" in result.stderr
    attributes = tomllib.loads((tmp_path / "out" / "board" / "attributes.toml").read_text())
    assert attributes["device_silences"] == 1 and attributes["board_failed"] is True


def test_record_says_when_the_board_went_silent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import edlio
    from click.testing import CliRunner

    from hwlink.cli.main import cli

    result = CliRunner().invoke(cli, ["record", "-q", "-b", "sim://?analog_interval=5ms&mute_after=500ms&silence=1s",
                                      "--lines", "A0", "--duration", "20s", "-o", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no data from the device" in result.stderr
    attributes = edlio.load(str(tmp_path / "r")).attributes
    assert attributes["success"] is False and attributes["device_silences"] == 1
    assert attributes["dropped_values"] == 0
