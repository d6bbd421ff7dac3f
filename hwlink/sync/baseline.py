"""Syntalos' SecondaryClockSynchronizer, reproduced step by step as the comparison baseline ("syntalos-compat").

Written from the algorithm description in ``shared/reference/clocksync-baseline.md`` §3 (not from Syntalos code),
including its integer and rounding rules and its documented bugs (NaN correction on a backwards device timestamp,
non-monotone output after a fluke streak, fluke correction regardless of strategy). It exists only so hwlink's
estimator can be measured against it; nothing else in hwlink uses it. Running sums make each call O(1) instead of
Syntalos' O(N) variance, with the same results.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from hwlink.sync.secondary import (
    DEFAULT_CALIBRATION_POINTS,
    MIN_CALIBRATION_POINTS,
    SECONDARY_CLOCK_TOLERANCE_USEC,
    TimeSyncStrategy,
    syntalos_points_and_tolerance,
)

_INT64_MIN = -(2**63)
_LN_1000001 = math.log(1_000_001)


def _wrap_int64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


def _c_div(numerator: int, denominator: int) -> int:
    """Integer division truncating toward zero, as C++ does."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator >= 0) else -quotient


def _lround(value: float) -> int:
    """Round half away from zero."""
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def _ceil_to_int64(value: float) -> int:
    """``(int64) ceil(x)``; NaN converts to INT64_MIN as x86 does (undefined behaviour in C++)."""
    if math.isnan(value) or math.isinf(value):
        return _INT64_MIN
    return math.ceil(value)


def _delay_factor(gap_usec: int) -> float:
    """Syntalos' log-shaped damping of a correction step; NaN for a backwards gap (its bug)."""
    if gap_usec + 1 <= 0:
        return math.nan  # ln(<=0) is -inf/NaN, and a negative base to the power 0.117 is NaN
    return 1000 * (1 - (math.log(gap_usec + 1) / _LN_1000001) ** 0.117) + 1


