"""Clock synchronization: models of device clocks, online synchronizers, tsync files, offline correction."""

from hwlink.sync.counter import SampleCounterSynchronizer
from hwlink.sync.estimator import DriftEstimator, fit_lower_line, map_offline
from hwlink.sync.secondary import SecondaryClockSynchronizer, TimeSyncStrategy

__all__ = [
    "DriftEstimator", "SampleCounterSynchronizer", "SecondaryClockSynchronizer", "TimeSyncStrategy",
    "fit_lower_line", "map_offline",
]
