"""Syntalos' SecondaryClockSynchronizer and FreqCounterSynchronizer, reproduced step by step as the comparison
baseline ("syntalos-compat").

Written from the algorithm description in ``shared/reference/clocksync-baseline.md`` §3-4 (not from Syntalos code),
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


_UINT64 = 2**64


def eigen_linspaced_uint64(size: int, high: int) -> np.ndarray:
    """``Eigen::VectorX<uint64>::LinSpaced(size, 0, high)`` as Eigen 3.4 computes it for integers (a negative
    ``high`` wraps to 2**64 + high first) — the source of the FreqCounter's ramp bug."""
    high_u = high % _UINT64
    span_plus_one = (high_u + 1) % _UINT64
    if size > 1 and span_plus_one < size:
        divisor = ((size + high_u) % _UINT64) // (span_plus_one or 1)
        values = [i // divisor for i in range(size)]
    else:
        multiplier = high_u // (size - 1 if size > 1 else 1)
        values = [(i * multiplier) % _UINT64 for i in range(size)]
    return np.array(values, dtype=np.uint64)


class SyntalosFreqCounterSynchronizer:
    """Syntalos' FreqCounterSynchronizer (§4): block index vectors against receive times, rewriting indices.

    ``process_timestamps`` modifies the uint64 index block in place like Syntalos does, with its wrap-around,
    ramp and sign-flip bugs. For comparison only; hwlink's counterpart is ``SampleCounterSynchronizer``.
    """

    def __init__(self, frequency_hz: float, id: str = "") -> None:  # noqa: A002 - Syntalos name
        self.id = id
        self.frequency_hz = float(frequency_hz)
        self.usec_per_sample = (1 / self.frequency_hz) * 1e6
        self.strategies = TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD | TimeSyncStrategy.SHIFT_TIMESTAMPS_BWD
        self.tolerance_usec = SECONDARY_CLOCK_TOLERANCE_USEC
        self.calibration_blocks = 500
        self.offset_callback: Callable[[str, int], None] | None = None
        self.tsync_rows: list[tuple[int, int]] = []
        self._expected_offset = 0
        self._last_valid_master = 0
        self._last_emission = 0
        self._started = False

    def set_calibration_blocks_count(self, count: int) -> None:
        self.calibration_blocks = int(count) if count > 0 else 24

    def set_strategies(self, strategies: int) -> None:
        if not self._started:
            self.strategies = TimeSyncStrategy(int(strategies))

    def set_tolerance(self, tolerance_usec: int) -> None:
        if not self._started:
            self.tolerance_usec = int(tolerance_usec)

    def set_last_valid_master_timestamp(self, master_usec: int) -> None:
        self._last_valid_master = int(master_usec)

    @property
    def index_offset(self) -> int:
        return self._index_offset

    @property
    def time_correction_offset(self) -> int:
        return self._corr

    @property
    def is_calibrated(self) -> bool:
        return self._calibrated

    def start(self) -> bool:
        if self._started:
            return False
        self._started = True
        self._within_tol = False
        self._corr = 0
        self._calibrated = False
        self._idx = 0
        self._cal_count = 0
        self._buf = [0] * self.calibration_blocks
        self._sum = 0
        self._sum_sq = 0
        self._index_offset = 0
        self._wait_blocks = 0
        self._apply_index_offset = False
        self._last_idx_unadj = 0
        self._last_assumed = 0
        self._expected_sd = 0.0
        self._bits = int(self.strategies)
        return True

    def stop(self) -> None:
        if self._bits & TimeSyncStrategy.WRITE_TSYNCFILE and self._last_idx_unadj != 0 and self._last_assumed != 0:
            offset = min(self._last_valid_master - self._last_assumed, 0)
            device = _lround((self._last_idx_unadj + 1) * self.usec_per_sample)
            self.tsync_rows.append((device + offset, self._last_assumed + offset))
            self._last_valid_master = 0
            self._last_assumed = 0

    def _notify(self, offset_usec: int) -> None:
        if self.offset_callback is not None:
            self.offset_callback(self.id, offset_usec)

    def process_timestamps(self, recv_usec: int, block_index: int, block_count: int, idx: np.ndarray) -> None:
        """One block of sample indices (uint64, modified in place) received at ``recv_usec``."""
        n, tol, tpp, bits = self.calibration_blocks, self.tolerance_usec, self.usec_per_sample, self._bits
        length = idx.shape[0]
        unadj = int(idx[-1])
        self._last_idx_unadj = unadj
        if self._apply_index_offset and self._index_offset != 0:
            idx -= np.uint64(self._index_offset % _UINT64)  # uint64 wrap-around, as in C++
        assumed = recv_usec - _lround(tpp * (block_count - 1) * length) + _lround(tpp * block_index * length)
        self._last_assumed = assumed
        if self._apply_index_offset:
            sec_ts = _lround((int(idx[-1]) + 1) * tpp)
        else:
            sec_ts = _lround(((unadj + 1 - self._index_offset) % _UINT64) * tpp)
        cur = sec_ts - assumed
        avg = _c_div(self._sum, n)
        avg_dev = avg - self._expected_offset
        old = self._buf[self._idx]
        self._buf[self._idx] = cur
        self._sum += cur - old
        self._sum_sq += cur * cur - old * old
        self._idx = (self._idx + 1) % n

        if not self._calibrated:
            self._cal_count += 1
            if self._cal_count < 2 * n:
                return
            values = np.asarray(self._buf, dtype=np.float64)
            self._expected_sd = math.sqrt(float(np.var(values, ddof=1)))
            self._expected_offset = _lround(float(np.median(values)))
            self._calibrated = True
            self._notify(avg - self._expected_offset)
            if bits & TimeSyncStrategy.WRITE_TSYNCFILE:
                self.tsync_rows.append((0, -self._expected_offset))
            return

        if self._wait_blocks > 0:
            self._wait_blocks -= 1
        if abs(avg_dev) < tol:
            if block_index == 0 and (not self._within_tol or recv_usec > self._last_emission + 30_000_000):
                self._notify(avg_dev)
                self._last_emission = recv_usec
            if self._index_offset != 0 and abs(avg_dev) < tol // 3:
                self._index_offset = _c_div(self._index_offset, 2)
                self._corr = 0 if self._index_offset == 0 else _c_div(self._corr, 2)
            self._within_tol = True
            return
        self._within_tol = False
        distance = float(abs(avg - cur))
        if distance > self._expected_sd:
            spread = (self._sum_sq - 2 * avg * self._sum + n * avg * avg) / (n - 1)
            if distance * distance > 2.25 * spread:
                return  # fluke: ignored
        if self._wait_blocks > 0:
            return
        if block_index == 0 and assumed > self._last_emission + 15_000_000:
            self._notify(avg_dev)
            self._last_emission = recv_usec
        self._corr += math.ceil((avg_dev - self._corr) / 3)
        if abs(self._corr) <= tpp:
            self._corr = math.ceil(tpp)  # always positive: Syntalos' sign-flip bug
        initial = self._index_offset == 0
        new_offset = int((self._corr / 1e6) * self.frequency_hz)
        if self._index_offset == new_offset:
            return
        self._index_offset = _lround((2 * new_offset + self._index_offset) / 3)
        if self._index_offset != 0:
            self._wait_blocks = int(n * 1.2)
            fwd = bits & TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD
            bwd = bits & TimeSyncStrategy.SHIFT_TIMESTAMPS_BWD
            self._apply_index_offset = bool((bwd and self._index_offset > 0) or (fwd and self._index_offset < 0))
            if initial and self._apply_index_offset:
                idx -= eigen_linspaced_uint64(length, self._index_offset)
        if bits & TimeSyncStrategy.WRITE_TSYNCFILE:
            self.tsync_rows.append((_lround((unadj + 1) * tpp), assumed))
