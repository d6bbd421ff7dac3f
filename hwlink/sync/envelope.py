"""The next clock estimator (candidate design of issue 13, not yet the synchronizers' default): the lower envelope of
(device, master) pairs followed by a small set of refitted candidate curves.

Measured side by side with :class:`hwlink.sync.estimator.DriftEstimator` in ``python -m benchmarks clocksync``
(``hwlink-next`` columns). It is not wired into the synchronizers yet: it still misses the first seconds' accuracy
and some grid behaviours the current estimator has (see BENCHMARKS.md).

A message stamped ``secondary`` on the device clock arrives at master time ``master = f(secondary) + d`` with a
transport delay ``d >= d_min`` that is one-sided and heavy-tailed (USB frames, latency timers, radio connection
intervals, scheduling, spikes). The centre of ``master - secondary`` follows the delay distribution; its lower
edge is the clock. One idea, online and offline: follow the lower edge of the points ``(x = secondary,
y = master - secondary)`` with a small set of candidate curves and keep the one the newest data supports.

* Points are reduced to block minima (a block is a short stretch of device time; its lowest point is a real pair,
  chosen after removing the current skew). Blocks start short and double by merging, so memory is O(window) and a
  refit costs O(window / block) whatever the event rate.
* Every few seconds (and often during a warm-up) the candidates are refitted: lines over 1/8, 1/4, 1/2 and all of
  the window and parabolas over the longer three, each stretched to hold at least ``MIN_BLOCKS`` blocks (slow
  events). Each is a lower fit: least squares on the blocks, twice refitted on the blocks below it, then lowered
  to touch the lowest block. A curving offset (crystal wander, a rate step) bends away from long lines; short ones
  and parabolas follow it.
* Choice: each candidate's previous fit is checked against the blocks that came since. One whose prediction lay
  above a newer block minimum (undercut: no pair can arrive before its event) is out; among the rest the highest
  (the tightest lower bound the new data allows) is followed. So a long line is kept while the offset is straight
  and given up as soon as the floor bends below it.
* A clock step is a *run*: at least ``STEP_FORWARD_RUN`` pairs in a row below the line by more than the step
  threshold, or pairs above it by more than the threshold for at least ``step_streak`` pairs and a second (stalls,
  congestion and spikes end sooner). The line is frozen while a run lasts. The threshold is the larger of
  ``step_threshold_usec`` and four times the running median delay above the line: a stair-shaped floor (a latency
  timer or connection interval releasing arrivals on a grid) moves by at most its grid period, about twice the
  median delay, so its drops never look like a step. A backwards device time that fits a counter wrap (a jump of
  2**k, ``counter_bits`` or detected from the value) is unwrapped; any other is a reset. After a step the skew
  measured over at least a minute is kept until the new segment spans ``PRIOR_SPAN_USEC``.

Offline (:func:`map_offline`): the same estimator run forward and backward in time over the arrays, each point
taking both estimates weighted by how long each direction had been settled there, so the start of each clock
segment is as good as its middle. :func:`find_steps` reports where the estimator began new clock segments.
:func:`fit_lower_line` is the single LP line (the hull edge spanning the mean x) for whole arrays.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from hwlink.errors import ConfigError
from hwlink.sync.estimator import EstimatorEvent, Line

DEFAULT_WINDOW_USEC = 480_000_000  # the longest candidate; the shortest is an eighth of it
DEFAULT_MIN_SPAN_USEC = 1_000_000  # a free skew only once the points span this (before: the prior, or none)
DEFAULT_STEP_THRESHOLD_USEC = 1_000  # the smallest clock step that restarts the estimate
DEFAULT_STEP_STREAK = 16  # pairs above the line that make a step back (and STEP_BACK_MIN_USEC of them)
STEP_BACK_MIN_USEC = 1_000_000  # stalls, congestion bursts and spikes end sooner than this; a step lasts
STEP_FORWARD_RUN = 3  # pairs in a row below the line: one could be a bad stamp, a run cannot arrive early
STEP_MEDIAN_FACTOR = 4  # threshold >= 4x the median delay above the line (a stair drop is at most ~2x)
SETTLE_POINTS = 32  # pairs of a new segment before a step can be judged (its line and median delay are young)
PRIOR_SPAN_USEC = 30_000_000  # after a step, the measured skew carries on until the new segment spans this
TRUSTED_PRIOR_SPAN_USEC = 60_000_000  # a skew measured over a minute is kept across a step
MIN_BLOCKS = 32  # each candidate window is stretched to hold at least this many blocks
MAX_BLOCKS = 256  # blocks double by merging until the window holds at most about this many
FIRST_BLOCK_USEC = 1_000
REFIT_POINTS = 128  # refit after this many pairs and REFIT_USEC...
REFIT_USEC = 2_000_000
REFIT_MAX_USEC = 30_000_000  # ...or after this long whatever the rate
UNDERCUT_TOLERANCE_USEC = 5.0  # a block this far below a candidate's prediction rules it out (µs rounding, noise)
CURVE_HORIZON_USEC = 60_000_000  # beyond this past a fit the parabola continues as a straight line
DEFAULT_MAX_SKEW = 1e-2  # 1 %: beyond even ceramic resonators (Arduino Uno ~0.5 %)
MIN_WRAP_BITS = 8


class EnvelopeEstimator:
    """Online lower-envelope estimator of the device -> master mapping (offset, skew and its bending).

    ``add(secondary, master)`` feeds one pair (integers, µs); ``master_time(secondary)`` maps a device time to
    the estimated event time on the master clock (the lower envelope minus ``min_latency_usec``).
    """

    def __init__(
        self,
        *,
        window_usec: int = DEFAULT_WINDOW_USEC,
        min_span_usec: int = DEFAULT_MIN_SPAN_USEC,
        step_threshold_usec: int = DEFAULT_STEP_THRESHOLD_USEC,
        step_streak: int = DEFAULT_STEP_STREAK,
        max_skew: float = DEFAULT_MAX_SKEW,
        min_latency_usec: int = 0,
        counter_bits: int | None = None,
    ) -> None:
        if window_usec < 8 * min_span_usec or min_span_usec <= 0:
            raise ConfigError("estimator window must be positive and at least 8x the minimum span")
        if step_threshold_usec <= 0 or step_streak < 1:
            raise ConfigError("step threshold and streak must be positive")
        self.window_usec = int(window_usec)
        self.min_span_usec = int(min_span_usec)
        self.step_threshold_usec = int(step_threshold_usec)
        self.step_streak = int(step_streak)
        self.max_skew = float(max_skew)
        self.min_latency_usec = int(min_latency_usec)
        self.set_counter_bits(counter_bits)
        self._windows = [self.window_usec // 8, self.window_usec // 4, self.window_usec // 2, self.window_usec]
        # (window index, degree) of each candidate
        self._candidates = [(0, 1), (1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 2)]
        self._max_block_usec = max(FIRST_BLOCK_USEC, self.window_usec // MAX_BLOCKS)
        self.resets = 0
        self.wraps = 0
        self.points = 0  # pairs seen
        self.segment_start = 0  # index (in pairs seen) of the current clock segment's first pair
        self.prior_slope = 0.0
        self._prior_trusted = False
        self._median = 100.0  # running median of the delay above the line (multiplicative tracker)
        self._wrap_offset = 0
        self._last_raw: int | None = None
        self._last_x = 0
        self._last_master = 0
        self._start_segment()

    def set_counter_bits(self, bits: int | None) -> None:
        """The device counter's width: a backwards jump of 2**bits is a wrap (None: detect from the values)."""
        if bits is not None and not MIN_WRAP_BITS <= int(bits) <= 64:
            raise ConfigError(f"counter bits must be within {MIN_WRAP_BITS}..64, got {bits}")
        self.counter_bits = None if bits is None else int(bits)

    # -- segment state ------------------------------------------------------------------------------------------

    def _start_segment(self) -> None:
        self._seg_x0: int | None = None
        self._seg_count = 0
        self._block_usec = FIRST_BLOCK_USEC
        self._bx: list[int] = []  # closed blocks' minima (absolute x, y)
        self._by: list[int] = []
        self._cur_id = -1
        self._cur_x = 0
        self._cur_y = 0
        self._cur_z = math.inf
        self._fit_x = 0  # x of the newest pair at the last refit
        self._since_fit = 0
        self._fits: list[tuple[float, float, float] | None] = [None] * len(self._candidates)
        self._bad = [0.0] * len(self._candidates)
        # the output curve: y = c + d (s + q min(d, horizon)), d = x - xr
        self._xr = 0
        self._c = 0.0
        self._s = self.prior_slope
        self._q = 0.0
        self._span = 0
        self._measured = False
        self._run = 0  # > 0: pairs in a run below the line; < 0: above
        self._run_since = 0
        self._run_pairs: list[tuple[int, int]] = []

    def reset(self) -> None:
        """Forget every point (keeping a skew measured over a minute as the prior for the next segment)."""
        if self._measured and self._span >= TRUSTED_PRIOR_SPAN_USEC:
            self.prior_slope = self._s
            self._prior_trusted = True
        self._start_segment()

    @property
    def span_usec(self) -> int:
        return self._span

    @property
    def wrap_offset(self) -> int:
        """What unwrapping has added to the device's stamps so far (multiples of the counter's 2**bits)."""
        return self._wrap_offset

    # -- the hot path -----------------------------------------------------------------------------------------

    def add(self, secondary: int, master: int) -> EstimatorEvent:
        """Feed one (device, master-arrival) pair; returns the clock event it revealed, if any."""
        raw = int(secondary)
        master = int(master)
        self.points += 1
        event = EstimatorEvent.NONE
        x = raw + self._wrap_offset
        if self._last_raw is not None and x < self._last_x:
            if self._unwraps(raw, master):
                x = raw + self._wrap_offset
            else:
                event = EstimatorEvent.BACKWARDS
        self._last_raw = raw
        self._last_master = master
        y = master - x
        if not event and self._seg_count >= SETTLE_POINTS:
            d = x - self._xr
            residual = y - (self._c + d * (self._s + self._q * (d if d < CURVE_HORIZON_USEC else CURVE_HORIZON_USEC)))
            median = self._median
            self._median = median * 1.03 if residual > median else max(median * 0.97, 1.0)
            threshold = STEP_MEDIAN_FACTOR * median
            if threshold < self.step_threshold_usec:
                threshold = self.step_threshold_usec
            if residual < -threshold:
                if self._run <= 0:
                    self._run, self._run_since, self._run_pairs = 0, x, []
                self._run += 1
                self._run_pairs.append((x, y))
                if self._run >= STEP_FORWARD_RUN:
                    event = EstimatorEvent.STEP_FORWARD
            elif residual > threshold:
                if self._run >= 0:
                    self._run, self._run_since, self._run_pairs = 0, x, []
                self._run -= 1
                if len(self._run_pairs) < self.step_streak:
                    self._run_pairs.append((x, y))
                if -self._run >= self.step_streak and x - self._run_since >= STEP_BACK_MIN_USEC:
                    event = EstimatorEvent.STEP_BACK
            elif self._run:
                self._run = 0
                self._run_pairs = []
        self._last_x = x
        if event:
            run = self._run_pairs if event != EstimatorEvent.BACKWARDS else []
            self.resets += 1
            self.reset()
            self.segment_start = self.points - 1 - len(run)
            for rx, ry in run:
                self._insert(rx, ry)
                self._seg_count += 1
            self._refit()
        if self._seg_x0 is None:
            self._seg_x0 = x
            if not event:
                self.segment_start = self.points - 1
        self._insert(x, y)
        self._seg_count += 1
        self._since_fit += 1
        if not self._run:
            since = self._since_fit
            elapsed = x - self._fit_x
            if since >= REFIT_POINTS and elapsed >= REFIT_USEC or elapsed >= REFIT_MAX_USEC \
                    or since >= self._seg_count >> 2:
                self._refit()
        return event

    def _unwraps(self, raw: int, master: int) -> bool:
        """A backwards device time that is the counter wrapping: the device advanced by about what the master
        clock did, once 2**k is added (k: the counter's width, or the bit length of the last value)."""
        last = self._last_raw
        assert last is not None
        bits = self.counter_bits if self.counter_bits is not None else last.bit_length()
        if bits < MIN_WRAP_BITS or bits >= 64 or last >= 1 << bits:
            return False
        advanced = raw + (1 << bits) - last
        elapsed = master - self._last_master
        tolerance = 0.01 * abs(elapsed) + max(4 * self._median, self.step_threshold_usec)
        if advanced < 0 or abs(advanced - elapsed) > min(tolerance, (1 << bits) / 4):
            return False
        self._wrap_offset += 1 << bits
        self.wraps += 1
        return True

    def _insert(self, x: int, y: int) -> None:
        """Into the current block, or a new one (merging pairs of blocks when there are too many)."""
        if self._seg_x0 is None:
            self._seg_x0 = x
        block = (x - self._seg_x0) // self._block_usec
        z = y - self._s * x
        if block == self._cur_id:
            if z < self._cur_z:
                self._cur_x, self._cur_y, self._cur_z = x, y, z
            return
        if self._cur_id >= 0:
            self._bx.append(self._cur_x)
            self._by.append(self._cur_y)
        self._cur_id, self._cur_x, self._cur_y, self._cur_z = block, x, y, z
        if len(self._bx) > MAX_BLOCKS:
            if self._block_usec < self._max_block_usec:
                self._merge()
            else:
                self._trim(x)

    def _merge(self) -> None:
        """Double the block length: neighbouring blocks keep the lower of their minima (under the current skew)."""
        self._block_usec *= 2
        x0, width, slope = self._seg_x0, self._block_usec, self._s
        xs, ys = [], []
        last_id = None
        for bx, by in zip(self._bx, self._by):
            block = (bx - x0) // width
            if block == last_id:
                if by - slope * bx < ys[-1] - slope * xs[-1]:
                    xs[-1], ys[-1] = bx, by
                continue
            xs.append(bx)
            ys.append(by)
            last_id = block
        self._bx, self._by = xs, ys
        self._cur_id = (self._cur_x - x0) // width
        if last_id == self._cur_id:  # the open block absorbs the last closed one
            if ys[-1] - slope * xs[-1] < self._cur_z:
                self._cur_x, self._cur_y, self._cur_z = xs[-1], ys[-1], ys[-1] - slope * xs[-1]
            xs.pop()
            ys.pop()

    def _trim(self, x: int) -> None:
        """Drop blocks older than the window, keeping at least MIN_BLOCKS."""
        cut = bisect_right(self._bx, x - self.window_usec)
        cut = min(cut, max(0, len(self._bx) - MIN_BLOCKS))
        if cut:
            del self._bx[:cut]
            del self._by[:cut]

    # -- refitting the candidates --------------------------------------------------------------------------------

    def _refit(self) -> None:
        bx = self._bx + [self._cur_x]
        by = self._by + [self._cur_y]
        newest = self._cur_x
        self._fit_x_prev, self._fit_x = self._fit_x, newest
        self._since_fit = 0
        x = np.array(bx, dtype=np.int64)
        y = np.array(by, dtype=np.float64)
        span = int(x[-1] - x[0]) if self._seg_x0 is None else newest - self._seg_x0
        self._span = span
        self._xr = newest
        t = (x - newest) * 1e-6  # seconds before the newest pair
        prior = self._prior_trusted and span < PRIOR_SPAN_USEC
        if x.size < 2 or span < self.min_span_usec or prior:
            slope = self.prior_slope
            self._c, self._s, self._q = float(np.min(y - slope * 1e6 * t)), slope, 0.0
            self._measured = False
            return
        # blocks that came since the last refit: they judge each candidate's previous fit
        fresh = x > self._fit_x_prev
        t_prev = (x[fresh] - self._fit_x_prev) * 1e-6
        y_fresh = y[fresh]
        best, best_value = -1, -math.inf
        fallback, fallback_bad = 0, math.inf
        n = x.size
        for k, (window_index, degree) in enumerate(self._candidates):
            start = int(np.searchsorted(t, -self._windows[window_index] * 1e-6))
            start = min(start, max(0, n - MIN_BLOCKS))
            if degree == 2 and n - start < 3 * MIN_BLOCKS // 2:
                self._fits[k] = None
                continue
            previous = self._fits[k]
            if previous is not None and t_prev.size:
                c0, c1, c2 = previous
                predicted = c0 + t_prev * (c1 + c2 * t_prev)
                undercut = float(np.max(predicted - y_fresh))
                self._bad[k] = max(undercut, 0.5 * self._bad[k])
            fit = lower_fit(t[start:], y[start:], degree)
            self._fits[k] = fit
            if self._bad[k] <= UNDERCUT_TOLERANCE_USEC:
                # the longest window; within it the higher of line and parabola (the lower one lags a bend)
                value = (n - start) * 1e9 + fit[0]
                if value > best_value:
                    best, best_value = k, value
            elif self._bad[k] < fallback_bad:
                fallback, fallback_bad = k, self._bad[k]
        if best < 0:
            best = fallback
        c0, c1, c2 = self._fits[best]  # type: ignore[misc]
        slope = c1 * 1e-6  # µs per µs
        if not -self.max_skew <= slope <= self.max_skew:
            slope = max(-self.max_skew, min(self.max_skew, slope))
            c2 = 0.0
        self._c, self._s, self._q = c0, slope, c2 * 1e-12
        self._measured = True

    # -- output -----------------------------------------------------------------------------------------------

    @property
    def slope(self) -> float:
        """d(master - device)/d(device) of the output at the newest pair."""
        return self._s

    @property
    def line(self) -> Line:
        """The tangent of the output at the last refit (see :meth:`master_times` for the curve)."""
        return Line(self._xr, self._c - self.min_latency_usec, self._s)

    @property
    def skew_ppm(self) -> float:
        """Device clock rate error in ppm (positive: device clock fast)."""
        return -self._s / (1 + self._s) * 1e6

    def master_time(self, secondary: int) -> float:
        """Estimated master time of an event the device stamped ``secondary`` (µs, float; unwrapped like the
        pairs)."""
        x = secondary + self._wrap_offset
        d = x - self._xr
        return x + self._c - self.min_latency_usec + d * (self._s + self._q * (d if d < CURVE_HORIZON_USEC
                                                                                  else CURVE_HORIZON_USEC))

    def master_times(self, secondary: np.ndarray) -> np.ndarray:
        """:meth:`master_time` over an array of device times (float µs)."""
        x = np.asarray(secondary, dtype=np.float64) + self._wrap_offset
        d = x - self._xr
        return x + self._c - self.min_latency_usec + d * (self._s + self._q * np.minimum(d, CURVE_HORIZON_USEC))


