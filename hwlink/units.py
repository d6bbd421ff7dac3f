"""Parsing of durations and frequencies as users type them on the command line and in files."""

from __future__ import annotations

import math
import re

from hwlink.errors import ConfigError

# Largest duration accepted anywhere (a year): beyond it int64 µs arithmetic downstream is no longer safe.
MAX_DURATION_USEC = 366 * 24 * 3_600_000_000
MAX_FREQUENCY_HZ = 1e9

_DURATION_UNITS_USEC = {
    "us": 1,
    "µs": 1,
    "usec": 1,
    "ms": 1_000,
    "msec": 1_000,
    "s": 1_000_000,
    "sec": 1_000_000,
    "min": 60_000_000,
    "h": 3_600_000_000,
}
_NUMBER_UNIT = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Zµ]*)\s*$")


def parse_duration_usec(text: str | int | float, *, allow_negative: bool = False) -> int:
    """'50ms' -> 50000. A unit is required for strings: a bare '50' is ambiguous and rejected."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise ConfigError(f"duration {text!r} needs a unit (us, ms, s, min, h)")
    match = _NUMBER_UNIT.match(str(text))
    if not match:
        raise ConfigError(f"bad duration {text!r}: expected a number with a unit, e.g. 50ms, 2.5s, 250us")
    number, unit = match.groups()
    if unit == "":
        raise ConfigError(f"duration {text!r} needs a unit (us, ms, s, min, h)")
    if unit not in _DURATION_UNITS_USEC:
        if unit.lower() in _DURATION_UNITS_USEC or unit.lower() == "µs":
            raise ConfigError(f"bad duration unit {unit!r} in {text!r}: units are case-sensitive "
                              f"(did you mean {unit.lower()!r}?)")
        raise ConfigError(f"bad duration unit {unit!r} in {text!r}: use us, ms, s, min or h")
    value = float(number) * _DURATION_UNITS_USEC[unit]
    if not math.isfinite(value) or abs(value) > MAX_DURATION_USEC:
        raise ConfigError(f"duration {text!r} is out of range (at most a year)")
    usec = round(value)
    if usec < 0 and not allow_negative:
        raise ConfigError(f"duration {text!r} must not be negative")
    return usec


# SI prefixes are case-sensitive: m is milli, M is mega (k/K both kilo, which has no capital twin).
_FREQ_PREFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "m": 1e-3}


def _frequency_scale(unit: str, text: str) -> float:
    if unit == "":
        return 1.0
    prefix, hz = unit[:-2], unit[-2:]
    if hz.lower() != "hz" or prefix not in _FREQ_PREFIXES:
        raise ConfigError(f"bad frequency unit {unit!r} in {text!r}: use Hz, kHz, MHz or mHz (millihertz)")
    if prefix == "m" and unit != "mHz":
        raise ConfigError(f"ambiguous frequency unit {unit!r} in {text!r}: write mHz for millihertz or MHz for "
                          "megahertz (SI prefixes are case-sensitive)")
    return _FREQ_PREFIXES[prefix]


def parse_frequency_hz(text: str) -> float:
    """'1kHz' -> 1000.0, '500mHz' -> 0.5, '2MHz' -> 2e6; a bare number is taken as Hz.

    Prefixes are case-sensitive as in SI (m milli, M mega); ``mhz``, which could be either, is refused.
    """
    match = _NUMBER_UNIT.match(str(text))
    if not match:
        raise ConfigError(f"bad frequency {text!r}: expected e.g. 30Hz, 1kHz")
    number, unit = match.groups()
    hz = float(number) * _frequency_scale(unit, str(text))
    if not math.isfinite(hz) or hz > MAX_FREQUENCY_HZ:
        raise ConfigError(f"frequency {text!r} is out of range (at most 1 GHz)")
    if hz <= 0:
        raise ConfigError(f"frequency {text!r} must be positive")
    return hz


def format_usec(usec: float) -> str:
    """Human-readable duration with a unit that keeps 3-4 significant digits."""
    magnitude = abs(usec)
    if magnitude >= 1_000_000:
        return f"{usec / 1_000_000:.3f} s"
    if magnitude >= 1_000:
        return f"{usec / 1_000:.3f} ms"
    return f"{usec:.0f} µs"
