"""Firmata on the byte level: message encoders and an incremental parser, shared by host and device side.

Firmata is MIDI-framed: a byte with bit 7 set starts a message, data bytes are 7-bit. The parser is a small
state machine fed whatever chunks the transport delivers; it resynchronizes on the next command byte, so stray
data bytes, truncated messages, unknown commands and unknown sysex all cost only themselves. The driver
(``hwlink.drivers.firmata``) and the software test board (``hwlink.testing.firmata_board``) both use it, with
the one direction-dependent difference (REPORT_VERSION has two data bytes from a board, none to it).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

# ----- command bytes (high nibble carries the channel/port for the first five) -----------------------------
DIGITAL_MESSAGE = 0x90
ANALOG_MESSAGE = 0xE0
REPORT_ANALOG = 0xC0
REPORT_DIGITAL = 0xD0
SET_PIN_MODE = 0xF4
SET_DIGITAL_PIN_VALUE = 0xF5
REPORT_VERSION = 0xF9
SYSTEM_RESET = 0xFF
START_SYSEX = 0xF0
END_SYSEX = 0xF7

# ----- sysex ids -------------------------------------------------------------------------------------------
ARE_YOU_THERE = 0x51  # FirmataExpress
I_AM_HERE = 0x52  # FirmataExpress
ANALOG_MAPPING_QUERY = 0x69
ANALOG_MAPPING_RESPONSE = 0x6A
CAPABILITY_QUERY = 0x6B
CAPABILITY_RESPONSE = 0x6C
PIN_STATE_QUERY = 0x6D
PIN_STATE_RESPONSE = 0x6E
EXTENDED_ANALOG = 0x6F
STRING_DATA = 0x71
REPORT_FIRMWARE = 0x79
SAMPLING_INTERVAL = 0x7A

NO_ANALOG_CHANNEL = 0x7F
MAX_SYSEX_BYTES = 4096  # longer sysex is garbage (the longest real reply, a Mega's capability report, is < 1 kB)


class PinMode(enum.IntEnum):
    """Firmata pin modes up to 0x0B; the numbering above that differs between Firmata and FirmataExpress."""

    INPUT = 0x00
    OUTPUT = 0x01
    ANALOG = 0x02
    PWM = 0x03
    SERVO = 0x04
    SHIFT = 0x05
    I2C = 0x06
    ONEWIRE = 0x07
    STEPPER = 0x08
    ENCODER = 0x09
    SERIAL = 0x0A
    PULLUP = 0x0B


def _data_length(command: int, from_board: bool) -> int | None:
    """Data bytes following a (non-sysex) command byte; None for bytes that start no known message."""
    high = command & 0xF0
    if high in (DIGITAL_MESSAGE, ANALOG_MESSAGE):
        return 2
    if high in (REPORT_ANALOG, REPORT_DIGITAL):
        return 1
    if command in (SET_PIN_MODE, SET_DIGITAL_PIN_VALUE):
        return 2
    if command == REPORT_VERSION:
        return 2 if from_board else 0
    if command == SYSTEM_RESET:
        return 0
    return None


class FirmataParser:
    """Incremental parser: ``feed(chunk)`` returns the complete messages it finished, as (command, data).

    ``command`` is the full command byte (e.g. 0x92 for a digital message of port 2) and ``data`` its data bytes;
    for sysex, command is START_SYSEX and data is the sysex id followed by the payload. ``discarded`` counts bytes
    that belonged to no complete message.
    """

    __slots__ = ("_from_board", "_command", "_needed", "_buffer", "_in_sysex", "discarded")

    def __init__(self, from_board: bool = True) -> None:
        self._from_board = from_board
        self._command = 0
        self._needed = -1  # -1: waiting for a command byte
        self._buffer = bytearray()
        self._in_sysex = False
        self.discarded = 0

    def feed(self, chunk: bytes | bytearray) -> list[tuple[int, bytes]]:
        messages: list[tuple[int, bytes]] = []
        buffer = self._buffer
        for byte in chunk:
            if byte & 0x80:
                if self._in_sysex and byte == END_SYSEX:
                    self._in_sysex = False
                    self._needed = -1
                    if buffer:
                        messages.append((START_SYSEX, bytes(buffer)))
                    else:
                        self.discarded += 2
                    buffer.clear()
                    continue
                if self._needed >= 0 or self._in_sysex:  # a message was cut short: drop it, resynchronize here
                    self.discarded += len(buffer) + 1
                    buffer.clear()
                    self._in_sysex = False
                    self._needed = -1
                if byte == START_SYSEX:
                    self._in_sysex = True
                    continue
                length = _data_length(byte, self._from_board)
                if length is None:
                    self.discarded += 1
                    continue
                if length == 0:
                    messages.append((byte, b""))
                    continue
                self._command = byte
                self._needed = length
                continue
            if self._in_sysex:
                if len(buffer) >= MAX_SYSEX_BYTES:
                    self.discarded += len(buffer) + 1
                    buffer.clear()
                    self._in_sysex = False
                    continue
                buffer.append(byte)
            elif self._needed > 0:
                buffer.append(byte)
                if len(buffer) == self._needed:
                    messages.append((self._command, bytes(buffer)))
                    buffer.clear()
                    self._needed = -1
            else:
                self.discarded += 1  # stray data byte
        return messages


# ----- encoders --------------------------------------------------------------------------------------------
def sysex(command: int, payload: Iterable[int] = ()) -> bytes:
    return bytes((START_SYSEX, command, *payload, END_SYSEX))


def split14(value: int) -> tuple[int, int]:
    return value & 0x7F, (value >> 7) & 0x7F


def split7(value: int) -> bytes:
    """A non-negative integer as 7-bit groups, LSB first (at least one group)."""
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(value & 0x7F)
        value >>= 7
    return bytes(groups)


def join7(groups: bytes | Iterable[int]) -> int:
    value = 0
    for shift, group in enumerate(groups):
        value |= (group & 0x7F) << (7 * shift)
    return value


def set_pin_mode(pin: int, mode: int) -> bytes:
    return bytes((SET_PIN_MODE, pin & 0x7F, mode & 0x7F))


def set_digital_pin_value(pin: int, level: int) -> bytes:
    return bytes((SET_DIGITAL_PIN_VALUE, pin & 0x7F, 1 if level else 0))


def digital_message(port: int, mask: int) -> bytes:
    return bytes((DIGITAL_MESSAGE | (port & 0x0F), *split14(mask & 0xFF)))


def analog_message(channel: int, value: int) -> bytes:
    return bytes((ANALOG_MESSAGE | (channel & 0x0F), *split14(value)))


def analog_write(pin: int, value: int) -> bytes:
    """PWM/analog write: the 3-byte analog message where it fits, else EXTENDED_ANALOG (pins > 15, > 14 bits)."""
    if pin <= 15 and value < (1 << 14):
        return analog_message(pin, value)
    return sysex(EXTENDED_ANALOG, bytes((pin & 0x7F,)) + split7(value))


def report_analog(channel: int, enable: bool) -> bytes:
    return bytes((REPORT_ANALOG | (channel & 0x0F), 1 if enable else 0))


def report_digital(port: int, enable: bool) -> bytes:
    return bytes((REPORT_DIGITAL | (port & 0x0F), 1 if enable else 0))


def sampling_interval(msec: int) -> bytes:
    return sysex(SAMPLING_INTERVAL, split14(msec))


def encode_string(text: str) -> bytes:
    """Firmata strings: each character as two 7-bit bytes (LSB, MSB)."""
    return b"".join(bytes(split14(ord(char))) for char in text)


def decode_string(data: bytes) -> str:
    return "".join(chr(data[i] | (data[i + 1] << 7)) for i in range(0, len(data) - 1, 2))


def firmware_report(major: int, minor: int, name: str) -> bytes:
    return sysex(REPORT_FIRMWARE, bytes((major, minor)) + encode_string(name))


REQUEST_VERSION = bytes((REPORT_VERSION,))
REQUEST_FIRMWARE = sysex(REPORT_FIRMWARE)
REQUEST_CAPABILITIES = sysex(CAPABILITY_QUERY)
REQUEST_ANALOG_MAPPING = sysex(ANALOG_MAPPING_QUERY)


# ----- decoders of sysex payloads (data = id + payload, as the parser returns it) --------------------------
@dataclass(frozen=True)
class Firmware:
    major: int
    minor: int
    name: str

    def __str__(self) -> str:
        return f"{self.name} {self.major}.{self.minor}"


def decode_firmware(data: bytes) -> Firmware:
    if len(data) < 3:
        raise ValueError("firmware report too short")
    return Firmware(data[1], data[2], decode_string(data[3:]))


def decode_capabilities(data: bytes) -> list[dict[int, int]]:
    """Per pin, {mode: resolution}; a pin without modes gets an empty dict."""
    pins: list[dict[int, int]] = []
    current: dict[int, int] = {}
    payload = data[1:]
    index = 0
    while index < len(payload):
        if payload[index] == 0x7F:
            pins.append(current)
            current = {}
            index += 1
        elif index + 1 < len(payload):
            current[payload[index]] = payload[index + 1]
            index += 2
        else:
            raise ValueError("capability report ends inside a mode/resolution pair")
    if current:
        raise ValueError("capability report ends without closing its last pin")
    return pins


def encode_capabilities(pins: list[dict[int, int]]) -> bytes:
    body = bytearray()
    for modes in pins:
        for mode, resolution in modes.items():
            body += bytes((mode, resolution))
        body.append(0x7F)
    return sysex(CAPABILITY_RESPONSE, body)


def decode_analog_mapping(data: bytes) -> dict[int, int]:
    """{pin: analog channel} for the pins that have one."""
    return {pin: channel for pin, channel in enumerate(data[1:]) if channel != NO_ANALOG_CHANNEL}
