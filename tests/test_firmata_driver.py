"""The Firmata driver against the software Firmata board, over a real pty and over TCP (pyserial socket://)."""

from __future__ import annotations

import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Iterator

import numpy as np
import pytest

from hwlink.drivers import LineMode, open_board
from hwlink.drivers import firmata_protocol as fp
from hwlink.drivers.firmata import FirmataBoard
from hwlink.errors import BoardError, LineError
from hwlink.lines import LineCommand, LineCommandKind, LineModeFlags, LineReading
from hwlink.testing.firmata_board import BoardProcess, SoftFirmataBoard, uno_capabilities

IN, OUT, AN = LineModeFlags.IS_INPUT, LineModeFlags.IS_OUTPUT, LineModeFlags.ANALOG


def start(soft: SoftFirmataBoard, transport: str) -> str:
    return soft.start_pty() if transport == "pty" else soft.start_tcp()


@pytest.fixture(params=["pty", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def soft(transport: str) -> Iterator[SoftFirmataBoard]:
    board = SoftFirmataBoard(jumpers={13: 2})
    start(board, transport)
    yield board
    board.stop()


@pytest.fixture
def board(soft: SoftFirmataBoard) -> Iterator[FirmataBoard]:
    opened = open_board(soft.url)
    assert isinstance(opened, FirmataBoard)
    yield opened
    opened.close()


class Collector:
    """Readings as they arrive, waitable."""

    def __init__(self) -> None:
        self.readings: queue.Queue[LineReading] = queue.Queue()
        self.errors: queue.Queue[BoardError] = queue.Queue()

    def next(self, line: int, timeout: float = 2.0) -> LineReading:
        deadline = time.monotonic() + timeout
        while True:
            reading = self.readings.get(timeout=max(0.0, deadline - time.monotonic()))
            if reading.line_id == line:
                return reading

    def drain(self) -> list[LineReading]:
        items = []
        while not self.readings.empty():
            items.append(self.readings.get_nowait())
        return items


def subscribe(board: FirmataBoard) -> Collector:
    collector = Collector()
    board.subscribe(collector.readings.put, on_error=collector.errors.put)
    return collector


def test_handshake_reads_firmware_version_and_lines(board: FirmataBoard) -> None:
    assert str(board.firmware) == "StandardFirmata.ino 2.5"
    assert board.protocol_version == (2, 5)
    assert len(board.lines) == 20
    assert board.line("A0").line_id == 14 and board.line("D14").line_id == 14
    assert board.line(3).modes() == [LineMode.DIGITAL_IN, LineMode.DIGITAL_IN_PULLUP, LineMode.DIGITAL_OUT,
                                     LineMode.ANALOG_OUT]
    assert board.line(0).modes() == []


def test_digital_output_reaches_the_pin(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    seen: list[tuple[int, int, int]] = []
    soft.on_output = lambda pin, level, at_ns: seen.append((pin, level, at_ns))
    board.set_mode(13, OUT)
    assert soft.wait_for(lambda: soft.pin_mode(13) == fp.PinMode.OUTPUT)
    board.write_digital(13, 1)
    assert soft.wait_output(13, 1)
    board.write_digital(13, 0)
    assert soft.wait_output(13, 0)
    assert (fp.SET_DIGITAL_PIN_VALUE, bytes((13, 1))) in soft.commands  # 2.5 has the single-pin command
    assert [(pin, level) for pin, level, _ in seen] == [(13, 1), (13, 0)]
    assert seen[0][2] < seen[1][2]


def test_digital_input_reports_changed_pins_only(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    collector = subscribe(board)
    board.set_mode(4, IN)
    board.set_mode(7, IN)
    first = {collector.next(4).line_id, collector.next(7).line_id}
    assert first == {4, 7}  # each input reports its level once when configured
    collector.drain()
    before = board.clock.now_usec()
    soft.set_digital_input(7, 1)
    reading = collector.next(7)
    after = board.clock.now_usec()
    assert reading.value == 1 and reading.device_time_usec is None
    assert before <= reading.time_usec <= after  # stamped on arrival, on the master clock
    soft.set_digital_input(7, 0)
    assert collector.next(7).value == 0
    time.sleep(0.05)
    assert [r.line_id for r in collector.drain()] == []  # pin 4 never changed: never reported again


def test_pullup_input_reads_high(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    collector = subscribe(board)
    board.set_mode(8, IN | LineModeFlags.PULL_UP)
    assert soft.wait_for(lambda: soft.pin_mode(8) == fp.PinMode.PULLUP)
    assert collector.next(8).value == 1
    soft.set_digital_input(8, 0)  # something pulls it low
    assert collector.next(8).value == 0
    soft.release_input(8)  # let go: the pull-up wins again
    assert collector.next(8).value == 1


def test_analog_input_streams_at_the_sampling_interval(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    soft.set_analog_input("A2", 321)
    board.set_analog_interval(5_000)
    with board.readings(lines=["A2"]) as stream:
        board.set_mode("A2", IN)  # the analog name means the ADC
        assert board.mode("A2") is LineMode.ANALOG_IN
        time.sleep(0.3)
        readings = [stream.get(timeout=1) for _ in range(20)]
    assert {r.value for r in readings} == {321}
    assert soft.sampling_interval_ms == 5
    intervals = np.diff([r.time_usec for r in readings[1:]])
    assert 2_000 < np.median(intervals) < 10_000  # loose: the software board paces at 5 ms


def test_digital_name_of_an_analog_pin_is_digital(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    collector = subscribe(board)
    board.set_mode("D15", IN)
    assert board.mode(15) is LineMode.DIGITAL_IN
    assert soft.wait_for(lambda: soft.pin_mode(15) == fp.PinMode.INPUT)
    soft.set_digital_input(15, 1)
    assert collector.next(15).value in (0, 1)
    board.set_mode(15, IN | AN)
    assert soft.wait_for(lambda: soft.pin_mode(15) == fp.PinMode.ANALOG)


def test_pwm_output(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    board.set_mode(5, OUT | AN)
    assert soft.wait_for(lambda: soft.pin_mode(5) == fp.PinMode.PWM)
    board.write_analog(5, 200)
    assert soft.wait_for(lambda: soft.pwm_value(5) == 200)
    with pytest.raises(LineError, match=r"out of range 0..255"):
        board.write_analog(5, 256)
    with pytest.raises(LineError, match="supported modes"):
        board.set_mode(4, OUT | AN)


def test_pwm_beyond_the_analog_message_uses_extended_analog() -> None:
    """Pins above 15 and values above 14 bits do not fit the 3-byte analog message."""
    capabilities = uno_capabilities(has_pullup=True)
    capabilities[3][fp.PinMode.PWM] = 16  # a 16-bit PWM pin
    capabilities[16][fp.PinMode.PWM] = 8  # PWM on a pin above 15
    with SoftFirmataBoard(capabilities=capabilities) as soft:
        soft.start_pty()
        with open_board(soft.url) as board:
            assert board.line(3).analog_out_max == 65535
            board.set_mode(3, OUT | AN)
            board.set_mode(16, OUT | AN)
            board.write_analog(3, 40_000)
            board.write_analog(16, 100)
            assert soft.wait_for(lambda: (soft.pwm_value(3), soft.pwm_value(16)) == (40_000, 100))
            extended = [data for command, data in soft.commands if command == fp.START_SYSEX
                        and data[0] == fp.EXTENDED_ANALOG]
            assert [data[1] for data in extended] == [3, 16]


def test_pulse_train_widths_seen_on_the_pin(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    board.set_mode(12, OUT)
    started = time.monotonic()
    train = board.pulse(12, width_usec=10_000, count=6, period_usec=30_000)
    assert time.monotonic() - started < 0.1  # scheduled, not blocking (the train takes 160 ms)
    assert train.wait(timeout=3)
    assert soft.wait_for(lambda: len(soft.pulse_widths_usec(12)) == 6)
    widths = soft.pulse_widths_usec(12)
    # loose (a shared machine preempts threads for milliseconds): the pin sees the scheduled widths
    assert abs(np.median(widths) - 10_000) < 2_000 and np.all((widths > 5_000) & (widths < 30_000))


def test_loopback_through_a_jumper(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    collector = subscribe(board)
    board.set_mode(13, OUT)
    board.set_mode(2, IN)
    assert collector.next(2).value == 0
    board.write_digital(13, 1)
    assert collector.next(2).value == 1


def test_garbage_and_unknown_messages_do_not_stop_readings(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    collector = subscribe(board)
    board.set_mode(6, IN)
    collector.next(6)
    soft.inject(bytes((0x05, 0x7F, 0xF1)) + fp.sysex(0x60, (1, 2)) + bytes((0x93, 0x01)))  # stray, unknown, cut short
    soft.inject(fp.sysex(fp.STRING_DATA, fp.encode_string("I2C: Too many bytes received")))
    soft.set_digital_input(6, 1)
    assert collector.next(6).value == 1
    assert board.unknown_messages >= 1
    assert soft.wait_for(lambda: "I2C: Too many bytes received" in board.board_strings)
    assert board.error is None


def test_device_specific_commands_carry_raw_firmata(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    board.submit(LineCommand(LineCommandKind.DEVICE_SPECIFIC, extra=fp.sysex(0x60, (1, 2))))
    assert soft.wait_for(lambda: (fp.START_SYSEX, bytes((0x60, 1, 2))) in soft.unknown)
    with pytest.raises(LineError, match="must start with a command byte"):
        board.submit(LineCommand(LineCommandKind.DEVICE_SPECIFIC, extra=b"\x01\x02"))


def test_a_failing_callback_does_not_end_the_reader(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    def broken(reading: LineReading) -> None:
        raise RuntimeError("subscriber bug")

    board.subscribe(broken)
    collector = subscribe(board)
    board.set_mode(9, IN)
    collector.next(9)
    soft.set_digital_input(9, 1)
    assert collector.next(9).value == 1


def test_unplug_fails_subscribers_fast_without_spinning_and_the_board_reopens(soft: SoftFirmataBoard,
                                                                             board: FirmataBoard) -> None:
    collector = subscribe(board)
    stream = board.readings(lines=[10])
    board.set_mode(10, IN)
    collector.next(10)
    unplugged = time.monotonic()
    soft.unplug()
    error = collector.errors.get(timeout=1.0)
    assert time.monotonic() - unplugged < 1.0
    assert "connection lost" in str(error)
    with pytest.raises(BoardError):
        while True:
            stream.get(timeout=1)
    with pytest.raises(BoardError, match="connection lost"):
        board.set_mode(11, OUT)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(0.5)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    assert cpu < 0.2  # loose: a spinning reader would burn ~0.5 s of CPU here
    assert not any(t.name == f"hwlink-firmata {soft.url}" for t in threading.enumerate())  # the reader ended
    board.close()
    soft.replug()
    with open_board(soft.url) as again:
        again.set_mode(13, OUT)
        again.write_digital(13, 1)
        assert soft.wait_output(13, 1)


def test_closing_from_the_error_callback(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    """A subscriber may close the board when told it failed; that runs on the reader thread."""
    closed = threading.Event()

    def close_on_error(error: BoardError) -> None:
        board.close()
        closed.set()

    board.subscribe(lambda reading: None, on_error=close_on_error)
    soft.unplug()
    assert closed.wait(timeout=1)
    assert board.closed


def test_close_stops_reporting_and_leaves_outputs(soft: SoftFirmataBoard, board: FirmataBoard) -> None:
    board.set_mode("A1", IN)
    board.set_mode(13, OUT)
    board.write_digital(13, 1)
    assert soft.wait_for(lambda: soft.reporting_channels() == {1})
    board.close()
    board.close()
    assert soft.wait_for(lambda: soft.reporting_channels() == set())
    assert soft.output_level(13) == 1  # `hwlink write 13 1` must leave the LED on
    with pytest.raises(BoardError, match="closed"):
        board.write_digital(13, 0)


def test_firmata_2_4_writes_whole_ports_and_has_no_pullup(transport: str) -> None:
    with SoftFirmataBoard("standard-2.4") as soft:
        start(soft, transport)
        with open_board(soft.url) as board:
            assert board.protocol_version == (2, 4)
            board.set_mode(12, OUT)
            board.set_mode(13, OUT)
            board.write_digital(13, 1)
            board.write_digital(12, 1)
            assert soft.wait_output(12, 1) and soft.output_level(13) == 1
            board.write_digital(13, 0)
            assert soft.wait_output(13, 0) and soft.output_level(12) == 1
            assert not any(command == fp.SET_DIGITAL_PIN_VALUE for command, _ in soft.commands)
            with pytest.raises(LineError) as raised:
                board.set_mode(2, IN | LineModeFlags.PULL_UP)
            assert str(raised.value) == ("line 2 (D2) does not support digital-in-pullup; supported modes: "
                                         "digital-in, digital-out")


def test_two_boards_keep_their_own_output_latches() -> None:
    """pymata4 shares port latches between instances; each hwlink board has its own."""
    with SoftFirmataBoard("standard-2.4") as first_soft, SoftFirmataBoard("standard-2.4") as second_soft:
        first_soft.start_pty()
        second_soft.start_pty()
        with open_board(first_soft.url) as first, open_board(second_soft.url) as second:
            for board in (first, second):
                board.set_mode(12, OUT)
                board.set_mode(13, OUT)
            first.write_digital(13, 1)
            second.write_digital(12, 1)
            assert second_soft.wait_output(12, 1) and first_soft.wait_output(13, 1)
            assert second_soft.output_level(13) == 0


def test_board_that_never_answers_gives_a_clear_error(transport: str) -> None:
    with SoftFirmataBoard() as soft:
        start(soft, transport)
        soft.mute()
        started = time.monotonic()
        with pytest.raises(BoardError, match=r"no firmware report from the board in time; heard nothing at 57600"):
            open_board(soft.url + "?timeout=400ms")
        assert time.monotonic() - started < 2


def test_handshake_error_says_what_was_heard() -> None:
    """A device on the port that speaks something else (a raw pty writing text)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def chatter() -> None:
        while not stop.is_set():
            os.write(master, b"hello\r\n")
            stop.wait(0.02)

    thread = threading.Thread(target=chatter, daemon=True)
    thread.start()
    try:
        with pytest.raises(BoardError, match=r"heard \d+\+? byte\(s\) without a valid reply: 68 65 6c 6c 6f"):
            open_board(f"firmata://{os.ttyname(slave)}?timeout=300ms")
    finally:
        stop.set()
        thread.join()
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("firmware", ["standard-2.5", "express"])
def test_reset_on_open_is_waited_out(firmware: str) -> None:
    """An Uno resets when its port opens and is deaf while booting; FirmataExpress does not even announce."""
    with SoftFirmataBoard(firmware, reset_on_connect_s=0.6) as soft:
        soft.start_tcp()
        started = time.monotonic()
        with open_board(soft.url) as board:
            assert time.monotonic() - started >= 0.5
            assert board.firmware.name == ("StandardFirmata.ino" if firmware == "standard-2.5"
                                           else "FirmataExpress.ino")


def test_missing_port_is_a_board_error() -> None:
    with pytest.raises(BoardError, match="cannot open firmata:///dev/does-not-exist"):
        open_board("firmata:///dev/does-not-exist")


def test_software_board_in_a_child_process() -> None:
    with BoardProcess("tcp", jumpers={13: 2}) as soft, open_board(soft.url) as board:
        board.set_mode(13, OUT)
        board.write_digital(13, 1)
        deadline = time.monotonic() + 2
        while soft.call("output_level", 13) != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert soft.call("output_level", 13) == 1
        assert soft.call("_input_level", 2) == 1  # through the jumper


def test_software_board_from_the_shell() -> None:
    process = subprocess.Popen([sys.executable, "-m", "hwlink.testing.firmata_board", "--firmware", "standard-2.4"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("firmata:///")
        with open_board(url) as board:
            assert board.firmware.name == "StandardFirmata.ino" and board.protocol_version == (2, 4)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=5)
