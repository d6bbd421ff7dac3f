"""The experiment runtime: ``hwlink run EXPERIMENT`` runs modules joined by typed ports and records them.

Scripts written for Syntalos' ``syntalos_mlink`` and Open Ephys Python Processor scripts run unmodified, each
in a worker process of its own (``python -m hwlink.runtime.worker``). See README "Experiments" for the file format.

The names below load on first use, so a script worker (which imports ``hwlink.runtime.worker``) does not pay for
the engine's imports (EDL writers, h5py, drivers).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Engine": "hwlink.runtime.engine",
    "MODULE_KINDS": "hwlink.runtime.engine",
    "RunResult": "hwlink.runtime.engine",
    "ExperimentError": "hwlink.runtime.experiment",
    "load_experiment": "hwlink.runtime.experiment",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hwlink.runtime' has no attribute {name!r}")
