"""Firmata byte level at its limits: the sysex size cap exactly, 7-bit/14-bit encodings at their edges."""

from __future__ import annotations

import pytest

from hwlink.drivers import firmata_protocol as fp


def sysex_of(total_data_bytes: int) -> bytes:
    """A sysex whose id plus payload is exactly ``total_data_bytes`` data bytes."""
    return bytes((fp.START_SYSEX, fp.STRING_DATA)) + bytes(total_data_bytes - 1) + bytes((fp.END_SYSEX,))


def test_sysex_of_exactly_max_bytes_is_kept() -> None:
    parser = fp.FirmataParser()
    messages = parser.feed(sysex_of(fp.MAX_SYSEX_BYTES))
    assert messages == [(fp.START_SYSEX, bytes((fp.STRING_DATA,)) + bytes(fp.MAX_SYSEX_BYTES - 1))]
    assert parser.discarded == 0


def test_sysex_one_byte_over_max_is_dropped_and_counted() -> None:
    """Bug caught: ``len(buffer) >= MAX_SYSEX_BYTES`` changed to ``>`` (a sysex of MAX+1 bytes accepted)."""
    parser = fp.FirmataParser()
    assert parser.feed(sysex_of(fp.MAX_SYSEX_BYTES + 1)) == []
    # the MAX kept bytes plus the one that overflowed, then END_SYSEX arrives outside any message
    assert parser.discarded == fp.MAX_SYSEX_BYTES + 1 + 1
    assert parser.feed(fp.analog_message(2, 300)) == [(0xE2, bytes((300 & 0x7F, 300 >> 7)))]


def test_sysex_limit_holds_across_chunks() -> None:
    parser = fp.FirmataParser()
    stream = sysex_of(fp.MAX_SYSEX_BYTES)
    messages = []
    for start in range(0, len(stream), 1000):
        messages += parser.feed(stream[start:start + 1000])
    assert [len(data) for _, data in messages] == [fp.MAX_SYSEX_BYTES]
    parser = fp.FirmataParser()
    stream = sysex_of(fp.MAX_SYSEX_BYTES + 1)
    assert parser.feed(stream[:-2]) == [] and parser.feed(stream[-2:]) == []
    assert parser.discarded == fp.MAX_SYSEX_BYTES + 2


def test_empty_sysex_is_discarded_as_two_bytes() -> None:
    parser = fp.FirmataParser()
    assert parser.feed(bytes((fp.START_SYSEX, fp.END_SYSEX))) == []
    assert parser.discarded == 2
    assert parser.feed(bytes((fp.START_SYSEX, 0x01, fp.END_SYSEX))) == [(fp.START_SYSEX, b"\x01")]
    assert parser.discarded == 2


def test_a_command_byte_inside_a_sysex_cuts_it_and_starts_its_own_message() -> None:
    parser = fp.FirmataParser()
    assert parser.feed(bytes((fp.START_SYSEX, 1, 2, 3)) + fp.digital_message(3, 0xFF)) == [(0x93, b"\x7f\x01")]
    assert parser.discarded == 4  # three kept data bytes and the START_SYSEX
    assert parser.feed(bytes((fp.START_SYSEX, 1, fp.START_SYSEX, 2, fp.END_SYSEX))) == [(fp.START_SYSEX, b"\x02")]
    assert parser.discarded == 4 + 2


def test_every_known_command_length() -> None:
    board = fp.FirmataParser(from_board=True)
    host = fp.FirmataParser(from_board=False)
    for command, length in [(0x90, 2), (0x9F, 2), (0xE0, 2), (0xEF, 2), (0xC0, 1), (0xCF, 1), (0xD0, 1), (0xDF, 1),
                            (fp.SET_PIN_MODE, 2), (fp.SET_DIGITAL_PIN_VALUE, 2)]:
        data = bytes(range(1, length + 1))
        assert board.feed(bytes((command,)) + data) == [(command, data)]
        assert host.feed(bytes((command,)) + data) == [(command, data)]
    assert board.feed(bytes((fp.SYSTEM_RESET,))) == [(fp.SYSTEM_RESET, b"")]
    for unknown in (0xA0, 0xB0, 0xF1, 0xF2, 0xF3, 0xF6, 0xF8, 0xFA, 0xFE, fp.END_SYSEX):
        before = board.discarded
        assert board.feed(bytes((unknown,))) == []
        assert board.discarded == before + 1
    assert board.discarded == host.discarded + 10


def test_seven_and_fourteen_bit_encodings_at_their_edges() -> None:
    assert fp.split14(0) == (0, 0) and fp.split14(0x3FFF) == (0x7F, 0x7F) and fp.split14(0x4000) == (0, 0)
    assert fp.split14(128) == (0, 1)
    assert fp.split7(0) == b"\x00" and fp.split7(127) == b"\x7f" and fp.split7(128) == b"\x00\x01"
    assert fp.split7(2**32 - 1) == bytes((0x7F, 0x7F, 0x7F, 0x7F, 0x0F))
    for value in (0, 1, 127, 128, 16383, 16384, 2**32 - 1, 2**40 + 5):
        assert fp.join7(fp.split7(value)) == value
    assert fp.join7(b"") == 0 and fp.join7(bytes((0xFF, 0x81))) == 0x7F | (1 << 7)


def test_analog_write_switches_to_extended_analog_exactly_past_each_limit() -> None:
    assert fp.analog_write(15, 0x3FFF) == bytes((0xEF, 0x7F, 0x7F))
    assert fp.analog_write(16, 0x3FFF) == fp.sysex(fp.EXTENDED_ANALOG, bytes((16, 0x7F, 0x7F)))
    assert fp.analog_write(15, 0x4000) == fp.sysex(fp.EXTENDED_ANALOG, bytes((15, 0, 0, 1)))
    assert fp.analog_write(0, 0) == bytes((0xE0, 0, 0))


