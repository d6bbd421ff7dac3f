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
        raise ConfigError(f"bad duration unit {unit!r} in {text!r}: use us, ms, s, min or h")
    value = float(number) * _DURATION_UNITS_USEC[unit]
    if not math.isfinite(value) or abs(value) > MAX_DURATION_USEC:
        raise ConfigError(f"duration {text!r} is out of range (at most a year)")
    usec = round(value)
    if usec < 0 and not allow_negative:
        raise ConfigError(f"duration {text!r} must not be negative")
    return usec


_FREQ_UNITS_HZ = {"hz": 1.0, "khz": 1e3, "mhz": 1e6}


def parse_frequency_hz(text: str) -> float:
    """'1kHz' -> 1000.0; a bare number is taken as Hz."""
    match = _NUMBER_UNIT.match(str(text))
    if not match:
        raise ConfigError(f"bad frequency {text!r}: expected e.g. 30Hz, 1kHz")
    number, unit = match.groups()
    scale = 1.0 if unit == "" else _FREQ_UNITS_HZ.get(unit.lower())
    if scale is None:
        raise ConfigError(f"bad frequency unit {unit!r} in {text!r}: use Hz, kHz or MHz")
    hz = float(number) * scale
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
