"""Making a timing-critical thread (pulse edges, arrival timestamps) wake up when it should, on each OS.

Under CPU contention a normal thread waits milliseconds for its turn, which no spinning can hide, and timed
waits overshoot by the OS's timer granularity. What each OS offers without extra installs:

- Linux: SCHED_FIFO real-time priority (needs root, CAP_SYS_NICE or an rtprio limit) and a 1 µs timer slack
  (the default lets every timed wait overshoot by 50 µs). Both are per thread.
- Windows: THREAD_PRIORITY_TIME_CRITICAL (allowed without admin rights inside the normal priority class) and a
  1 ms system timer period (timeBeginPeriod(1); the default period is 15.6 ms).
- macOS: the USER_INTERACTIVE quality-of-service class (no privileges needed), which also exempts the thread's
  timers from most coalescing.

What was obtained is recorded per thread role (``obtained()``) for ``hwlink doctor`` and the run log; nothing
is dropped silently. Callers must only ever spin for bounded stretches so they cannot starve the machine.
"""

from __future__ import annotations

import ctypes
import logging
import os
import statistics
import threading
import time

from hwlink.platform._switches import IS_LINUX, IS_MACOS, IS_WINDOWS, portable

log = logging.getLogger("hwlink.platform")

PR_SET_TIMERSLACK = 29
RT_PRIORITY = 10
THREAD_PRIORITY_TIME_CRITICAL = 15
QOS_CLASS_USER_INTERACTIVE = 0x21

_lock = threading.Lock()
_obtained: dict[str, str] = {}
_timer_period: str | None = None
_granularity_ns: int | None = None


class Priority:
    """What a ``make_thread_timely`` call obtained: ``elevated`` and a one-line ``description``."""

    __slots__ = ("elevated", "description")

    def __init__(self, elevated: bool, description: str) -> None:
        self.elevated = elevated
        self.description = description

    def __bool__(self) -> bool:
        return self.elevated

    def __repr__(self) -> str:
        return f"Priority({self.elevated}, {self.description!r})"