def lower_fit(t: np.ndarray, y: np.ndarray, degree: int) -> tuple[float, float, float]:
    """A polynomial (degree 1 or 2, coefficients of 1, t, t**2) lying below every point with the least summed gap
    for its curvature: a line is the LP lower line (the lower hull's edge spanning the mean t; ML under
    exponential delays). A parabola takes its curvature from least squares on the lower points (refitted twice
    on the points below the fit) and is then the LP lower line of ``y - c2 t**2``."""
    c2 = 0.0
    if degree == 2:
        keep_t, keep_y = t, y
        coefficients = _least_squares(keep_t, keep_y, 2)
        for _ in range(2):
            below = keep_y <= _evaluate(coefficients, keep_t)
            if np.count_nonzero(below) <= 4:
                break
            keep_t, keep_y = keep_t[below], keep_y[below]
            coefficients = _least_squares(keep_t, keep_y, 2)
        c2 = coefficients[2]
        y = y - c2 * t * t
    c0, c1 = lp_lower_line(t.tolist(), y.tolist(), float(t.mean()))
    return c0, c1, c2


def lp_lower_line(t: list[float], y: list[float], mean_t: float) -> tuple[float, float]:
    """Intercept (at t = 0) and slope of the lower hull edge spanning ``mean_t`` (t increasing)."""
    hx: list[float] = []
    hy: list[float] = []
    for x, v in zip(t, y):
        while len(hx) >= 2 and (v - hy[-2]) * (hx[-1] - hx[-2]) <= (hy[-1] - hy[-2]) * (x - hx[-2]):
            hx.pop()
            hy.pop()
        if hx and x == hx[-1]:
            if v >= hy[-1]:
                continue
            hx.pop()
            hy.pop()
        hx.append(x)
        hy.append(v)
    if len(hx) < 2:
        return hy[0] if hy else 0.0, 0.0
    i = min(max(bisect_right(hx, mean_t) - 1, 0), len(hx) - 2)
    slope = (hy[i + 1] - hy[i]) / (hx[i + 1] - hx[i])
    return hy[i] - slope * hx[i], slope


