"""The line vocabulary every part of hwlink speaks.

Names and numeric values follow Syntalos' ``syntalos_mlink`` (LineCommand, LineReading, ControlCommand and
the HwOutputLine/HwInputLine helpers) so scripts written for Syntalos run unchanged. Where Syntalos'
binding is awkward (flags that cannot be combined with ``|``, silent wrap-around of line ids) hwlink is
strict instead. Wire encodings are Syntalos' byte layouts (little-endian, no padding).
"""

from __future__ import annotations

import datetime
import enum
import struct
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hwlink.errors import LineError

U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF


class _SyntalosEnum:
    """``str()`` and formatting give ``Class.MEMBER``, as Syntalos' Python enums print; values stay ints."""

    def __str__(self) -> str:
        return enum.Enum.__str__(self)  # type: ignore[arg-type]

    def __format__(self, spec: str) -> str:
        if spec and spec[-1] in "bcdoxXn":  # an integer format asks for the value
            return format(int(self), spec)  # type: ignore[call-overload]
        return format(str(self), spec)


class LineCommandKind(_SyntalosEnum, enum.IntEnum):
    UNKNOWN = 0
    SET_MODE = 1
    WRITE_DIGITAL = 2
    WRITE_ANALOG = 3
    WRITE_DIGITAL_PULSE = 4
    WRITE_ANALOG_PULSE = 5
    DEVICE_SPECIFIC = 6


class LineModeFlags(_SyntalosEnum, enum.IntFlag):
    """Mode bits of SET_MODE. ``ANALOG`` is an hwlink extension (Syntalos has no analog flag): with
    IS_INPUT it asks for analog sampling, with IS_OUTPUT for PWM/DAC output, on lines that can do both."""

    NONE = 0
    IS_INPUT = 1
    IS_OUTPUT = 2
    PULL_UP = 4
    ANALOG = 8


class ControlCommandKind(_SyntalosEnum, enum.IntEnum):
    UNKNOWN = 0
    START = 1
    PAUSE = 2
    STOP = 3
    STEP = 4
    CUSTOM = 5


def _check_range(name: str, value: int, low: int, high: int) -> int:
    number = int(value)
    if number != value or not low <= number <= high:
        raise LineError(f"{name} {value!r} out of range {low}..{high}")
    return number


def _as_flags(flags: int | LineModeFlags) -> LineModeFlags:
    number = int(flags)
    if number < 0 or number & ~int(sum(LineModeFlags)):
        raise LineError(f"unknown line mode flag bits in {number:#x}")
    return LineModeFlags(number)


@dataclass(slots=True)
class LineCommand:
    """An instruction for one hardware line; ``duration_usec`` matters for the *_PULSE kinds only."""

    kind: LineCommandKind = LineCommandKind.UNKNOWN
    line_id: int = 0
    value: int = 0
    duration_usec: int = 0
    flags: LineModeFlags = LineModeFlags.NONE
    extra: bytes = b""

    def __post_init__(self) -> None:
        self.kind = LineCommandKind(int(self.kind))
        self.line_id = _check_range("line_id", self.line_id, 0, U16_MAX)
        self.value = _check_range("value", int(self.value), 0, U32_MAX)
        self.duration_usec = int(self.duration_usec)
        self.flags = _as_flags(self.flags)
        self.extra = bytes(self.extra)

    _FIXED = struct.Struct("<iHIqIQ")

    def to_bytes(self) -> bytes:
        """Syntalos wire layout: kind i32, lineId u16, value u32, duration i64 µs, flags u32, extra (u64 len)."""
        head = self._FIXED.pack(
            int(self.kind), self.line_id, self.value, self.duration_usec, int(self.flags), len(self.extra)
        )
        return head + self.extra

    @classmethod
    def from_bytes(cls, data: bytes) -> LineCommand:
        if len(data) < cls._FIXED.size:
            raise LineError(f"LineCommand needs {cls._FIXED.size} bytes, got {len(data)}")
        kind, line_id, value, duration, flags, extra_len = cls._FIXED.unpack_from(data)
        extra = bytes(data[cls._FIXED.size : cls._FIXED.size + extra_len])
        if len(extra) != extra_len:
            raise LineError(f"LineCommand extra payload truncated ({len(extra)} of {extra_len} bytes)")
        return cls(LineCommandKind(kind), line_id, value, duration, LineModeFlags(flags), extra)


def new_line_command(kind: LineCommandKind | int, line_id: int, value: int = 0) -> LineCommand:
    """Factory with Syntalos' signature."""
    return LineCommand(LineCommandKind(int(kind)), line_id, value)


@dataclass(slots=True)
class LineReading:
    """One timestamped observation of a line (typically an edge or an analog sample).

    ``time_usec`` is on the master clock, taken when the reading arrived on the host. ``device_time_usec`` is the
    device's own timestamp of the same observation where the device has a clock (else None); the clock
    synchronizer maps it onto the master clock.
    """

    line_id: int = 0
    value: int = 0
    time_usec: int = 0
    device_time_usec: int | None = None

    @property
    def time(self) -> datetime.timedelta:
        return datetime.timedelta(microseconds=self.time_usec)

    @time.setter
    def time(self, value: datetime.timedelta) -> None:
        self.time_usec = value // datetime.timedelta(microseconds=1)

    _WIRE = struct.Struct("<HIq")

    def to_bytes(self) -> bytes:
        """Syntalos wire layout: lineId u16, value u32, time i64 µs (the device time is not on the wire)."""
        return self._WIRE.pack(self.line_id, self.value, self.time_usec)

    @classmethod
    def from_bytes(cls, data: bytes) -> LineReading:
        line_id, value, time_usec = cls._WIRE.unpack_from(data)
        return cls(line_id, value, time_usec)


