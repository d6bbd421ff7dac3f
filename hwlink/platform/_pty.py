"""Pseudo-terminals for the software Firmata board: POSIX only (Windows has none; the board serves TCP there)."""

from __future__ import annotations

import os

from hwlink.platform._switches import POSIX


def has_pty() -> bool:
    return POSIX and hasattr(os, "openpty")


def open_raw_pty() -> tuple[int, int, str]:
    """A new pty in raw mode (no echo, no line discipline: a UART): (master fd, slave fd, slave path).

    The master is non-blocking: a full pty buffer then drops bytes, as a UART nobody reads would.
    """
    if not has_pty():
        raise OSError("a pty needs a POSIX system; serve the board over TCP instead (start_tcp())")
    import tty  # noqa: PLC0415 - POSIX only

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)