def _evaluate(coefficients: tuple[float, float, float], t: np.ndarray) -> np.ndarray:
    c0, c1, c2 = coefficients
    return c0 + t * (c1 + c2 * t)


def _least_squares(t: np.ndarray, y: np.ndarray, degree: int) -> tuple[float, float, float]:
    n = t.size
    if n == 1:
        return float(y[0]), 0.0, 0.0
    mean_t, mean_y = float(t.mean()), float(y.mean())
    u = t - mean_t
    v = y - mean_y
    suu = float(np.dot(u, u))
    if suu <= 0:
        return mean_y, 0.0, 0.0
    suv = float(np.dot(u, v))
    if degree == 1 or n < 4:
        b = suv / suu
        return mean_y - b * mean_t, b, 0.0
    w = u * u
    mean_w = float(w.mean())
    w = w - mean_w
    suw = float(np.dot(u, w))
    sww = float(np.dot(w, w))
    swv = float(np.dot(w, v))
    det = suu * sww - suw * suw
    if det <= 1e-12 * suu * sww:
        b = suv / suu
        return mean_y - b * mean_t, b, 0.0
    b = (suv * sww - swv * suw) / det  # coefficient of u
    q = (swv * suu - suv * suw) / det  # coefficient of u**2 - mean_w
    # y = mean_y + b (t - m) + q ((t - m)**2 - mean_w)
    c2 = q
    c1 = b - 2 * q * mean_t
    c0 = mean_y - b * mean_t + q * (mean_t * mean_t - mean_w)
    return c0, c1, c2