@dataclass(slots=True)
class ControlCommand:
    """Start/pause/stop a module; ``duration`` is in milliseconds, 0 = until told otherwise."""

    kind: ControlCommandKind = ControlCommandKind.UNKNOWN
    duration: int = 0
    command: str = field(default="")

    def __post_init__(self) -> None:
        self.kind = ControlCommandKind(int(self.kind))
        if int(self.duration) < 0:
            raise LineError(f"ControlCommand duration {self.duration!r} must not be negative")
        self.duration = int(self.duration)

    _HEAD = struct.Struct("<iQQ")

    def to_bytes(self) -> bytes:
        text = self.command.encode()
        return self._HEAD.pack(int(self.kind), self.duration, len(text)) + text

    @classmethod
    def from_bytes(cls, data: bytes) -> ControlCommand:
        kind, duration, length = cls._HEAD.unpack_from(data)
        text = bytes(data[cls._HEAD.size : cls._HEAD.size + length]).decode()
        return cls(ControlCommandKind(kind), duration, text)


@dataclass(slots=True)
class SignalBlock:
    """Samples of several lines taken on one sample clock: the bulk counterpart of LineReading.

    ``data`` is samples x channels in the device's native dtype; ``timestamps`` are master-clock µs (int64),
    one per sample row; ``first_index`` is the acquisition's sample index of row 0, so gaps are detectable.
    """

    timestamps: np.ndarray
    data: np.ndarray
    line_ids: tuple[int, ...]
    first_index: int = 0

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[0] != self.timestamps.shape[0]:
            raise LineError(f"SignalBlock needs samples x channels data matching {self.timestamps.shape[0]} timestamps")
        if self.data.shape[1] != len(self.line_ids):
            raise LineError(f"SignalBlock has {self.data.shape[1]} channels but {len(self.line_ids)} line ids")

    @property
    def length(self) -> int:
        return int(self.timestamps.shape[0])


class CommandPort(Protocol):
    """Anything that accepts LineCommands: a board, or a runtime output port."""

    def submit(self, command: LineCommand) -> object: ...


class OutputLine:
    """Convenience handle for one output line; each call builds, submits and returns a LineCommand."""

    def __init__(self, port: CommandPort, line_id: int, analog: bool = False) -> None:
        self._port = port
        self._line_id = _check_range("line_id", line_id, 0, U16_MAX)
        self._analog = bool(analog)

    @property
    def line_id(self) -> int:
        return self._line_id

    @property
    def analog(self) -> bool:
        return self._analog

    def _submit(self, command: LineCommand) -> LineCommand:
        self._port.submit(command)
        return command

    def send_mode(self) -> LineCommand:
        flags = LineModeFlags.IS_OUTPUT | (LineModeFlags.ANALOG if self._analog else LineModeFlags.NONE)
        return self._submit(LineCommand(LineCommandKind.SET_MODE, self._line_id, flags=flags))

    def _require(self, analog: bool, what: str) -> None:
        if self._analog != analog:
            kind = "analog" if self._analog else "digital"
            raise LineError(f"{what} is not possible on {kind} output line {self._line_id}")

    def set_value(self, value: bool) -> LineCommand:
        self._require(False, "set_value()")
        return self._submit(LineCommand(LineCommandKind.WRITE_DIGITAL, self._line_id, 1 if value else 0))

    def pulse(self, duration_usec: int = 2500) -> LineCommand:
        self._require(False, "pulse()")
        return self._submit(
            LineCommand(LineCommandKind.WRITE_DIGITAL_PULSE, self._line_id, 1, duration_usec=int(duration_usec))
        )

    def pulse_msec(self, duration_msec: float = 50) -> LineCommand:
        return self.pulse(round(duration_msec * 1000))

    def set_analog_value(self, value: int) -> LineCommand:
        self._require(True, "set_analog_value()")
        return self._submit(LineCommand(LineCommandKind.WRITE_ANALOG, self._line_id, int(value)))


class InputLine:
    """Handle for one input line. Readings do not come back through it: they arrive as LineReadings."""

    def __init__(self, port: CommandPort, line_id: int, pullup: bool = False) -> None:
        self._port = port
        self._line_id = _check_range("line_id", line_id, 0, U16_MAX)
        self._pullup = bool(pullup)

    @property
    def line_id(self) -> int:
        return self._line_id

    def send_mode(self) -> LineCommand:
        flags = LineModeFlags.IS_INPUT | (LineModeFlags.PULL_UP if self._pullup else LineModeFlags.NONE)
        command = LineCommand(LineCommandKind.SET_MODE, self._line_id, flags=flags)
        self._port.submit(command)
        return command


# Syntalos' Python names for the same helpers.
HwOutputLine = OutputLine
HwInputLine = InputLine
