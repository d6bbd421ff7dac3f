"""What a recording says about where it came from: the boards, the host and the master clock's start.

Both ``hwlink record`` and ``hwlink run`` write these into their collection's attributes, so a collection found
on a disk years later still says which hwlink wrote it, from which boards (URL, firmware), on which host, and
when its time zero was, as wall-clock time and as the ``CLOCK_MONOTONIC`` value every timestamp counts from.
"""

from __future__ import annotations

import datetime
import platform
import socket
import time
from typing import Any

from hwlink import __version__
from hwlink.clock import MasterClock
from hwlink.drivers.base import Board
from hwlink.platform import CLOCK_NAME, clock_ns


def board_attributes(board: Board) -> dict[str, Any]:
    """URL, driver, firmware (where the board reports one) and whether it has a clock of its own."""
    firmware = getattr(board, "firmware", None)
    product = getattr(board, "product_type", None)
    info: dict[str, Any] = {"url": board.url, "driver": board.scheme or type(board).__name__,
                            "firmware": str(firmware) if firmware is not None else (f"NI {product}" if product else ""),
                            "device_clock": bool(board.has_device_clock)}
    opened = getattr(board, "opened_usec", None)
    if opened is not None:  # simulated boards: their model time counts from here
        info["opened_usec"] = int(opened)
    return info


def clock_start_attributes(clock: MasterClock) -> dict[str, Any]:
    """The master clock's zero as UTC wall-clock µs (and ISO text) and as the monotonic ns it counts from.

    The wall-clock value is read next to the monotonic one and carried back to the clock's start, so it is as
    good as the system clock was at that moment (NTP-disciplined on most lab machines).
    """
    monotonic_now = clock_ns()
    wall_now = time.time_ns()
    start_wall_ns = wall_now - (monotonic_now - clock.start_ns)
    utc = datetime.datetime.fromtimestamp(start_wall_ns / 1e9, tz=datetime.UTC)
    return {"clock_start_utc_usec": start_wall_ns // 1000, "clock_start_utc": utc.isoformat(timespec="microseconds"),
            "clock_start_monotonic_ns": int(clock.start_ns), "clock": CLOCK_NAME}


def host_attributes() -> dict[str, Any]:
    """hwlink's version, the host name and the operating system."""
    return {"hwlink_version": __version__, "host": socket.gethostname(),
            "machine_node": f"{socket.gethostname()} [{platform.system()} {platform.release()}]",
            "python": platform.python_version()}


UNO_REFERENCE_VOLTS = 5.0  # an Uno's default analog reference (AREF = VCC); other references change it


def analog_units(board: Board, line_id: int) -> dict[str, Any]:
    """What an analog input's values mean, as attributes: ``units`` and how to get volts from the values.

    Devices that know volts (NI-DAQmx: the AI range) give ``units = "V"``, with ``volts_offset`` and
    ``volts_per_code`` for the codes LineReadings carry; ADC boards (sim://, Firmata) give ``units = "code"``
    with ``adc_bits``, ``reference_volts`` and ``volts_per_code`` (volts = code * volts_per_code). Where the board
    samples on a fixed interval, ``sample_rate_hz`` too.
    """
    info = board.line(line_id)
    scale = getattr(board, "analog_input_scale", None)
    result: dict[str, Any]
    if scale is not None:
        offset, per_code = scale(line_id)
        result = {"units": "V", "volts_offset": float(offset), "volts_per_code": float(per_code)}
        rate = getattr(board, "analog_input_rate_hz", None)
    else:
        bits = info.analog_in_bits
        result = {"units": "code", "adc_bits": bits, "reference_volts": UNO_REFERENCE_VOLTS,
                  "volts_per_code": UNO_REFERENCE_VOLTS / (2 ** bits - 1) if bits else 0.0}
        interval = getattr(board, "analog_interval_usec", None)
        if interval is None:
            interval = getattr(getattr(board, "config", None), "analog_interval_usec", None)
        rate = 1e6 / interval if interval else None
    if rate:
        result["sample_rate_hz"] = float(rate)
    return result


def reading_to_volts(board: Board) -> Any:
    """A function (line_id, code) -> volts for lines of a board that knows volts, else None."""
    scale = getattr(board, "analog_input_scale", None)
    if scale is None:
        return None
    cache: dict[int, tuple[float, float]] = {}

    def convert(line_id: int, code: int) -> float:
        if line_id not in cache:
            cache[line_id] = scale(line_id)
        offset, per_code = cache[line_id]
        return offset + code * per_code

    return convert