# ---------------------------------------------------------------------------------------------------------------
# Offline


def find_steps_envelope(secondary: np.ndarray, master: np.ndarray, *,
               step_threshold_usec: int = DEFAULT_STEP_THRESHOLD_USEC, counter_bits: int | None = None) -> np.ndarray:
    """Indices where a new clock segment starts, as the online estimator finds them (a backwards device time that
    is no counter wrap, or a run of pairs off the line: the first pair of the run)."""
    x = np.asarray(secondary, dtype=np.int64)
    m = np.asarray(master, dtype=np.int64)
    if x.shape != m.shape or x.ndim != 1:
        raise ConfigError("secondary and master must be 1-D arrays of the same length")
    estimator = EnvelopeEstimator(step_threshold_usec=step_threshold_usec, counter_bits=counter_bits)
    starts = []
    add = estimator.add
    for s, t in zip(x.tolist(), m.tolist()):
        if add(s, t):
            starts.append(estimator.segment_start)
    return np.array(sorted(set(s for s in starts if 0 < s < x.size)), dtype=np.int64)


def _online_pass(x: list[int], m: list[int], step_threshold_usec: int, counter_bits: int | None,
                 window_usec: int) -> tuple[np.ndarray, np.ndarray]:
    """The online estimate at every pair, and how long (device µs) its clock segment had run there."""
    estimator = EnvelopeEstimator(step_threshold_usec=step_threshold_usec, counter_bits=counter_bits,
                               window_usec=window_usec)
    out = np.empty(len(x))
    age = np.empty(len(x))
    add, master_time = estimator.add, estimator.master_time
    for k, (s, t) in enumerate(zip(x, m)):
        add(s, t)
        out[k] = master_time(s)
        age[k] = estimator.span_usec
    return out, age


