"""Making a timing-critical thread (pulse edges, arrival timestamps) wake up when it should.

Under CPU contention a normal thread waits milliseconds for its turn, which no spinning can hide, and Linux
lets every timed wait overshoot by a 50 µs "timer slack" by default. Both are per-thread settings.
"""

from __future__ import annotations

import ctypes
import os

PR_SET_TIMERSLACK = 29
RT_PRIORITY = 10


def make_thread_timely() -> bool:
    """Give the calling thread a 1 µs timer slack and real-time (SCHED_FIFO) priority where permitted.

    Real-time priority needs root, CAP_SYS_NICE or an rtprio limit; without it the thread keeps normal
    priority. Callers must only ever spin for bounded stretches so they cannot starve the machine.
    Returns whether real-time priority was granted.
    """
    try:
        ctypes.CDLL(None).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    except (OSError, AttributeError):
        return False
    return True
