"""Firmata byte level: the resynchronizing parser, encoders and decoders, and firmata URL parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwlink.drivers import firmata_protocol as fp
from hwlink.drivers.firmata import FirmataOptions, lines_from_capabilities
from hwlink.errors import ConfigError
from hwlink.testing.firmata_board import uno_capabilities

VALID_STREAM = (
    bytes((fp.REPORT_VERSION, 2, 5))
    + fp.firmware_report(2, 5, "StandardFirmata.ino")
    + fp.digital_message(0, 0b10000100)
    + fp.analog_message(3, 1023)
    + fp.sysex(fp.STRING_DATA, fp.encode_string("hi"))
)
EXPECTED = [
    (fp.REPORT_VERSION, bytes((2, 5))),
    (fp.START_SYSEX, bytes((fp.REPORT_FIRMWARE, 2, 5)) + fp.encode_string("StandardFirmata.ino")),
    (0x90, bytes((0x04, 0x01))),
    (0xE3, bytes((0x7F, 0x07))),
    (fp.START_SYSEX, bytes((fp.STRING_DATA,)) + fp.encode_string("hi")),
]


def test_parser_reads_a_stream_in_one_chunk_and_byte_by_byte() -> None:
    assert fp.FirmataParser().feed(VALID_STREAM) == EXPECTED
    parser = fp.FirmataParser()
    messages = [message for byte in VALID_STREAM for message in parser.feed(bytes((byte,)))]
    assert messages == EXPECTED
    assert parser.discarded == 0


def test_parser_drops_stray_bytes_truncated_messages_and_unknown_commands() -> None:
    parser = fp.FirmataParser()
    garbage = bytes((0x12, 0x7F))  # stray data bytes
    truncated = bytes((0x91, 0x05))  # a digital message cut short by the next command byte
    unknown = bytes((0xF1, 0x33))  # an undefined command byte, then its orphaned data byte
    cut_sysex = bytes((fp.START_SYSEX, fp.REPORT_FIRMWARE, 1))  # sysex cut short by a command byte
    messages = parser.feed(garbage + truncated + unknown + cut_sysex + fp.digital_message(1, 0x20))
    assert messages == [(0x91, bytes((0x20, 0x00)))]
    assert parser.discarded == 2 + 2 + 2 + 3


def test_parser_direction_matters_for_report_version() -> None:
    assert fp.FirmataParser(from_board=False).feed(bytes((0xF9, 0xF9))) == [(0xF9, b""), (0xF9, b"")]
    assert fp.FirmataParser(from_board=True).feed(bytes((0xF9, 2, 4))) == [(0xF9, bytes((2, 4)))]


def test_parser_drops_overlong_sysex() -> None:
    parser = fp.FirmataParser()
    assert parser.feed(bytes((fp.START_SYSEX,)) + bytes(fp.MAX_SYSEX_BYTES + 10) + bytes((fp.END_SYSEX,))) == []
    assert parser.feed(fp.analog_message(0, 5)) == [(0xE0, bytes((5, 0)))]


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=64), cuts=st.lists(st.integers(0, len(VALID_STREAM)), max_size=6))
def test_parser_recovers_after_any_garbage(garbage: bytes, cuts: list[int]) -> None:
    """Whatever came before, a complete valid stream is parsed in full, however the transport splits it."""
    parser = fp.FirmataParser()
    data = garbage + VALID_STREAM
    points = sorted({0, len(data), *(len(garbage) + cut for cut in cuts)})
    messages = [m for start, end in zip(points, points[1:]) for m in parser.feed(data[start:end])]
    assert messages[-len(EXPECTED):] == EXPECTED


def test_analog_write_uses_extended_analog_beyond_the_analog_message() -> None:
    assert fp.analog_write(3, 128) == bytes((0xE3, 0x00, 0x01))
    assert fp.analog_write(20, 5) == bytes((0xF0, fp.EXTENDED_ANALOG, 20, 5, 0xF7))
    assert fp.analog_write(9, 1 << 14) == bytes((0xF0, fp.EXTENDED_ANALOG, 9, 0x00, 0x00, 0x01, 0xF7))
    assert fp.join7(fp.split7(123_456_789)) == 123_456_789


def test_encoders_match_the_protocol_bytes() -> None:
    assert fp.set_pin_mode(13, fp.PinMode.OUTPUT) == bytes((0xF4, 13, 1))
    assert fp.set_digital_pin_value(13, 1) == bytes((0xF5, 13, 1))
    assert fp.digital_message(1, 0b1010_0000) == bytes((0x91, 0x20, 0x01))
    assert fp.report_digital(2, True) == bytes((0xD2, 1))
    assert fp.report_analog(5, False) == bytes((0xC5, 0))
    assert fp.sampling_interval(19) == bytes((0xF0, 0x7A, 0x13, 0x00, 0xF7))
    assert fp.REQUEST_FIRMWARE == bytes((0xF0, 0x79, 0xF7))


def test_capabilities_round_trip_and_become_lines() -> None:
    report = fp.encode_capabilities(uno_capabilities(has_pullup=False))
    (command, data), = fp.FirmataParser().feed(report)
    capabilities = fp.decode_capabilities(data)
    assert capabilities == uno_capabilities(has_pullup=False)
    mapping = fp.decode_analog_mapping(bytes((fp.ANALOG_MAPPING_RESPONSE,)) + bytes([0x7F] * 14) + bytes(range(6)))
    assert mapping == {14 + n: n for n in range(6)}
    lines = {line.line_id: line for line in lines_from_capabilities(capabilities, mapping)}
    assert lines[0].modes() == [] and lines[1].modes() == []
    assert lines[3].analog_out_max == 255 and lines[3].analog_out_kind == "pwm" and not lines[3].pullup
    assert lines[13].digital_out and lines[13].digital_in and lines[13].analog_out_max == 0
    assert lines[14].name == "A0" and lines[14].aliases == ("D14", "14") and lines[14].analog_in_bits == 10
    with pytest.raises(ValueError):
        fp.decode_capabilities(bytes((fp.CAPABILITY_RESPONSE, 0, 1, 1)))


def test_firmware_report_decodes() -> None:
    (_, data), = fp.FirmataParser().feed(fp.firmware_report(1, 2, "FirmataExpress.ino"))
    assert fp.decode_firmware(data) == fp.Firmware(1, 2, "FirmataExpress.ino")


@pytest.mark.parametrize(("url", "port_url", "baud"), [
    ("firmata:///dev/ttyACM0", "/dev/ttyACM0", 57600),
    ("firmata://COM3?baud=115200", "COM3", 115200),
    ("firmata+socket://127.0.0.1:5000", "socket://127.0.0.1:5000", 57600),
    ("firmata+spy:///dev/ttyUSB0?file=trace.txt&baud=9600", "spy:///dev/ttyUSB0?file=trace.txt", 9600),
])
def test_url_forms(url: str, port_url: str, baud: int) -> None:
    options = FirmataOptions.from_url(url)
    assert (options.port_url, options.baud) == (port_url, baud)


def test_url_options_and_errors() -> None:
    options = FirmataOptions.from_url("firmata:///dev/ttyACM0?timeout=500ms&analog_interval=5ms")
    assert (options.timeout_usec, options.analog_interval_usec) == (500_000, 5_000)
    for bad, message in [("firmata://", "names no port"), ("firmata:///dev/x?speed=3", "unknown firmata option"),
                         ("firmata:///dev/x?baud=fast", "baud"), ("firmata:///dev/x?analog_interval=1500us",
                                                                   "whole milliseconds")]:
        with pytest.raises(ConfigError, match=message):
            FirmataOptions.from_url(bad)
