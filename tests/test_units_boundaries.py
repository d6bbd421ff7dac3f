"""Duration and frequency parsing at its edges: every unit, signs, exponents, zero, rounding, junk."""

from __future__ import annotations

import pytest

from hwlink.errors import ConfigError
from hwlink.units import format_usec, parse_duration_usec, parse_frequency_hz


@pytest.mark.parametrize("text, usec", [
    ("1us", 1), ("1µs", 1), ("1usec", 1), ("1ms", 1_000), ("1msec", 1_000), ("1s", 1_000_000),
    ("1sec", 1_000_000), ("1min", 60_000_000), ("1h", 3_600_000_000),
    ("0s", 0), ("0us", 0), (" 2.5 s ", 2_500_000), (".5ms", 500), ("5.ms", 5_000), ("1e3us", 1_000),
    ("1E-3s", 1_000), ("+3ms", 3_000), ("2.4999us", 2), ("2.5001us", 3), ("0.0000004s", 0),
    ("100h", 360_000_000_000),
])
def test_durations_in_every_unit(text: str, usec: int) -> None:
    result = parse_duration_usec(text)
    assert result == usec and type(result) is int


@pytest.mark.parametrize("text, message", [
    ("50", "needs a unit"), ("", "bad duration"), ("ms", "bad duration"), ("1 m s", "bad duration"),
    ("1ks", "bad duration unit 'ks'"), ("1MS", "bad duration unit 'MS'"), ("1Ms", "bad duration unit"),
    ("1e3", "needs a unit"), ("--1ms", "bad duration"), ("1.2.3ms", "bad duration"), ("-1ms", "must not be negative"),
    ("-0.0006ms", "must not be negative"), ("inf s", "bad duration"), ("nan ms", "bad duration"),
])
def test_bad_durations_say_why(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_duration_usec(text)


@pytest.mark.parametrize("value", [50, 0, 2.5, -1])
def test_bare_numbers_need_a_unit(value: float) -> None:
    with pytest.raises(ConfigError, match="needs a unit"):
        parse_duration_usec(value)


def test_booleans_are_parsed_as_text_and_refused() -> None:
    with pytest.raises(ConfigError, match="bad duration"):
        parse_duration_usec(True)  # type: ignore[arg-type]


def test_negative_durations_only_when_allowed() -> None:
    assert parse_duration_usec("-1ms", allow_negative=True) == -1_000
    assert parse_duration_usec("-0.0004ms", allow_negative=False) == 0  # rounds to zero: not negative
    assert parse_duration_usec("-0s") == 0


@pytest.mark.parametrize("text, hz", [
    ("30Hz", 30.0), ("30hz", 30.0), ("30HZ", 30.0), ("1kHz", 1e3), ("1KHZ", 1e3), ("2MHz", 2e6),
    ("30", 30.0), (" 0.5 Hz ", 0.5), ("1e-3", 1e-3), ("1e3kHz", 1e6), (".25kHz", 250.0),
])
def test_frequencies(text: str, hz: float) -> None:
    assert parse_frequency_hz(text) == hz


@pytest.mark.parametrize("text, message", [
    ("0Hz", "must be positive"), ("0", "must be positive"), ("-1Hz", "must be positive"), ("0.0kHz", "must be positive"),
    ("1GHz", "bad frequency unit 'GHz'"), ("1 s", "bad frequency unit 's'"), ("", "bad frequency"),
    ("fast", "bad frequency"), ("1/s", "bad frequency"), ("2mhz", "ambiguous frequency unit"),
])
def test_bad_frequencies_say_why(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_frequency_hz(text)


@pytest.mark.parametrize("usec, text", [
    (0, "0 µs"), (999, "999 µs"), (999.4, "999 µs"), (1_000, "1.000 ms"), (-1_000, "-1.000 ms"), (-999, "-999 µs"),
    (999_999, "999.999 ms"), (1_000_000, "1.000 s"), (-1_000_000, "-1.000 s"), (1_500, "1.500 ms"),
    (3_600_000_000, "3600.000 s"),
])
def test_format_usec_switches_units_exactly_at_each_power(usec: float, text: str) -> None:
    assert format_usec(usec) == text
