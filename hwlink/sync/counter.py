"""SampleCounterSynchronizer: master timestamps for blocks of samples from a hardware-clocked device (DAQ input).

The device's only clock is its sample counter: sample ``i`` is taken at device time ``i / rate``. Each block
arrives at a master time after its last sample was taken, so the pair (device time of the block's last sample,
arrival time) feeds the same lower-envelope estimator as :class:`SecondaryClockSynchronizer`; every sample of the
block is then mapped through the estimated line (offset and drift) in one numpy expression.

Unlike Syntalos' FreqCounterSynchronizer there is no index rewriting: indices are never changed (no uint64
wrap-around, no ramp, no gaps or duplicates), the drift sign is whatever the data says, noise-free linear drift is
followed like any other, and stopping writes the real last pair.
"""

from __future__ import annotations

import math

import numpy as np

from hwlink.errors import ConfigError
from hwlink.sync.estimator import DriftEstimator
from hwlink.sync.secondary import SyncPointOutput, TimeSyncStrategy


class SampleCounterSynchronizer(SyncPointOutput):
    """Sample index -> master time (µs, int64) with drift estimation, for blocks arriving at master times.

    Strategies: with ``SHIFT_TIMESTAMPS_FWD`` or ``_BWD`` (default both) samples get estimated times; with
    neither, the receive-time reckoning (arrival minus the nominal duration back to each sample).
    ``WRITE_TSYNCFILE`` (see :meth:`set_tsync_file_path`) writes (device time of a sample, its master time).
    """

    def __init__(self, sample_rate_hz: float, id: str | None = None) -> None:  # noqa: A002 - Syntalos name
        if not sample_rate_hz > 0 or not math.isfinite(sample_rate_hz):
            raise ConfigError(f"sample rate must be positive, got {sample_rate_hz}")
        super().__init__(id)
        self.sample_rate_hz = float(sample_rate_hz)
        self.usec_per_sample = 1e6 / self.sample_rate_hz
        self._estimator = DriftEstimator()
        self._next_index = 0
        self._last_output: int | None = None

    def set_strategies(self, strategies: int) -> None:
        if self._started:
            raise ConfigError("cannot change the strategies of a running synchronizer")
        self._strategy_bits = int(TimeSyncStrategy(int(strategies)))

    def set_tolerance(self, tolerance_usec: int) -> None:
        if int(tolerance_usec) <= 0:
            raise ConfigError(f"tolerance must be positive, got {tolerance_usec}")
        self._tolerance_usec = int(tolerance_usec)

    set_tolerance_usec = set_tolerance

    @property
    def is_calibrated(self) -> bool:
        return self._estimator.span_usec >= self._estimator.min_span_usec

    @property
    def skew_ppm(self) -> float:
        """Sample clock rate error (positive: the device samples faster than nominal on the master clock)."""
        return self._estimator.skew_ppm

    @property
    def effective_sample_rate_hz(self) -> float:
        """The sample rate measured on the master clock."""
        return self.sample_rate_hz * (1 + self.skew_ppm * 1e-6)

    @property
    def clock_resets(self) -> int:
        return self._estimator.resets

    @property
    def samples_seen(self) -> int:
        return self._next_index

    def process_block(self, master_usec: int, sample_count: int, first_index: int | None = None) -> np.ndarray:
        """Master timestamps of ``sample_count`` samples received at ``master_usec``.

        ``first_index`` is the device's index of the block's first sample (default: right after the previous
        block; give it when the device reports dropped samples).
        """
        if sample_count <= 0:
            raise ConfigError(f"a block needs at least one sample, got {sample_count}")
        first = self._next_index if first_index is None else int(first_index)
        if first < 0:
            raise ConfigError(f"sample index must not be negative, got {first}")
        return self.process_indices(master_usec, np.arange(first, first + sample_count, dtype=np.int64))

    def process_indices(self, master_usec: int, indices: np.ndarray) -> np.ndarray:
        """Master timestamps of samples with these device indices (increasing) received at ``master_usec``."""
        if not self._started:
            self.start()
        indices = np.asarray(indices, dtype=np.int64)
        if indices.ndim != 1 or indices.size == 0:
            raise ConfigError("indices must be a non-empty 1-D array")
        master = int(master_usec)
        last_index = int(indices[-1])
        device = indices * self.usec_per_sample  # float µs, sample i taken at its clock edge
        last_device = int(round(last_index * self.usec_per_sample))
        estimator = self._estimator
        event = estimator.add(last_device, master)
        if self._strategy_bits & (TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD | TimeSyncStrategy.SHIFT_TIMESTAMPS_BWD):
            times = estimator.line.master(device)
        else:
            times = master - (last_index - indices) * self.usec_per_sample
        out = np.minimum(np.rint(times), master).astype(np.int64)
        if self._last_output is not None:
            # when the estimate moves earlier, the block's first samples would land at or before the last one
            # given out: each stays a microsecond after its predecessor instead (distinct instants keep distinct
            # stamps while the period allows, so searchsorted and interpolation downstream stay unambiguous)
            step = 1 if self.usec_per_sample >= 1 else 0
            np.maximum(out, self._last_output + step * np.arange(1, out.size + 1), out=out)
        if self._recorder is not None:
            # the first sample too: the line may have moved since the last block (a row pair marks the jump)
            self._recorder.record(int(round(float(device[0]))), int(out[0]), bool(event), estimator.slope)
            if indices.size > 1:
                self._recorder.record(last_device, int(out[-1]), False, estimator.slope)
        self._last_output = int(out[-1])
        self._next_index = last_index + 1
        return out
