"""The line vocabulary: Syntalos names/values, flag combination, validation, wire formats, helpers."""

from __future__ import annotations

import pytest

from hwlink.errors import LineError
from hwlink.lines import (
    ControlCommand,
    ControlCommandKind,
    HwInputLine,
    HwOutputLine,
    InputLine,
    LineCommand,
    LineCommandKind,
    LineModeFlags,
    LineReading,
    OutputLine,
    new_line_command,
)


def test_enum_values_match_syntalos() -> None:
    assert {k.name: k.value for k in LineCommandKind} == {
        "UNKNOWN": 0, "SET_MODE": 1, "WRITE_DIGITAL": 2, "WRITE_ANALOG": 3,
        "WRITE_DIGITAL_PULSE": 4, "WRITE_ANALOG_PULSE": 5, "DEVICE_SPECIFIC": 6,
    }
    assert (LineModeFlags.NONE, LineModeFlags.IS_INPUT, LineModeFlags.IS_OUTPUT, LineModeFlags.PULL_UP) == (0, 1, 2, 4)
    assert {k.name: k.value for k in ControlCommandKind} == {
        "UNKNOWN": 0, "START": 1, "PAUSE": 2, "STOP": 3, "STEP": 4, "CUSTOM": 5,
    }


def test_flags_combine_with_or_and_with_the_syntalos_idiom() -> None:
    combined = LineModeFlags.IS_INPUT | LineModeFlags.PULL_UP
    assert int(combined) == 5
    assert LineModeFlags.PULL_UP in combined
    assert LineModeFlags(int(LineModeFlags.IS_INPUT) | int(LineModeFlags.PULL_UP)) == combined
    command = LineCommand(LineCommandKind.SET_MODE, 2, flags=5)  # plain ints accepted
    assert command.flags == combined and isinstance(command.flags, LineModeFlags)


def test_line_command_defaults_and_factory() -> None:
    command = LineCommand()
    assert (command.kind, command.line_id, command.value, command.duration_usec, command.flags, command.extra) == (
        LineCommandKind.UNKNOWN, 0, 0, 0, LineModeFlags.NONE, b"")
    made = new_line_command(LineCommandKind.WRITE_DIGITAL, 13, 1)
    assert (made.kind, made.line_id, made.value) == (LineCommandKind.WRITE_DIGITAL, 13, 1)
    assert LineCommand(LineCommandKind.SET_MODE).kind is LineCommandKind.SET_MODE


@pytest.mark.parametrize(
    "kwargs, message",
    [({"line_id": 70000}, "line_id"), ({"line_id": -1}, "line_id"), ({"value": -1}, "value"),
     ({"value": 2**32}, "value"), ({"flags": 64}, "flag")],
)
def test_out_of_range_fields_raise_instead_of_wrapping(kwargs: dict, message: str) -> None:
    with pytest.raises(LineError, match=message):
        LineCommand(LineCommandKind.WRITE_DIGITAL, **kwargs)


def test_wire_formats_follow_syntalos_layout() -> None:
    command = LineCommand(LineCommandKind.WRITE_DIGITAL_PULSE, 13, 1, 2500, LineModeFlags.NONE, b"\x01\x02")
    raw = command.to_bytes()
    assert len(raw) == 22 + 8 + 2  # fixed fields, u64 length, payload
    assert raw[:4] == (4).to_bytes(4, "little") and raw[4:6] == (13).to_bytes(2, "little")
    assert LineCommand.from_bytes(raw) == command
    with pytest.raises(LineError, match="truncated"):
        LineCommand.from_bytes(raw[:-1])
    reading = LineReading(2, 1, 123_456)
    assert len(reading.to_bytes()) == 14
    assert LineReading.from_bytes(reading.to_bytes()) == reading
    control = ControlCommand(ControlCommandKind.START, 2000, "go")
    assert ControlCommand.from_bytes(control.to_bytes()) == control


def test_reading_time_as_timedelta() -> None:
    assert LineReading(1, 0, 1_500_000).time.total_seconds() == 1.5


class RecordingPort:
    def __init__(self) -> None:
        self.sent: list[LineCommand] = []

    def submit(self, command: LineCommand) -> None:
        self.sent.append(command)


def test_output_line_helpers_build_the_syntalos_commands() -> None:
    port = RecordingPort()
    line = OutputLine(port, 13)
    assert line.send_mode().flags == LineModeFlags.IS_OUTPUT
    assert line.set_value(True).value == 1 and line.set_value(False).value == 0
    assert line.pulse().duration_usec == 2500
    assert line.pulse_msec().duration_usec == 50_000
    assert line.pulse_msec(2).kind == LineCommandKind.WRITE_DIGITAL_PULSE
    assert [c.kind for c in port.sent] == [
        LineCommandKind.SET_MODE, LineCommandKind.WRITE_DIGITAL, LineCommandKind.WRITE_DIGITAL,
        LineCommandKind.WRITE_DIGITAL_PULSE, LineCommandKind.WRITE_DIGITAL_PULSE, LineCommandKind.WRITE_DIGITAL_PULSE,
    ]
    with pytest.raises(LineError, match="digital output line"):
        line.set_analog_value(10)


def test_analog_output_line_rejects_digital_use() -> None:
    port = RecordingPort()
    line = HwOutputLine(port, 3, analog=True)
    assert line.send_mode().flags == LineModeFlags.IS_OUTPUT | LineModeFlags.ANALOG
    assert line.set_analog_value(200).kind == LineCommandKind.WRITE_ANALOG
    for call in (lambda: line.set_value(True), line.pulse, line.pulse_msec):
        with pytest.raises(LineError, match="analog output line"):
            call()


def test_input_line_modes() -> None:
    port = RecordingPort()
    assert InputLine(port, 2).send_mode().flags == LineModeFlags.IS_INPUT
    assert HwInputLine(port, 2, pullup=True).send_mode().flags == LineModeFlags.IS_INPUT | LineModeFlags.PULL_UP
    assert len(port.sent) == 2