def _error_text(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno is not None:
        return os.strerror(error.errno)
    return f"{type(error).__name__}: {error}"


def _libc() -> ctypes.CDLL:
    """The C library of this process (POSIX only: ``CDLL(None)`` raises TypeError on Windows)."""
    return ctypes.CDLL(None, use_errno=True)


def _linux() -> Priority:
    parts = []
    try:
        if _libc().prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
        parts.append("timer slack 1 µs")
    except Exception as error:  # noqa: BLE001 - any failure leaves the default slack; it is reported
        parts.append(f"timer slack unchanged ({_error_text(error)})")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    except (OSError, AttributeError) as error:
        parts.insert(0, f"normal priority (SCHED_FIFO refused: {_error_text(error)}; grant CAP_SYS_NICE or an "
                        "rtprio limit)")
        return Priority(False, ", ".join(parts))
    parts.insert(0, f"SCHED_FIFO {RT_PRIORITY}")
    return Priority(True, ", ".join(parts))


def _windows() -> Priority:
    parts = [_windows_timer_period()]
    try:
        kernel32 = _kernel32()
        handle = kernel32.GetCurrentThread()
        if not kernel32.SetThreadPriority(handle, THREAD_PRIORITY_TIME_CRITICAL):
            raise OSError(ctypes.get_last_error(), "SetThreadPriority")  # type: ignore[attr-defined]
        obtained = kernel32.GetThreadPriority(handle)
    except Exception as error:  # noqa: BLE001 - reported below
        return Priority(False, f"normal priority (SetThreadPriority failed: {_error_text(error)}), {parts[0]}")
    if obtained != THREAD_PRIORITY_TIME_CRITICAL:
        return Priority(False, f"thread priority {obtained} (time-critical not granted), {parts[0]}")
    return Priority(True, f"time-critical thread priority, {parts[0]}")


def _kernel32() -> ctypes.CDLL:
    """kernel32 with the prototypes used here (HANDLE is pointer-sized: never let it pass as a 32-bit int)."""
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle, dword = ctypes.c_void_p, ctypes.c_uint32
    kernel32.GetCurrentThread.restype = handle
    kernel32.GetCurrentThread.argtypes = []
    kernel32.SetThreadPriority.argtypes = [handle, ctypes.c_int]
    kernel32.SetThreadPriority.restype = ctypes.c_int
    kernel32.GetThreadPriority.argtypes = [handle]
    kernel32.GetThreadPriority.restype = ctypes.c_int
    kernel32.OpenProcess.argtypes = [dword, ctypes.c_int, dword]
    kernel32.OpenProcess.restype = handle
    kernel32.SetPriorityClass.argtypes = [handle, dword]
    kernel32.SetPriorityClass.restype = ctypes.c_int
    kernel32.CloseHandle.argtypes = [handle]
    kernel32.CloseHandle.restype = ctypes.c_int
    return kernel32


def _windows_timer_period() -> str:
    """timeBeginPeriod(1) once per process (it is process-wide and undone when the process exits)."""
    global _timer_period
    with _lock:
        if _timer_period is None:
            try:
                winmm = ctypes.WinDLL("winmm")  # type: ignore[attr-defined]
                winmm.timeBeginPeriod.argtypes = [ctypes.c_uint]
                winmm.timeBeginPeriod.restype = ctypes.c_uint
                _timer_period = ("timer period 1 ms" if winmm.timeBeginPeriod(1) == 0
                                 else "timer period unchanged (timeBeginPeriod refused)")
            except Exception as error:  # noqa: BLE001
                _timer_period = f"timer period unchanged ({_error_text(error)})"
        return _timer_period


def _macos() -> Priority:
    try:
        result = _libc().pthread_set_qos_class_self_np(QOS_CLASS_USER_INTERACTIVE, 0)
    except Exception as error:  # noqa: BLE001
        return Priority(False, f"default QoS (pthread_set_qos_class_self_np failed: {_error_text(error)})")
    if result != 0:
        return Priority(False, f"default QoS (pthread_set_qos_class_self_np: {os.strerror(result)})")
    return Priority(True, "QoS user-interactive")


def make_thread_timely(role: str = "") -> Priority:
    """Raise the calling thread's scheduling priority and timer precision as far as this OS permits.

    Never raises. ``role`` names the thread in ``obtained()`` (default: the thread's name).
    """
    role = role or threading.current_thread().name
    try:
        if portable("priority"):
            result = Priority(False, "OS default priority (portable fallback forced)")
        elif IS_LINUX:
            result = _linux()
        elif IS_WINDOWS:
            result = _windows()
        elif IS_MACOS:
            result = _macos()
        else:
            result = Priority(False, "OS default priority (no priority API known for this OS)")
    except Exception as error:  # noqa: BLE001 - a timing thread must start whatever its priority
        result = Priority(False, f"OS default priority ({_error_text(error)})")
    with _lock:
        first = role not in _obtained
        _obtained[role] = result.description
    if first:
        log.info("%s thread: %s", role, result.description)
    return result


def obtained() -> dict[str, str]:
    """What each thread role got the last time it asked, e.g. ``{'hwlink-pulses': 'SCHED_FIFO 10, ...'}``."""
    with _lock:
        return dict(_obtained)


def wait_granularity_ns() -> int:
    """How late a short timed wait typically returns on this system: 0 where waits are precise.

    Linux (native): high-resolution timers and a 1 µs slack, so 0 and loops keep the spin windows they were
    tuned with. Elsewhere, or with the wakeup seam forced portable, the median overshoot of a few 0.2 ms
    waits is measured once per process (about 1 ms on Windows after timeBeginPeriod(1), 15.6 ms without it).
    """
    global _granularity_ns
    if IS_LINUX and not portable("wakeup"):
        return 0
    if _granularity_ns is None:
        if IS_WINDOWS and not portable("priority"):
            _windows_timer_period()
        event = threading.Event()
        overshoots = []
        for _ in range(9):
            started = time.perf_counter_ns()
            event.wait(0.0002)
            overshoots.append(max(time.perf_counter_ns() - started - 200_000, 0))
        _granularity_ns = int(statistics.median(overshoots))
    return _granularity_ns


def measured_granularity_ns() -> int | None:
    """The granularity if ``wait_granularity_ns`` has measured it in this process, else None."""
    return _granularity_ns


def coarse_timeout(timeout_sec: float) -> float:
    """The timeout to pass to a timed wait that must not return late: ``timeout_sec`` minus the granularity.

    A loop that re-checks its deadline after every wait then polls (wait(0)) over the last stretch instead of
    overshooting by a whole timer tick. Identical to ``timeout_sec`` where waits are precise.
    """
    granularity = wait_granularity_ns()
    if not granularity:
        return timeout_sec
    return max(timeout_sec - granularity / 1e9, 0.0)


__all__ = ["Priority", "coarse_timeout", "make_thread_timely", "obtained", "wait_granularity_ns"]


def main_thread_runnable_sec() -> float | None:
    """Seconds this process's main thread has been on a CPU or waiting in the run queue for one, or None where
    the system does not say (Linux schedstat only; callers then fall back to CPU time).

    Why not CPU time alone: on a loaded machine a spinning thread gets only part of a core, so its CPU share
    says little; a spinner is runnable all the time however much CPU it actually gets."""
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as stat:
            on_cpu, waiting, _ = stat.read().split()
    except (OSError, ValueError):
        return None
    return (int(on_cpu) + int(waiting)) / 1e9
