"""The platform seam: every choice that depends on the operating system lives here, and only here.

Linux, Windows and macOS differ in the master clock's resolution, thread priorities, what select() accepts,
how a child process inherits a socket, how an orphaned child is ended, directory fsync, renames onto open
files, console signals and console encodings. The rest of hwlink calls the functions below and never tests
``sys.platform`` or calls an OS-specific API itself (tests/test_architecture.py checks that).

Every portable fallback can be forced on Linux with ``HWLINK_PORTABLE`` (``1`` for all seams, or a list such
as ``ipc,wakeup``; see ``SEAMS``), so the paths Windows and macOS take run in this project's CI as well.
``describe()`` reports what this process chose and obtained (``hwlink doctor``, the run log).
"""

from __future__ import annotations

import locale
import sys

from hwlink.platform import _threads
from hwlink.platform._clock import CLOCK_NAME, clock_ns, clock_resolution_sec
from hwlink.platform._console import setup_console, stop_signal_numbers, stop_signals
from hwlink.platform._files import copy_prefix, fsync_directory, replace_file
from hwlink.platform._pty import has_pty, open_raw_pty
from hwlink.platform._switches import ENV, SEAMS, SYSTEM, forced_seams, portable
from hwlink.platform._threads import (
    Priority,
    coarse_timeout,
    main_thread_runnable_sec,
    make_thread_timely,
    obtained,
    wait_granularity_ns,
)
from hwlink.platform._wake import Waker, loopback_pair
from hwlink.platform._workers import (
    WorkerStartError,
    connect_to_engine,
    inherits_sockets,
    lower_priority,
    orphan_protection,
    own_nice,
    restore_priority,
    set_nice,
    set_process_name,
    start_worker,
    try_send,
)

__all__ = [
    "CLOCK_NAME", "ENV", "SEAMS", "SYSTEM", "Priority", "Waker", "WorkerStartError", "clock_ns",
    "clock_resolution_sec", "coarse_timeout", "connect_to_engine", "copy_prefix", "describe", "forced_seams",
    "fsync_directory",
    "has_pty", "inherits_sockets", "loopback_pair", "lower_priority", "main_thread_runnable_sec", "make_thread_timely",
    "obtained",
    "open_raw_pty", "orphan_protection", "own_nice", "portable", "replace_file", "restore_priority", "set_nice",
    "set_process_name", "setup_console", "start_worker", "stop_signal_numbers", "stop_signals", "summary",
    "try_send", "wait_granularity_ns",
]


def describe(measure: bool = False) -> dict[str, str]:
    """What this process uses for each seam, and what its timing threads obtained (``measure``: also time the
    wait granularity, which takes a few ms, up to 0.2 s on Windows)."""
    import signal

    try:
        forced = ", ".join(sorted(forced_seams())) or "none"
    except ValueError as error:
        forced = f"all (invalid: {error})"
    report = {
        "system": f"{SYSTEM}, Python {sys.version.split()[0]}",
        "forced portable": forced,
        "clock": f"{CLOCK_NAME} (resolution {clock_resolution_sec() * 1e9:.0f} ns)",
        "wait granularity": _granularity(measure),
        "scheduler wake-up": "loopback socket pair" if _waker_portable() else "pipe",
        "worker channel": "inherited AF_UNIX socket" if inherits_sockets() else "loopback TCP + one-time token",
        "orphan protection": orphan_protection(),
        "directory fsync": "yes" if _dir_fsync() else "no (not needed or not available)",
        "replace": "retried on PermissionError" if _replace_retries() else "os.replace",
        "stop signals": ", ".join(signal.Signals(n).name for n in stop_signal_numbers())
                        + (", console close/logoff/shutdown" if SYSTEM == "Windows" and not portable("signals")
                           else ""),
        "console encoding": f"stdout {getattr(sys.stdout, 'encoding', '?')}, locale "
                            f"{locale.getpreferredencoding(False)}; files UTF-8",
    }
    for role, text in sorted(obtained().items()):
        report[f"thread {role}"] = text
    return report


def summary() -> str:
    """``describe()`` on one line, for the run log."""
    return "platform: " + "; ".join(f"{key}: {value}" for key, value in describe().items())


def _granularity(measure: bool) -> str:
    if SYSTEM == "Linux" and not portable("wakeup"):
        return "0 (high-resolution timers, 1 µs slack)"
    value = wait_granularity_ns() if measure else _threads.measured_granularity_ns()
    return "not measured yet" if value is None else f"{value / 1000:.0f} µs (spin windows widened by it)"


def _waker_portable() -> bool:
    return SYSTEM == "Windows" or portable("wakeup")


def _dir_fsync() -> bool:
    import os

    return hasattr(os, "O_DIRECTORY") and SYSTEM != "Windows" and not portable("files")


def _replace_retries() -> bool:
    return SYSTEM == "Windows" or portable("files")