def map_offline_envelope(secondary: np.ndarray, master: np.ndarray, *, window_usec: int = DEFAULT_WINDOW_USEC,
                step_threshold_usec: int = DEFAULT_STEP_THRESHOLD_USEC, min_latency_usec: int = 0,
                counter_bits: int | None = None) -> np.ndarray:
    """Corrected master timestamps (int64) for whole arrays of pairs, using past *and* future points.

    The online estimator runs forward, and backward (device time negated, so the lower envelope stays a lower
    envelope); each pair takes both estimates weighted by how long each pass had been in its clock segment there
    (a pass right after a segment start is still warming up, the other one is not). Output never exceeds the
    receive time and never decreases.
    """
    x = np.asarray(secondary, dtype=np.int64)
    m = np.asarray(master, dtype=np.int64)
    if x.shape != m.shape or x.ndim != 1:
        raise ConfigError("secondary and master must be 1-D arrays of the same length")
    if x.size == 0:
        return m.copy()
    if counter_bits is None and np.any(np.diff(x) < 0):
        # unwrap as the forward pass does, so that the backward pass sees the same device times
        probe = EnvelopeEstimator(step_threshold_usec=step_threshold_usec)
        unwrapped = np.empty(x.size, dtype=np.int64)
        for k, (s, t) in enumerate(zip(x.tolist(), m.tolist())):
            probe.add(s, t)
            unwrapped[k] = s + probe._wrap_offset
        x = unwrapped
    forward, age_forward = _online_pass(x.tolist(), m.tolist(), step_threshold_usec, counter_bits, window_usec)
    y = m - x
    backward_neg, age_backward = _online_pass((-x[::-1]).tolist(), (y[::-1] - x[::-1]).tolist(),
                                              step_threshold_usec, counter_bits, window_usec)
    # backward pass: secondary' = -x, master' = y - x, so master_time' = -x + y_est: the estimate is x + y_est
    backward = (backward_neg + 2 * x[::-1])[::-1]
    age_backward = age_backward[::-1]
    weight = (age_forward + 1.0) / (age_forward + age_backward + 2.0)
    out = weight * forward + (1 - weight) * backward
    out = np.minimum(np.rint(out - min_latency_usec), m)
    return np.maximum.accumulate(out).astype(np.int64)
