"""Drivers, opened by URL. The scheme picks the driver; the rest of the URL is the driver's business.

Drivers register by scheme with a lazy import path, so importing hwlink never imports pyserial- or
nidaqmx-specific code that is not used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from hwlink.clock import MasterClock
from hwlink.drivers.base import Board, ReadingStream, Subscription
from hwlink.drivers.lineinfo import LineInfo, LineMode
from hwlink.drivers.scheduler import PulseTrain
from hwlink.errors import ConfigError

__all__ = [
    "Board", "LineInfo", "LineMode", "PulseTrain", "ReadingStream", "Subscription",
    "BoardDescription", "discover_boards", "known_schemes", "open_board", "register_scheme",
]

_SCHEMES: dict[str, str] = {
    "sim": "hwlink.drivers.sim:SimBoard",
    "firmata": "hwlink.drivers.firmata:FirmataBoard",
    "nidaq": "hwlink.drivers.nidaq:NidaqBoard",
    "lsl": "hwlink.drivers.lsl:LslBoard",
}


@dataclass(frozen=True)
class BoardDescription:
    """A board found on this machine, with the URL that opens it."""

    url: str
    description: str
    details: dict[str, str] = field(default_factory=dict)


# Discovery functions 'module:function' returning list[BoardDescription]; a driver whose optional
# dependency is missing returns nothing rather than failing the listing.
_DISCOVERY: dict[str, str] = {
    "sim": "hwlink.drivers.sim:discover",
    "firmata": "hwlink.drivers.firmata:discover",
    "nidaq": "hwlink.drivers.nidaq:discover",
    "lsl": "hwlink.drivers.lsl:discover",
}


def discover_boards(schemes: list[str] | None = None) -> list[BoardDescription]:
    found: list[BoardDescription] = []
    for scheme, target in _DISCOVERY.items():
        if schemes is None or scheme in schemes:
            module_name, _, function_name = target.partition(":")
            found.extend(getattr(importlib.import_module(module_name), function_name)())
    return found


def register_scheme(scheme: str, target: str) -> None:
    """Make ``scheme://`` open the board class at ``target`` ('module:Class')."""
    _SCHEMES[scheme.lower()] = target


def known_schemes() -> list[str]:
    return sorted(_SCHEMES)


def _board_class(url: str) -> type[Board]:
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ConfigError(f"bad board URL {url!r}: expected SCHEME://..., known schemes: {', '.join(known_schemes())}")
    scheme = scheme.lower()
    # 'firmata+socket' falls back to the 'firmata' driver, which hands the rest to pyserial.
    target = _SCHEMES.get(scheme) or _SCHEMES.get(scheme.split("+", 1)[0])
    if target is None:
        raise ConfigError(f"unknown board scheme {scheme!r} in {url!r}; known schemes: {', '.join(known_schemes())}")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def open_board(url: str, *, clock: MasterClock | None = None) -> Board:
    """Open the board a URL names, e.g. ``sim://?loopback=13:2``, ``firmata:///dev/ttyACM0``, ``nidaq://Dev1``."""
    return _board_class(url).open(url, clock=clock)
