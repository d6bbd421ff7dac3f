"""The Firmata driver against genuine StandardFirmata (the avrgirl-arduino@5.0.1 Uno image, Firmata 2.4) on simavr.

``make firmware`` (a prerequisite of ``make test``) installs simavr, fetches the image and builds the bridge; without
them these tests fail with a message saying so. Assertions are functional; timing bounds are wide because the
emulator is paced to real time on a shared machine.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import numpy as np
import pytest

from hwlink.drivers import LineMode, open_board
from hwlink.drivers.firmata import FirmataBoard
from hwlink.errors import LineError
from hwlink.lines import LineModeFlags, LineReading
from hwlink.testing.simavr_uno import SimavrUno

IN, OUT, AN = LineModeFlags.IS_INPUT, LineModeFlags.IS_OUTPUT, LineModeFlags.ANALOG


@pytest.fixture(scope="module")
def uno() -> Iterator[SimavrUno]:
    with SimavrUno.start() as running:
        yield running


@pytest.fixture(scope="module")
def board(uno: SimavrUno) -> Iterator[FirmataBoard]:
    opened = open_board(uno.url)
    assert isinstance(opened, FirmataBoard)
    yield opened
    opened.close()


def next_reading(readings: queue.Queue[LineReading], line: int, timeout: float = 3.0) -> LineReading:
    deadline = time.monotonic() + timeout
    while True:
        reading = readings.get(timeout=max(0.0, deadline - time.monotonic()))
        if reading.line_id == line:
            return reading


def test_genuine_firmware_identifies_itself(board: FirmataBoard) -> None:
    assert board.firmware.name == "StandardFirmata.ino"
    assert board.protocol_version == (2, 4)
    assert [line.name for line in board.lines][-6:] == ["A0", "A1", "A2", "A3", "A4", "A5"]
    assert board.line(0).modes() == [] and board.line(1).modes() == []
    assert [line.line_id for line in board.lines if line.analog_out_max == 255] == [3, 5, 6, 9, 10, 11]


def test_modes_and_digital_output_on_the_pin(uno: SimavrUno, board: FirmataBoard) -> None:
    board.set_mode(13, OUT)
    assert board.mode(13) is LineMode.DIGITAL_OUT
    board.write_digital(13, 1)
    assert uno.wait_level(13, 1)
    assert uno.pin(13) == {"port": 1, "ddr": 1, "pin": 1}
    board.write_digital(13, 0)
    assert uno.wait_level(13, 0)


def test_digital_input_driven_from_outside(uno: SimavrUno, board: FirmataBoard) -> None:
    readings: queue.Queue[LineReading] = queue.Queue()
    subscription = board.subscribe(readings.put, lines=[2])
    try:
        board.set_mode(2, IN)
        assert next_reading(readings, 2).value == 0
        uno.set_pin(2, 1)
        assert next_reading(readings, 2).value == 1
        uno.set_pin(2, 0)
        assert next_reading(readings, 2).value == 0
    finally:
        subscription.cancel()


def test_analog_input_at_the_sampling_interval(uno: SimavrUno, board: FirmataBoard) -> None:
    uno.set_adc(1, 2500)  # AVCC 5 V, 10 bit: 511
    board.set_analog_interval(10_000)
    with board.readings(lines=["A1"]) as stream:
        board.set_mode("A1", IN)
        time.sleep(0.2)  # the firmware's catch-up burst after enabling reporting
        while stream.get(timeout=0) is not None:
            pass
        window_start = time.monotonic()
        readings = []
        while time.monotonic() - window_start < 1.0:
            reading = stream.get(timeout=1)
            assert reading is not None
            readings.append(reading)
        uno.set_adc(1, 1000)
        while (reading := stream.get(timeout=1)) is not None and reading.value != 204:
            pass
    board.set_mode(15, IN)  # back to digital: reporting of A1 stops
    assert reading is not None and reading.value == 204
    assert {r.value for r in readings} == {511}
    assert 40 <= len(readings) <= 160  # 100 per second at 10 ms, wide for a paced emulator on a busy machine
    assert 7_000 <= np.median(np.diff([r.time_usec for r in readings])) <= 14_000


def test_pwm_output(uno: SimavrUno, board: FirmataBoard) -> None:
    for pin, duty in ((9, 200), (3, 77), (6, 128)):
        board.set_mode(pin, OUT | AN)
        board.write_analog(pin, duty)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and [uno.pwm(p) for p in (9, 3, 6)] != [200, 77, 128]:
        time.sleep(0.01)
    assert [uno.pwm(p) for p in (9, 3, 6)] == [200, 77, 128]


def test_pulse_widths_on_the_emulated_pin(uno: SimavrUno, board: FirmataBoard) -> None:
    board.set_mode(12, OUT)
    board.write_digital(12, 0)
    assert uno.wait_level(12, 0)
    uno.clear_events()
    train = board.pulse(12, width_usec=20_000, count=5, period_usec=60_000)
    assert train.wait(timeout=5)
    deadline = time.monotonic() + 3
    while len(uno.pulse_widths_usec(12)) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    widths = uno.pulse_widths_usec(12)
    assert len(widths) == 5
    # wide: the emulator's pacing and the host both stall on a shared machine
    assert abs(np.median(widths) - 20_000) < 3_000 and np.all((widths > 10_000) & (widths < 40_000))


def test_pullup_is_missing_on_standard_firmata_2_4(board: FirmataBoard) -> None:
    assert not board.line(4).pullup
    with pytest.raises(LineError) as raised:
        board.set_mode(4, IN | LineModeFlags.PULL_UP)
    assert str(raised.value) == ("line 4 (D4) does not support digital-in-pullup; supported modes: "
                                 "digital-in, digital-out")
