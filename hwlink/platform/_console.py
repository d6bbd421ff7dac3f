"""Stopping a run from the console, and console output that never fails on an unencodable character.

A run stops cleanly (collection closed, nothing lost) on:
- POSIX: SIGINT (Ctrl-C), SIGTERM, and SIGHUP (the terminal closed; left alone when ignored, as under nohup).
- Windows: SIGINT (Ctrl-C), SIGBREAK (Ctrl-Break), and the console being closed, or the user logging off or
  shutting down. Those last three are not signals: a console control handler gets them on a thread of its own,
  and Windows ends the process as soon as the handler returns (at the latest after about 5 s), so the handler
  asks the run to stop and waits until the ``stop_signals`` block has been left, at most ``CONSOLE_GRACE_SEC``.

Output: when stdout/stderr cannot encode every character (a cp1252 console or a redirected stream on Windows),
unencodable characters are written as backslash escapes instead of raising UnicodeEncodeError in the middle of
a run. Files hwlink writes are always UTF-8.
"""

from __future__ import annotations

import codecs
import ctypes
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from hwlink.platform._switches import IS_WINDOWS, portable

CONSOLE_GRACE_SEC = 4.5  # Windows kills the process 5 s after a close/logoff/shutdown event
CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT = 2, 5, 6

Handler = Callable[[int, FrameType | None], Any]


def stop_signal_numbers() -> list[int]:
    """The signals that ask a run to stop on this OS."""
    names = ["SIGINT", "SIGTERM", "SIGBREAK"]
    if not IS_WINDOWS and not portable("signals"):
        names.append("SIGHUP")
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


def console_event_signal() -> int:
    """The signal number handed to the handler for a console close/logoff/shutdown event."""
    return getattr(signal, "SIGBREAK", signal.SIGTERM)


def on_console_event(event: int, handler: Handler, finished: threading.Event,
                     grace_sec: float = CONSOLE_GRACE_SEC) -> bool:
    """What the console control handler does: ask to stop, then hold the process until the run has closed."""
    if event not in (CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT):
        return False  # Ctrl-C / Ctrl-Break: Python's own handler turns them into SIGINT / SIGBREAK
    handler(console_event_signal(), None)
    finished.wait(grace_sec)
    return True


@contextmanager
def stop_signals(handler: Handler) -> Iterator[None]:
    """Within the block, every way this OS has to ask a console program to stop calls ``handler(signum, frame)``.

    Outside the main thread (where Python cannot install signal handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in stop_signal_numbers():
        if getattr(signal, "SIGHUP", None) == signum and signal.getsignal(signum) == signal.SIG_IGN:
            continue  # nohup: the user wants the run to survive the terminal
        previous[signum] = signal.signal(signum, handler)
    finished = threading.Event()
    console = _install_console_handler(handler, finished) if IS_WINDOWS and not portable("signals") else None
    try:
        yield
    finally:
        finished.set()
        if console is not None:
            _remove_console_handler(console)
        for signum, old in previous.items():
            signal.signal(signum, old)


def _install_console_handler(handler: Handler, finished: threading.Event) -> Any:
    try:
        prototype = ctypes.WINFUNCTYPE(ctypes.c_int, ctypes.c_uint)  # type: ignore[attr-defined]
        routine = prototype(lambda event: int(on_console_event(event, handler, finished)))
        kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]
        kernel32.SetConsoleCtrlHandler.argtypes = [prototype, ctypes.c_int]
        if kernel32.SetConsoleCtrlHandler(routine, True):
            return routine  # keep the callback alive while installed
    except Exception:  # noqa: BLE001 - without it, console close ends the process as it always did
        pass
    return None


def _remove_console_handler(routine: Any) -> None:
    try:
        kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]
        kernel32.SetConsoleCtrlHandler(routine, False)
    except Exception:  # noqa: BLE001
        pass


def _is_utf(encoding: str | None) -> bool:
    try:
        return codecs.lookup(encoding or "ascii").name.startswith("utf")
    except LookupError:
        return False


def setup_console() -> None:
    """Make stdout and stderr write what they cannot encode as escapes (never raise UnicodeEncodeError)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None or _is_utf(getattr(stream, "encoding", None)):
            continue
        if getattr(stream, "errors", "strict") == "strict":
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass
