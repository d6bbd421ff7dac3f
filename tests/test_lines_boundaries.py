"""Boundary values of the line vocabulary: every range at its extremes and one past, integers only."""

from __future__ import annotations

import numpy as np
import pytest

from hwlink.errors import LineError
from hwlink.lines import (
    U16_MAX,
    U32_MAX,
    ControlCommand,
    ControlCommandKind,
    InputLine,
    LineCommand,
    LineCommandKind,
    LineModeFlags,
    LineReading,
    OutputLine,
    SignalBlock,
    new_line_command,
)


class Port:
    def __init__(self) -> None:
        self.sent: list[LineCommand] = []

    def submit(self, command: LineCommand) -> None:
        self.sent.append(command)


def test_range_limits_are_the_wire_widths() -> None:
    assert (U16_MAX, U32_MAX) == (65535, 2**32 - 1)


def test_line_id_and_value_accept_their_inclusive_extremes() -> None:
    """Bug caught: _check_range's upper bound made exclusive (65535 and 2**32-1 refused)."""
    command = LineCommand(LineCommandKind.WRITE_ANALOG, 65535, 2**32 - 1)
    assert (command.line_id, command.value) == (65535, 2**32 - 1)
    assert LineCommand.from_bytes(command.to_bytes()) == command
    low = LineCommand(LineCommandKind.WRITE_ANALOG, 0, 0)
    assert (low.line_id, low.value) == (0, 0)
    assert OutputLine(Port(), 65535).line_id == 65535
    assert InputLine(Port(), 65535).line_id == 65535
    assert OutputLine(Port(), 0).line_id == 0


@pytest.mark.parametrize("field, value", [("line_id", 65536), ("line_id", -1), ("value", 2**32), ("value", -1)])
def test_one_past_each_extreme_is_refused(field: str, value: int) -> None:
    with pytest.raises(LineError, match=rf"^{field} {value} out of range 0\.\.{2**16 - 1 if field == 'line_id' else 2**32 - 1}$"):
        LineCommand(LineCommandKind.WRITE_DIGITAL, **{field: value})


@pytest.mark.parametrize("make", [
    lambda: LineCommand(LineCommandKind.WRITE_DIGITAL, 1.5),
    lambda: OutputLine(Port(), 1.5),
    lambda: InputLine(Port(), 2.5),
])
def test_fractional_line_ids_are_refused(make) -> None:
    """Bug caught: _check_range's integer check removed (line id 1.5 accepted and truncated to 1)."""
    with pytest.raises(LineError, match=r"line_id 1\.5 out of range|line_id 2\.5 out of range"):
        make()


def test_integral_floats_and_numpy_integers_are_accepted_as_ints() -> None:
    command = LineCommand(LineCommandKind.WRITE_DIGITAL, np.uint16(65535), np.uint32(2**32 - 1))
    assert type(command.line_id) is int and command.line_id == 65535
    assert type(command.value) is int and command.value == 2**32 - 1
    assert OutputLine(Port(), 3.0).line_id == 3 and type(OutputLine(Port(), 3.0).line_id) is int


def test_out_of_range_line_handles_are_refused() -> None:
    for make in (OutputLine, InputLine):
        with pytest.raises(LineError, match="line_id 65536 out of range"):
            make(Port(), 65536)
        with pytest.raises(LineError, match="line_id -1 out of range"):
            make(Port(), -1)


def test_mode_flags_accept_every_known_bit_and_refuse_the_next() -> None:
    every = LineModeFlags.IS_INPUT | LineModeFlags.IS_OUTPUT | LineModeFlags.PULL_UP | LineModeFlags.ANALOG
    assert LineCommand(LineCommandKind.SET_MODE, 1, flags=15).flags == every
    assert LineCommand(LineCommandKind.SET_MODE, 1, flags=0).flags == LineModeFlags.NONE
    with pytest.raises(LineError, match="0x10"):
        LineCommand(LineCommandKind.SET_MODE, 1, flags=16)
    with pytest.raises(LineError, match="flag"):
        LineCommand(LineCommandKind.SET_MODE, 1, flags=-1)


def test_line_command_wire_size_boundaries() -> None:
    fixed = LineCommand(LineCommandKind.WRITE_DIGITAL_PULSE, 65535, 2**32 - 1, 2**63 - 1, LineModeFlags(15))
    raw = fixed.to_bytes()
    assert len(raw) == 30  # i32 u16 u32 i64 u32 u64, no padding
    assert LineCommand.from_bytes(raw) == fixed  # exactly the fixed size: no extra payload
    with pytest.raises(LineError, match="needs 30 bytes, got 29"):
        LineCommand.from_bytes(raw[:-1])
    with_extra = LineCommand(LineCommandKind.DEVICE_SPECIFIC, 1, extra=b"\x00\xff")
    raw = with_extra.to_bytes()
    assert LineCommand.from_bytes(raw + b"junk") == with_extra  # the declared length wins over trailing bytes
    with pytest.raises(LineError, match=r"truncated \(1 of 2 bytes\)"):
        LineCommand.from_bytes(raw[:-1])