def test_encoders_mask_their_fields() -> None:
    assert fp.set_pin_mode(0x85, 0x81) == bytes((fp.SET_PIN_MODE, 0x05, 0x01))
    assert fp.set_digital_pin_value(130, 5) == bytes((fp.SET_DIGITAL_PIN_VALUE, 2, 1))
    assert fp.set_digital_pin_value(3, 0) == bytes((fp.SET_DIGITAL_PIN_VALUE, 3, 0))
    assert fp.digital_message(17, 0x1FF) == bytes((0x91, 0x7F, 0x01))
    assert fp.analog_message(16, 1) == bytes((0xE0, 1, 0))
    assert fp.report_analog(18, True) == bytes((0xC2, 1)) and fp.report_analog(2, False) == bytes((0xC2, 0))
    assert fp.report_digital(17, True) == bytes((0xD1, 1)) and fp.report_digital(1, False) == bytes((0xD1, 0))
    assert fp.sampling_interval(0x3FFF) == bytes((fp.START_SYSEX, fp.SAMPLING_INTERVAL, 0x7F, 0x7F, fp.END_SYSEX))
    assert fp.sysex(0x10) == bytes((fp.START_SYSEX, 0x10, fp.END_SYSEX))
    assert fp.REQUEST_VERSION == b"\xf9"
    assert fp.REQUEST_FIRMWARE == bytes((0xF0, 0x79, 0xF7))
    assert fp.REQUEST_CAPABILITIES == bytes((0xF0, 0x6B, 0xF7))
    assert fp.REQUEST_ANALOG_MAPPING == bytes((0xF0, 0x69, 0xF7))


def test_strings_decode_pairs_and_ignore_an_odd_last_byte() -> None:
    assert fp.encode_string("") == b""
    assert fp.encode_string("\u3fff") == b"\x7f\x7f"
    assert fp.decode_string(fp.encode_string("aé\u3fff")) == "aé\u3fff"
    assert fp.decode_string(b"a\x00b") == "a"
    assert fp.decode_string(b"") == ""


def test_firmware_report_boundaries() -> None:
    assert fp.decode_firmware(bytes((fp.REPORT_FIRMWARE, 2, 5))) == fp.Firmware(2, 5, "")
    with pytest.raises(ValueError, match="too short"):
        fp.decode_firmware(bytes((fp.REPORT_FIRMWARE, 2)))
    assert str(fp.Firmware(2, 5, "StandardFirmata.ino")) == "StandardFirmata.ino 2.5"
    report = fp.firmware_report(127, 0, "x")
    assert report == bytes((0xF0, 0x79, 127, 0, ord("x"), 0, 0xF7))


def test_capability_report_edges() -> None:
    assert fp.decode_capabilities(bytes((fp.CAPABILITY_RESPONSE,))) == []
    assert fp.decode_capabilities(bytes((fp.CAPABILITY_RESPONSE, 0x7F, 0x7F))) == [{}, {}]
    assert fp.decode_capabilities(bytes((fp.CAPABILITY_RESPONSE, 0, 1, 3, 8, 0x7F))) == [{0: 1, 3: 8}]
    with pytest.raises(ValueError, match="inside a mode/resolution pair"):
        fp.decode_capabilities(bytes((fp.CAPABILITY_RESPONSE, 0, 1, 3)))
    with pytest.raises(ValueError, match="without closing its last pin"):
        fp.decode_capabilities(bytes((fp.CAPABILITY_RESPONSE, 0, 1)))
    pins = [{}, {0: 1, 1: 1}, {2: 10}]
    encoded = fp.encode_capabilities(pins)
    assert encoded == bytes((0xF0, 0x6C, 0x7F, 0, 1, 1, 1, 0x7F, 2, 10, 0x7F, 0xF7))
    assert fp.decode_capabilities(encoded[1:-1]) == pins
    assert fp.decode_analog_mapping(bytes((fp.ANALOG_MAPPING_RESPONSE, 0x7F, 0, 0x7F, 5))) == {1: 0, 3: 5}
    assert fp.decode_analog_mapping(bytes((fp.ANALOG_MAPPING_RESPONSE,))) == {}


def test_discard_counts_accumulate_across_every_kind_of_loss() -> None:
    parser = fp.FirmataParser()
    assert parser.feed(bytes((0x01, 0x02))) == [] and parser.discarded == 2  # stray data bytes
    assert parser.feed(bytes((fp.START_SYSEX, fp.END_SYSEX))) == [] and parser.discarded == 4  # empty sysex
    assert parser.feed(sysex_of(fp.MAX_SYSEX_BYTES + 1)) == []
    assert parser.discarded == 4 + fp.MAX_SYSEX_BYTES + 2  # overlong sysex, then its orphaned END_SYSEX
    assert parser.feed(bytes((0x90, 0x01, fp.START_SYSEX, fp.END_SYSEX))) == []
    assert parser.discarded == 4 + fp.MAX_SYSEX_BYTES + 2 + 2 + 2  # cut-short message, then an empty sysex


def test_decoder_errors_are_exact() -> None:
    with pytest.raises(ValueError, match="^firmware report too short$"):
        fp.decode_firmware(b"\x79")
    with pytest.raises(ValueError, match="^capability report ends inside a mode/resolution pair$"):
        fp.decode_capabilities(bytes((fp.CAPABILITY_RESPONSE, 1)))
    with pytest.raises(ValueError, match="^capability report ends without closing its last pin$"):
        fp.decode_capabilities(bytes((fp.CAPABILITY_RESPONSE, 1, 1)))
