"""Which operating system this is, and which seams are forced onto their portable fallback.

``HWLINK_PORTABLE`` selects fallbacks: ``1`` (or ``all``) forces every seam, a comma-separated list of seam names
forces those only (``HWLINK_PORTABLE=ipc,wakeup``), unset/``0`` leaves every seam on its native path. The
variable is read when a seam is used, except for the clock, which is chosen once at import (every timestamp
of a process must come from one clock). Worker processes inherit the setting, so they choose as the engine did.
"""

from __future__ import annotations

import os
import sys

SEAMS = ("clock", "priority", "wakeup", "ipc", "orphan", "files", "signals")
"""clock: master clock source; priority: thread and process priorities; wakeup: the waker of timed loops;
ipc: engine <-> worker channel; orphan: PR_SET_PDEATHSIG; files: directory fsync and os.replace;
signals: which signals and console events stop a run."""

IS_WINDOWS = sys.platform == "win32"
IS_MACOS = sys.platform == "darwin"
IS_LINUX = sys.platform.startswith("linux")
POSIX = os.name == "posix"
SYSTEM = "Windows" if IS_WINDOWS else "macOS" if IS_MACOS else "Linux" if IS_LINUX else sys.platform

ENV = "HWLINK_PORTABLE"


def forced_seams(value: str | None = None) -> frozenset[str]:
    """The seams forced portable by ``value`` (default: the environment). Unknown names raise ValueError."""
    value = os.environ.get(ENV, "") if value is None else value
    value = value.strip().lower()
    if value in ("", "0", "no", "false", "off"):
        return frozenset()
    if value in ("1", "all", "yes", "true", "on"):
        return frozenset(SEAMS)
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(names - set(SEAMS))
    if unknown:
        raise ValueError(f"{ENV}: unknown seam(s) {', '.join(unknown)}; known: {', '.join(SEAMS)}, or 1 for all")
    return names


def portable(seam: str) -> bool:
    """Whether ``seam`` runs its portable fallback (forced, or this OS has nothing better)."""
    assert seam in SEAMS, seam
    try:
        return seam in forced_seams()
    except ValueError:
        return True  # a misspelt switch is reported by `hwlink doctor`; meanwhile take the path that works anywhere