def test_reading_and_control_wire_extremes() -> None:
    reading = LineReading(65535, 2**32 - 1, -(2**63))
    assert LineReading.from_bytes(reading.to_bytes()) == reading
    assert len(reading.to_bytes()) == 14
    control = ControlCommand(ControlCommandKind.CUSTOM, 0, "")
    assert ControlCommand.from_bytes(control.to_bytes()) == control
    assert len(control.to_bytes()) == 20
    longest = ControlCommand(ControlCommandKind.STOP, 2**64 - 1, "ä" * 3)
    assert ControlCommand.from_bytes(longest.to_bytes()) == longest
    with pytest.raises(LineError, match="must not be negative"):
        ControlCommand(ControlCommandKind.START, -1)


def test_helpers_build_commands_with_their_exact_fields() -> None:
    port = Port()
    line = OutputLine(port, 7)
    assert line.pulse_msec(0.0015) == LineCommand(LineCommandKind.WRITE_DIGITAL_PULSE, 7, 1, duration_usec=2)
    assert line.pulse() == LineCommand(LineCommandKind.WRITE_DIGITAL_PULSE, 7, 1, duration_usec=2500)
    assert line.set_value(0) == LineCommand(LineCommandKind.WRITE_DIGITAL, 7, 0)
    assert line.set_value(2) == LineCommand(LineCommandKind.WRITE_DIGITAL, 7, 1)
    assert port.sent == [LineCommand(LineCommandKind.WRITE_DIGITAL_PULSE, 7, 1, duration_usec=2),
                         LineCommand(LineCommandKind.WRITE_DIGITAL_PULSE, 7, 1, duration_usec=2500),
                         LineCommand(LineCommandKind.WRITE_DIGITAL, 7, 0),
                         LineCommand(LineCommandKind.WRITE_DIGITAL, 7, 1)]
    analog = OutputLine(port, 8, analog=True)
    assert analog.analog is True and line.analog is False
    assert analog.send_mode().flags == LineModeFlags.IS_OUTPUT | LineModeFlags.ANALOG
    assert line.send_mode().flags == LineModeFlags.IS_OUTPUT
    assert analog.set_analog_value(2**32 - 1).value == 2**32 - 1
    with pytest.raises(LineError, match="set_value\\(\\) is not possible on analog output line 8"):
        analog.set_value(True)
    with pytest.raises(LineError, match="set_analog_value\\(\\) is not possible on digital output line 7"):
        line.set_analog_value(1)
    assert InputLine(port, 3, pullup=True).send_mode().flags == LineModeFlags.IS_INPUT | LineModeFlags.PULL_UP
    assert InputLine(port, 3).send_mode() == LineCommand(LineCommandKind.SET_MODE, 3, flags=LineModeFlags.IS_INPUT)


def test_factory_default_value_and_handles_at_line_zero() -> None:
    assert new_line_command(LineCommandKind.WRITE_DIGITAL, 4) == LineCommand(LineCommandKind.WRITE_DIGITAL, 4, 0)
    assert new_line_command(2, 0, 1).kind is LineCommandKind.WRITE_DIGITAL
    port = Port()
    assert InputLine(port, 0).line_id == 0
    assert OutputLine(port, 9).send_mode() == LineCommand(LineCommandKind.SET_MODE, 9, flags=LineModeFlags.IS_OUTPUT)
    sent = InputLine(port, 5, pullup=True).send_mode()
    assert port.sent == [LineCommand(LineCommandKind.SET_MODE, 9, flags=LineModeFlags.IS_OUTPUT), sent]
    assert sent == LineCommand(LineCommandKind.SET_MODE, 5, flags=LineModeFlags.IS_INPUT | LineModeFlags.PULL_UP)
    with pytest.raises(LineError, match=r"^pulse\(\) is not possible on analog output line 2$"):
        OutputLine(port, 2, analog=True).pulse()


def test_signal_block_shape_checks() -> None:
    timestamps = np.arange(4, dtype=np.int64)
    block = SignalBlock(timestamps, np.zeros((4, 2), np.int16), (0, 1), first_index=7)
    assert block.length == 4 and block.first_index == 7
    assert SignalBlock(timestamps[:0], np.zeros((0, 1)), (3,)).length == 0
    with pytest.raises(LineError, match="^SignalBlock needs samples x channels data matching 4 timestamps$"):
        SignalBlock(timestamps, np.zeros(4), (0,))
    with pytest.raises(LineError, match="matching 4 timestamps"):
        SignalBlock(timestamps, np.zeros((3, 1)), (0,))
    with pytest.raises(LineError, match="matching 4 timestamps"):
        SignalBlock(timestamps, np.zeros((4, 1, 1)), (0,))
    with pytest.raises(LineError, match="^SignalBlock has 2 channels but 3 line ids$"):
        SignalBlock(timestamps, np.zeros((4, 2)), (0, 1, 2))
    assert SignalBlock(np.arange(2), np.zeros((2, 3)), (0, 1, 2)).length == 2  # 2 samples, 3 channels