class SyntalosSecondaryClockSynchronizer:
    """The baseline: same constructor, setters, properties and results as Syntalos' synchronizer."""

    def __init__(self, expected_frequency_hz: float = 0, id: str = "") -> None:  # noqa: A002 - Syntalos name
        self.id = id
        self.strategies = TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD | TimeSyncStrategy.SHIFT_TIMESTAMPS_BWD
        self.tolerance_usec = SECONDARY_CLOCK_TOLERANCE_USEC
        self.calibration_points = DEFAULT_CALIBRATION_POINTS
        self.offset_callback: Callable[[str, int], None] | None = None
        self.tsync_rows: list[tuple[int, int]] = []  # rows Syntalos would write under WRITE_TSYNCFILE
        self._last_emission = 0
        self._calibrated = False
        self._expected_sd = 0.0
        if expected_frequency_hz > 0:
            self.set_expected_clock_frequency_hz(expected_frequency_hz)

    # -- configuration ------------------------------------------------------------------------------------------

    def set_calibration_points_count(self, count: int) -> None:
        if not self._calibrated:
            self.calibration_points = max(int(count), MIN_CALIBRATION_POINTS)

    def set_expected_clock_frequency_hz(self, frequency_hz: float) -> None:
        if frequency_hz > 0 and not self._calibrated:
            self.calibration_points, self.tolerance_usec = syntalos_points_and_tolerance(frequency_hz)

    def set_strategies(self, strategies: int) -> None:
        if not self._calibrated:
            self.strategies = TimeSyncStrategy(int(strategies))

    def set_tolerance(self, tolerance_usec: int) -> None:
        if not self._calibrated:
            self.tolerance_usec = int(tolerance_usec)

    set_tolerance_usec = set_tolerance

    @property
    def is_calibrated(self) -> bool:
        return self._calibrated

    @property
    def expected_offset_to_master_usec(self) -> int:
        return self._expected_offset

    @property
    def clock_correction_offset(self) -> int:
        return self._corr

    clock_correction_offset_usec = clock_correction_offset

    # -- run ------------------------------------------------------------------------------------------------------

    def start(self, master_now_usec: int = 0) -> bool:
        """``master_now_usec`` stands for Syntalos' timer reading at start (ms resolution)."""
        if self._calibrated:
            return False
        n = self.calibration_points
        self._buf = [0] * n
        self._idx = 0
        self._sum = 0
        self._sum_sq = 0
        self._cal_count = 0
        self._expected_offset = 0
        self._corr = 0
        self._last_master = (master_now_usec // 1000) * 1000
        self._last_secondary = 0
        self._wait_points = 0
        self._within_tol = False
        self._strategy_bits = int(self.strategies)
        return True

    def stop(self) -> None:
        if self._strategy_bits & TimeSyncStrategy.WRITE_TSYNCFILE and self._last_secondary != 0:
            self.tsync_rows.append((self._last_secondary, self._last_master))

    def _notify(self, offset_usec: int) -> None:
        if self.offset_callback is not None:
            self.offset_callback(self.id, offset_usec)

    def process_timestamp(self, master_usec: int, secondary_usec: int) -> int:
        master, secondary = int(master_usec), int(secondary_usec)
        n = self.calibration_points
        tol = self.tolerance_usec
        bits = self._strategy_bits
        writes = bits & TimeSyncStrategy.WRITE_TSYNCFILE
        cur = secondary - master
        avg = _c_div(self._sum, n)
        avg_dev = avg - self._expected_offset
        buf, idx = self._buf, self._idx
        old = buf[idx]
        buf[idx] = cur
        self._sum += cur - old
        self._sum_sq += cur * cur - old * old
        self._idx = (idx + 1) % n
        if self._wait_points > 0:
            self._wait_points -= 1

        if not self._calibrated:
            self._cal_count += 1
            if self._cal_count < 2 * n:
                return master
            values = np.asarray(buf, dtype=np.float64)
            self._expected_sd = math.sqrt(float(np.var(values, ddof=1)))
            self._expected_offset = _lround(float(np.median(values)))
            self._calibrated = True
            if writes:
                self.tsync_rows.append((0, -self._expected_offset))
            self._last_secondary, self._last_master = secondary, master
            return master

        distance = float(abs(avg - cur))
        if distance > self._expected_sd:
            spread = (self._sum_sq - 2 * avg * self._sum + n * avg * avg) / (n - 1)
            if distance * distance > 4 * spread:  # fluke: extrapolate with the device clock
                master = self._last_master + (secondary - self._last_secondary)
                if master < self._last_master:
                    master = self._last_master + 1
                if writes:
                    self.tsync_rows.append((secondary, master))
                self._last_secondary, self._last_master = secondary, master
                return master

        fwd = bits & TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD
        bwd = bits & TimeSyncStrategy.SHIFT_TIMESTAMPS_BWD
        if abs(avg_dev) < tol:
            if not self._within_tol or master > self._last_emission + 30_000_000:
                self._notify(avg_dev)
                self._last_emission = master
            if self._corr != 0:
                if abs(avg_dev) < tol // 3:
                    self._corr = 0
                else:
                    self._corr = math.ceil(self._corr / 1.25)
                if (bwd and self._corr > 0) or (fwd and self._corr < 0):
                    master = _wrap_int64(secondary - self._expected_offset - self._corr)
                if master < self._last_master:
                    master = self._last_master + 1
            self._last_secondary, self._last_master = secondary, master
            self._within_tol = True
            return master

        self._within_tol = False
        if master > self._last_emission + 15_000_000:
            self._notify(avg_dev)
            self._last_emission = master
        if self._wait_points == 0 and abs(avg_dev - self._corr) > tol / 1.5:
            off_diff = float(avg_dev - self._corr)
            delay = _delay_factor(secondary - self._last_secondary)
            if delay >= abs(off_diff):
                delay = abs(off_diff) / 4
            if delay < 1:
                delay = 1.0
            self._corr = _wrap_int64(self._corr + _ceil_to_int64(off_diff / delay))
            if writes:
                self.tsync_rows.append((secondary, _wrap_int64(secondary - self._expected_offset - self._corr)))
            if abs(self._corr) > 1:
                self._wait_points = math.ceil(0.65 * n)
        if (bwd and self._corr > 0) or (fwd and self._corr < 0):
            master = _wrap_int64(secondary - self._expected_offset - self._corr)
        if master < self._last_master:
            master = self._last_master
        self._last_secondary, self._last_master = secondary, master
        return master
