"""Drift-aware clock estimator for one-sided transport latency: the lower envelope of (device, master) pairs.

A message stamped ``secondary`` on the device clock arrives at master time ``master = f(secondary) + d`` with a
transport delay ``d >= d_min`` that is one-sided and heavy-tailed (USB frames, scheduling, spikes). The mean or
median of ``master - secondary`` (Syntalos) follows the *centre* of that delay distribution; its lower edge is far
better defined. So we keep the lower convex hull of the points ``(x = secondary, y = master - secondary)`` and take
the hull edge spanning the centroid of the window's x values: that line lies below every point and minimises the
summed gap (the linear-programming estimator of Moon, Skelly & Towsley; ML under exponential delays). Its slope is
the skew (drift), its value at ``x`` the earliest possible arrival, i.e. the event's master time plus ``d_min``.

Online (:class:`DriftEstimator`): two staggered hulls (a full one used for output and a younger one that
replaces it once the full one spans the window, 90 s stretched to hold 256 pairs, and the younger one half of
it; on a USB frame grid also once their skews agree) follow drift changes and crystal wander with O(window)
memory; a centroid edge among the newest, or after a hand-over one whose end no later
floor point confirms yet (a flat stair of a sweeping USB frame phase), gives way to the neighbouring edge closer to
the previous skew (before the first hand-over only while the points stay near that skew's line). When the arrivals
near the floor sit on a 1 ms grid (USB full-speed frames), the floor shows only as the sample phase sweeps past a
frame edge, at the skew's pace; at low skew the window then widens to two sweeps (up to an hour at 0.56 ppm).
Until then the envelope may sit a stair's height (a third of a frame at 30 Hz) above the floor. So during the
warm-up (from each start to the first hand-over) on a *prompt* frame grid, where arrivals sit on the grid, the
events' own phases do not, and nearly all come within a frame of the floor, every arrival on the grid is taken to
have waited less than a frame: the floor line then lies at most a frame below the upper hull of those arrivals too,
and the output is the envelope moved into that bracket (to its middle when it is wide), never more than half the
bracket off. A bracket no line fits (an arrival that waited longer, a drift change bending the floor) ends it.
Each point costs amortised O(1) (monotone-chain stack) plus an O(log hull) bisection. A point far *below* the
line (once the segment holds 32 points), a sustained run far *above* it (twice the threshold, at least 16 points
over 1 s, starting right after a point near the line: an offset jump, not residuals creeping up under a wrong
skew), or a device timestamp going backwards that is no counter wrap means the device clock stepped (the
threshold: 1 ms or 4x the median distance from the line, whichever is larger, so the drops of a stair-shaped
floor are not steps): the hulls restart, and a skew that a hull edge measured over at least a
minute is kept for the next half window (a prior or a start-up edge is not: kept from reset to reset, it would
never be re-measured).
Offline (:func:`map_offline`, :func:`fit_lower_line`): the same LP line, fitted with numpy over whole arrays,
windowed and cross-faded, with the same kind of step detection.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from hwlink.errors import ConfigError

DEFAULT_WINDOW_USEC = 90_000_000  # short enough to follow crystal wander (chord vs arc ~ curvature W^2 / 8)...
WINDOW_MIN_POINTS = 256  # ...stretched to hold this many pairs (slow events: the envelope needs points)
DEFAULT_MIN_SPAN_USEC = 1_000_000
DEFAULT_STEP_THRESHOLD_USEC = 1_000
DEFAULT_STEP_STREAK = 16
STEP_BACK_MIN_USEC = 250_000  # a run above the envelope starting later than this after a near point is creeping
STEP_BACK_RUN_USEC = 1_000_000  # a run above the envelope must last this long to be a step back (stalls, bursts
# and spikes end sooner; a step lasts)
MIN_STEP_BLOCK_POINTS = 16  # find_steps' blocks hold at least this many pairs
SETTLE_POINTS = 32  # points of a clock segment before a point below the line can be a step forward
STEP_MEDIAN_FACTOR = 4  # the step threshold is at least 4x the median delay above the envelope: a stair-shaped
# floor (arrivals released on a grid: latency timer, radio connection interval) drops by at most about twice that
TRUSTED_PRIOR_SPAN_USEC = 60_000_000  # a skew measured over a minute (or half the window) is kept across a step
SKEW_AGREEMENT = 2e-6  # 2 ppm: the younger hull takes over only when it agrees this well
UNCONFIRMED_USEC = 1_000_000  # a hull edge ending this close to the newest point may be a stair of the floor
USB_FRAME_USEC = 1_000  # full-speed USB: the host collects a device's bytes once per 1 ms frame
FRAME_SWEEPS = 2  # on a frame grid the window spans two sweeps of the sample phase over a frame (at the skew's pace)
FRAME_GRID_ALPHA = 1 / 64  # the frame-grid statistic averages over about the last 64 arrivals near the floor
FRAME_GRID_LOCK = 0.9  # resultant length of the arrival phases above which they sit on the grid (jitter < 70 µs)
FRAME_GRID_MIN_POINTS = 16  # arrivals near the floor before the frame-grid statistics mean anything
FRAME_EVENT_SPREAD = 0.5  # below this resultant length the events' own phases are spread over the frame
FRAME_PROMPT_SHARE = 0.8  # share of arrivals within one frame of the floor above which frames come promptly
FRAME_GRID_TOLERANCE_USEC = 125  # an arrival this close to the grid came with its frame
FRAME_BRACKET_EVERY_USEC = 500_000  # the bracket the frames leave open is recomputed this often...
FRAME_BRACKET_EVERY_POINTS = 32  # ...and after at least this many points
FRAME_BRACKET_SLACK_USEC = 20  # ...or at once when a point falls this far outside it
FRAME_BRACKET_REACH_USEC = 150  # the output stays within this of every floor line the frames allow (or mid-way)
DEFAULT_MAX_WINDOW_USEC = 3_600_000_000  # on a frame grid: an hour, two sweeps at 0.56 ppm
FRAME_PHASE_TO_RADIANS = 2 * math.pi / USB_FRAME_USEC
FRAME_GRID_COS_TOLERANCE = math.cos(FRAME_GRID_TOLERANCE_USEC * FRAME_PHASE_TO_RADIANS)
DEFAULT_MAX_SKEW = 1e-2  # 1 %: beyond even ceramic resonators (Arduino Uno ~0.5 %); steeper is start-up noise
MIN_WRAP_BITS = 8  # narrower counters wrap too often to unwrap from timing alone
WRAP_DELAY_SPREAD_USEC = 20_000  # two consecutive pairs' delays differ by less than this (spikes, stalls aside)


def sweep_window(slope: float, on_frame_grid: bool, window_usec: int, max_window_usec: int) -> int:
    """The window, or on a frame grid the time the skew needs to sweep a sample's phase over the frame twice
    (at most ``max_window_usec``) when that is longer."""
    slope = abs(slope)
    if not on_frame_grid or slope * window_usec >= FRAME_SWEEPS * USB_FRAME_USEC:
        return window_usec
    return int(min(FRAME_SWEEPS * USB_FRAME_USEC / slope if slope > 0 else math.inf, max_window_usec))


class EstimatorEvent(IntEnum):
    """What :meth:`DriftEstimator.add` saw besides an ordinary point."""

    NONE = 0
    BACKWARDS = 1  # device timestamp went backwards: clock reset or step back
    STEP_FORWARD = 2  # point far below the envelope: device clock jumped ahead
    STEP_BACK = 3  # sustained run far above the envelope: device clock jumped back (less than one sample gap)


class LowerHull:
    """Lower convex hull of points appended in non-decreasing x, in coordinates relative to the first point.

    Relative integer coordinates keep the cross products exact and small.
    """

    __slots__ = ("x0", "y0", "xs", "ys", "count", "sum_x", "last_x")

    def __init__(self, x0: int, y0: int) -> None:
        self.x0 = x0
        self.y0 = y0
        self.xs: list[int] = [0]
        self.ys: list[int] = [0]
        self.count = 1
        self.sum_x = 0
        self.last_x = 0

    def add(self, x_abs: int, y_abs: int) -> None:
        x = x_abs - self.x0
        y = y_abs - self.y0
        self.count += 1
        self.sum_x += x
        self.last_x = x
        xs, ys = self.xs, self.ys
        if x == xs[-1]:
            if y >= ys[-1]:
                return
            xs.pop()
            ys.pop()
            if not xs:
                xs.append(x)
                ys.append(y)
                return
        while len(xs) >= 2:
            x1, y1, x2, y2 = xs[-2], ys[-2], xs[-1], ys[-1]
            if (y - y1) * (x2 - x1) <= (y2 - y1) * (x - x1):
                xs.pop()
                ys.pop()
            else:
                break
        xs.append(x)
        ys.append(y)

    @property
    def span(self) -> int:
        return self.last_x

    def centroid_edge(self, previous: float | None = None, unconfirmed_usec: int = 0) -> int:
        """Index of the hull edge spanning the mean x (the LP optimum), -1 with a single vertex.

        When that is one of the three newest edges (the newest vertices may be latency spikes) or ends within
        ``unconfirmed_usec`` of the newest point (no later floor point confirms its end; a few spikes after it
        push it further back than three edges), and there is an earlier one, the one whose slope is closer to
        ``previous`` wins: with a slowly sweeping latency floor (USB frame phase against the sample clock) the
        floor shows only now and then, and the stretch after its last appearance may be a flat stair of the
        sweep, not the clock.
        """
        xs, ys = self.xs, self.ys
        last = len(xs) - 2
        if last < 0:
            return -1
        i = min(max(bisect_right(xs, self.sum_x / self.count) - 1, 0), last)
        if previous is None or i == 0 or i < last - 2 and xs[i + 1] < self.last_x - unconfirmed_usec:
            return i
        slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
        earlier = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
        return i - 1 if abs(earlier - previous) < abs(slope - previous) else i

    def edge_slope(self, i: int) -> float:
        xs, ys = self.xs, self.ys
        return (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])

    def centroid_slope(self, previous: float | None = None, unconfirmed_usec: int = 0) -> float | None:
        """Slope of :meth:`centroid_edge`, None with a single vertex."""
        i = self.centroid_edge(previous, unconfirmed_usec)
        return None if i < 0 else self.edge_slope(i)

    def support(self, slope: float) -> tuple[int, int]:
        """The vertex (relative x, y) where a line of this slope touches the hull from below."""
        xs, ys = self.xs, self.ys
        low, high = 0, len(xs) - 1
        while low < high:  # first vertex whose outgoing edge is at least as steep as ``slope``
            mid = (low + high) // 2
            if (ys[mid + 1] - ys[mid]) >= slope * (xs[mid + 1] - xs[mid]):
                high = mid
            else:
                low = mid + 1
        return xs[low], ys[low]


@dataclass(frozen=True)
class Line:
    """``master = secondary + intercept + slope * (secondary - reference)``: the mapping at one moment."""

    reference: int
    intercept: float
    slope: float

    def master(self, secondary: np.ndarray | float) -> np.ndarray | float:
        return secondary + self.intercept + self.slope * (np.asarray(secondary, dtype=np.float64) - self.reference)

    @property
    def skew_ppm(self) -> float:
        """Device clock rate error in ppm (positive: device clock fast)."""
        return -self.slope / (1 + self.slope) * 1e6


class DriftEstimator:
    """Online lower-envelope estimator of the device -> master mapping (offset and skew).

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
        max_window_usec: int = DEFAULT_MAX_WINDOW_USEC,
        frame_bracket: bool = True,
        counter_bits: int | None = None,
    ) -> None:
        if window_usec < 4 * min_span_usec or min_span_usec <= 0:
            raise ConfigError("estimator window must be positive and at least 4x the minimum span")
        if max_window_usec < window_usec:
            raise ConfigError("the estimator's maximum window must not be shorter than its window")
        if step_threshold_usec <= 0 or step_streak < 1:
            raise ConfigError("step threshold and streak must be positive")
        self.window_usec = int(window_usec)
        self.min_span_usec = int(min_span_usec)
        self.step_threshold_usec = int(step_threshold_usec)
        self.step_streak = int(step_streak)
        self.max_skew = float(max_skew)
        self.min_latency_usec = int(min_latency_usec)
        self.max_window_usec = int(max_window_usec)
        self.frame_bracket = bool(frame_bracket)
        self.set_counter_bits(counter_bits)
        self.wraps = 0
        self._wrap_offset = 0  # added to the device's stamps: 2**bits per counter wrap seen
        self._last_raw: int | None = None
        # running means over arrivals near the floor (each read on its own, not held back behind a spike): the
        # phase of their receive times on a 1 ms frame grid, the phase of the events themselves (the floor line
        # at their device time), and over all such arrivals the share within one frame of the floor
        self._grid_cos = self._grid_sin = 0.0
        self._event_cos = self._event_sin = 0.0
        self._grid_count = 0
        self._prompt_share = 0.0
        self._prompt_count = 0
        self._frames_prompt = False
        # the frames have looked prompt once: from then on every arrival that came with its frame is collected (the
        # events' phases may look clustered over 64 arrivals again, e.g. at 333 Hz, while they sweep the frame)
        self._frames_seen_prompt = False
        # warm-up on a prompt frame grid, from each start until the first hand-over: the upper hull (stored negated)
        # of the arrivals that came with their frame, and the bracket of floor lines it leaves open with the floor
        # hull, recomputed now and then
        self._bracketing = self.frame_bracket
        self._ceiling: LowerHull | None = None
        self._bracket: FloorBracket | None = None
        self._bracket_due_at = 0
        self._bracket_due_count = 0
        self.prior_slope = 0.0
        self._prior_span = self.min_span_usec  # the new hull's span below which the prior skew is used
        self._measured = False  # the current skew is a hull edge's slope, not the prior or the max-skew clamp
        self.resets = 0
        self._active: LowerHull | None = None
        self._pending: LowerHull | None = None
        # an unconfirmed newest edge yields to the previous skew only once a hull has spanned the window: before
        # that the previous skew may be an edge from the arbitrary first point, and preferring it would lock it in
        self._unconfirmed_usec = 0
        self._last_secondary: int | None = None
        self._last_master = 0
        self._median = float(self.step_threshold_usec) / STEP_MEDIAN_FACTOR  # running median delay above the line
        self._above_streak = 0
        self._above_since = 0
        self._near_at = 0  # device time of the newest point within the threshold of the line
        self._far_count = 0  # points since then
        self._above_abrupt = False  # the current run above the line began right after such a point
        # the current skew has let the points drift away from the line: it loses its claim as the previous skew
        self._skew_doubted = False
        # the lower envelope, cached after each add: arrival floor = secondary + _c + _s * (secondary - _xr)
        self._xr = 0
        self._c = 0.0
        self._s = 0.0
        # the output line when it is not the envelope: during the warm-up on a prompt frame grid, moved into the
        # bracket the frames leave open
        self._moved = False
        self._out_xr = 0
        self._out_c = 0.0
        self._out_s = 0.0

    def set_counter_bits(self, bits: int | None) -> None:
        """The device counter's width: a backwards jump of 2**bits that matches the master clock's advance is a
        wrap, unwrapped (None: an obvious wrap is still detected, with 2**k from the last value's bit length)."""
        if bits is not None and not MIN_WRAP_BITS <= int(bits) <= 64:
            raise ConfigError(f"counter bits must be within {MIN_WRAP_BITS}..64, got {bits}")
        self.counter_bits = None if bits is None else int(bits)

    @property
    def wrap_offset(self) -> int:
        """What unwrapping has added to the device's stamps so far."""
        return self._wrap_offset

    def _unwraps(self, raw: int, master: int) -> bool:
        """A backwards device time that is the counter wrapping: with 2**k added (k: the counter's width, or the
        bit length of the last value) the device advanced by about what the master clock did (1 % plus the
        spread of two pairs' delays allowed, never a quarter of the counter's range)."""
        last = self._last_raw
        if last is None:
            return False
        bits = self.counter_bits if self.counter_bits is not None else last.bit_length()
        if bits < MIN_WRAP_BITS or bits >= 64 or last >= 1 << bits or raw < 0:
            return False
        advanced = raw + (1 << bits) - last
        elapsed = master - self._last_master
        tolerance = min(0.01 * abs(elapsed) + max(2 * self.step_threshold_usec, WRAP_DELAY_SPREAD_USEC),
                        (1 << bits) / 4)
        if advanced < 0 or abs(advanced - elapsed) > tolerance:
            return False
        self._wrap_offset += 1 << bits
        self.wraps += 1
        return True

    def reset(self) -> None:
        """Forget every point (keeping the learned skew as the prior for the next start)."""
        self._prior_span = self.min_span_usec
        if self._active is not None and self._active.span >= self.min_span_usec:
            self.prior_slope = self._s
            if self._measured and self._active.span >= min(TRUSTED_PRIOR_SPAN_USEC, self.window_usec // 2):
                # a step does not change the device's rate: keep the well-measured skew for half a window (only
                # one the hull measured itself: a prior carried on from reset to reset would never be re-measured)
                self._prior_span = max(self.min_span_usec, self.window_usec // 2)
        self._active = self._pending = None
        self._bracketing = self.frame_bracket
        self._ceiling = None
        self._bracket = None
        self._unconfirmed_usec = 0
        self._above_streak = 0
        self._far_count = 0
        self._skew_doubted = False

    @property
    def span_usec(self) -> int:
        return self._active.span if self._active is not None else 0

    def add(self, secondary: int, master: int) -> EstimatorEvent:
        """Feed one (device, master-arrival) pair; returns the clock event it revealed, if any."""
        raw = int(secondary)
        master = int(master)
        secondary = raw + self._wrap_offset
        if self._last_secondary is not None and secondary < self._last_secondary and self._unwraps(raw, master):
            secondary = raw + self._wrap_offset
        self._last_raw = raw
        y = master - secondary
        event = EstimatorEvent.NONE
        active = self._active
        if active is not None:
            if secondary < self._last_secondary:  # type: ignore[operator]
                event = EstimatorEvent.BACKWARDS
            else:
                floor = self._c + self._s * (secondary - self._xr)
                residual = y - floor
                own_read = master != self._last_master  # not held back in one read with the point before it
                # (arrivals held back behind a spike are off the frame grid)
                if own_read and (self._bracketing or residual <= self.step_threshold_usec):
                    self._observe_frame_phase(secondary, master, y, floor, residual)
                if residual <= self.step_threshold_usec:
                    self._near_at = secondary
                    self._far_count = 0
                else:
                    self._far_count += 1
                    if self._far_count >= self.step_streak and secondary - self._near_at >= STEP_BACK_MIN_USEC:
                        self._skew_doubted = True
                # the step threshold: the configured one, or 4x the median distance from the line (multiplicative
                # tracker; a property of the link, kept across resets) when the link is that spread. A forward step
                # needs SETTLE_POINTS in the segment: the first points of a stair-shaped floor drop stair by stair
                median = self._median
                if -median <= residual <= median:
                    self._median = median * 0.97 if median > 1.0 else 1.0
                else:
                    self._median = median * 1.03
                step = STEP_MEDIAN_FACTOR * median
                if step < self.step_threshold_usec:
                    step = self.step_threshold_usec
                if residual < -step and active.count >= SETTLE_POINTS:
                    event = EstimatorEvent.STEP_FORWARD
                elif residual > 2 * step:
                    if not self._above_streak:
                        self._above_since = secondary
                        # an offset jump lifts the points at once; a wrong skew lets them creep up through the
                        # band between one and two thresholds, and restarting would only re-measure it wrongly
                        self._above_abrupt = secondary - self._near_at <= STEP_BACK_MIN_USEC
                    self._above_streak += 1
                    if self._above_streak >= self.step_streak and self._above_abrupt \
                            and secondary - self._above_since >= STEP_BACK_RUN_USEC:
                        event = EstimatorEvent.STEP_BACK
                else:
                    self._above_streak = 0
            if event:
                self.reset()
                self.resets += 1
                active = None
        self._last_secondary = secondary
        self._last_master = master
        if active is None:
            active = self._active = LowerHull(secondary, y)
        else:
            active.add(secondary, y)
            pending = self._pending
            if pending is not None:
                pending.add(secondary, y)
            # the window is never shorter than window_usec: work it out only when a hand-over may be due
            if active.span >= (self.window_usec if pending is not None else self.window_usec // 2):
                window = self._window
                if active.span >= window and pending is not None \
                        and pending.span >= window // 2 and self._pending_agrees(active, pending, window):
                    self._active, active = pending, pending
                    self._bracketing = False  # the full window now holds what the warm-up's bracket knew
                    self._ceiling = self._bracket = None
                    self._unconfirmed_usec = UNCONFIRMED_USEC
                    self._pending = LowerHull(secondary, y)
                elif pending is None and active.span >= window // 2:
                    self._pending = LowerHull(secondary, y)
        self._update_line(active)
        self._update_output(secondary, active)
        return event

    def _observe_frame_phase(self, secondary: int, master: int, y: int, floor: float, residual: float) -> None:
        """Update the frame-grid statistics with an arrival read on its own; while bracketing, one on the grid
        within a frame of the floor came with its frame and joins the ceiling hull."""
        bracketing = self._bracketing
        if bracketing:
            # the wait beyond the highest floor line the frames allow (the envelope until they do)
            bracket = self._bracket
            if bracket is None:
                wait = residual
            else:
                wait = y - bracket.high(secondary)
                if wait < -FRAME_BRACKET_SLACK_USEC \
                        or y - USB_FRAME_USEC > bracket.low(secondary) + FRAME_BRACKET_SLACK_USEC:
                    self._bracket_due_at = self._bracket_due_count = 0  # the bracket moved: recompute it now
            self._prompt_count += 1
            weight = max(FRAME_GRID_ALPHA, 1 / self._prompt_count)
            self._prompt_share += weight * ((wait <= USB_FRAME_USEC) - self._prompt_share)
            if wait > USB_FRAME_USEC:
                return
        elif residual > self.step_threshold_usec:
            return
        self._grid_count += 1
        weight = max(FRAME_GRID_ALPHA, 1 / self._grid_count)
        phase = master % USB_FRAME_USEC * FRAME_PHASE_TO_RADIANS
        cos_phase, sin_phase = math.cos(phase), math.sin(phase)
        self._grid_cos += weight * (cos_phase - self._grid_cos)
        self._grid_sin += weight * (sin_phase - self._grid_sin)
        if not bracketing:
            return
        event_phase = (floor + secondary) % USB_FRAME_USEC * FRAME_PHASE_TO_RADIANS
        self._event_cos += weight * (math.cos(event_phase) - self._event_cos)
        self._event_sin += weight * (math.sin(event_phase) - self._event_sin)
        grid_length = math.hypot(self._grid_cos, self._grid_sin)
        on_grid = self._grid_count >= FRAME_GRID_MIN_POINTS and grid_length > FRAME_GRID_LOCK  # as on_frame_grid
        self._frames_prompt = prompt = on_grid and math.hypot(self._event_cos, self._event_sin) < FRAME_EVENT_SPREAD \
            and self._prompt_share >= FRAME_PROMPT_SHARE
        self._frames_seen_prompt = self._frames_seen_prompt or prompt
        # on the grid: within the tolerance of the mean phase (cosine of the difference, from the dot product)
        if not self._frames_seen_prompt or not on_grid \
                or cos_phase * self._grid_cos + sin_phase * self._grid_sin < FRAME_GRID_COS_TOLERANCE * grid_length:
            return
        if self._ceiling is None:
            self._ceiling = LowerHull(secondary, -y)
        else:
            self._ceiling.add(secondary, -y)

    @property
    def frames_prompt(self) -> bool:
        """Whether (as last seen during the warm-up) arrivals come promptly on a USB frame grid: on the grid, not
        by the events' own period (a 1 kHz device with short delays clusters on a 1 ms grid too), and nearly all
        within one frame of the floor (an FTDI adapter's 16 ms latency timer would not be). Then each arrival on
        the grid waited less than a frame, which bounds the floor line from below as well."""
        return self._frames_prompt

    def _update_output(self, secondary: int, floor: LowerHull) -> None:
        """The output line: the envelope, or during the warm-up on a prompt frame grid, the envelope moved into
        the bracket the frames leave open (to its middle when it is wide). Until the sample phase has swept to
        the frame edge the envelope may be a stair's height late (up to a third of a frame at 30 Hz, for 20 s at
        10 ppm); the middle is never more than half the bracket off. A bracket that no line fits (an arrival
        that waited longer than a frame, a drift change bending the floor) ends the warm-up."""
        self._moved = False
        if not self._frames_prompt or not self._bracketing or self._ceiling is None:
            self._bracket = None
            return
        bracket = self._bracket
        self._bracket_due_count -= 1
        if secondary >= self._bracket_due_at and self._bracket_due_count <= 0:
            low_slope, high_slope = -self.max_skew, self.max_skew
            if floor.last_x < self._prior_span and self._prior_span > self.min_span_usec:
                # after a clock step the well-measured skew carries on: only lines near it are plausible
                low_slope, high_slope = self.prior_slope - SKEW_AGREEMENT, self.prior_slope + SKEW_AGREEMENT
            bracket = self._bracket = FloorBracket.between(floor, self._ceiling, USB_FRAME_USEC,
                                                           low_slope, high_slope)
            if bracket is None:
                self._bracketing = False
                self._ceiling = None
                return
            self._bracket_due_at = secondary + FRAME_BRACKET_EVERY_USEC
            self._bracket_due_count = FRAME_BRACKET_EVERY_POINTS
        if bracket is None:
            return
        low, high = bracket.low(secondary), bracket.high(secondary)
        envelope = self._c + self._s * (secondary - self._xr)
        reach = max(FRAME_BRACKET_REACH_USEC, (high - low) / 2)
        if high - reach <= envelope <= low + reach:
            return
        self._moved = True
        self._out_xr = secondary
        self._out_c = high - reach if envelope < high - reach else low + reach
        self._out_s = (bracket.low_slope + bracket.high_slope) / 2

    @property
    def on_frame_grid(self) -> bool:
        """Whether the recent receive times sit on a 1 ms grid (USB full-speed frames), not spread over it."""
        return self._grid_count >= FRAME_GRID_MIN_POINTS \
            and math.hypot(self._grid_cos, self._grid_sin) > FRAME_GRID_LOCK

    @property
    def _window(self) -> int:
        """The hull window: the configured one, or on a USB frame grid long enough for the sample phase to sweep
        a frame twice. There the floor shows only when the phase passes the frame edge, once per
        ``frame / |skew|`` (333 s at 3 ppm); a shorter window sees one flat stair of it and takes it for the
        skew. Only there: elsewhere a long window would follow drift changes more slowly."""
        active = self._active
        window = self.window_usec
        if active is not None and active.count > 1:  # stretched to hold WINDOW_MIN_POINTS pairs
            window = max(window, min(WINDOW_MIN_POINTS * active.span // (active.count - 1), self.max_window_usec))
        return sweep_window(self._s, self.on_frame_grid, window, self.max_window_usec)

    def _pending_agrees(self, active: LowerHull, pending: LowerHull, window: int) -> bool:
        """Hand over to the younger hull once its skew agrees with the full one's (or the full one spans two
        windows), on a frame grid only. A younger hull that saw the latency floor only once or twice can mistake
        a slowly sweeping floor (USB frame phase against the sample clock) for skew; the full one has seen more
        of it. Elsewhere the hand-over is due at the window: waiting for agreement while the skew wanders (a
        crystal's temperature) let the full hull grow to two windows and bow by the chord of the arc."""
        if active.span >= 2 * window or not self.on_frame_grid:
            return True
        slope_active, slope_pending = active.centroid_slope(self._previous_skew, self._unconfirmed_usec), \
            pending.centroid_slope(self._previous_skew, self._unconfirmed_usec)
        return slope_active is not None and slope_pending is not None \
            and abs(slope_active - slope_pending) <= SKEW_AGREEMENT

    @property
    def _previous_skew(self) -> float | None:
        """The skew a doubtful newest edge yields to; before the first hand-over, not once the points have drifted
        away from its line: it may be a steep edge from the arbitrary first point, and preferring it would lock it
        in. (After a hand-over the previous skew is the full hull's, and a flat stair of a sweeping floor can lift
        the points just as well.)"""
        return None if self._skew_doubted and not self._unconfirmed_usec else self._s

    def _update_line(self, hull: LowerHull) -> None:
        edge = hull.centroid_edge(self._previous_skew, self._unconfirmed_usec) \
            if hull.last_x >= self._prior_span else -1
        if edge >= 0:
            slope = hull.edge_slope(edge)
            if -self.max_skew <= slope <= self.max_skew:  # the edge's own vertex supports its line
                self._xr = hull.x0 + hull.xs[edge]
                self._c = hull.y0 + hull.ys[edge]
                self._s = slope
                self._measured = True
                return
            slope = self.max_skew if slope > 0 else -self.max_skew
        else:
            slope = self.prior_slope
        vx, vy = hull.support(slope)
        self._xr = hull.x0 + vx
        self._c = hull.y0 + vy
        self._s = slope
        self._measured = False

    @property
    def slope(self) -> float:
        """d(master - device)/d(device) of the current output line."""
        return self._out_s if self._moved else self._s

    @property
    def line(self) -> Line:
        if self._moved:
            return Line(self._out_xr, self._out_c - self.min_latency_usec, self._out_s)
        return Line(self._xr, self._c - self.min_latency_usec, self._s)

    @property
    def skew_ppm(self) -> float:
        """Device clock rate error in ppm (positive: device clock fast)."""
        return -self._s / (1 + self._s) * 1e6

    def master_time(self, secondary: int) -> float:
        """Estimated master time of an event the device stamped ``secondary`` (µs, float; unwrapped as the pairs
        are)."""
        secondary += self._wrap_offset
        if self._moved:
            return secondary + self._out_c - self.min_latency_usec + self._out_s * (secondary - self._out_xr)
        return secondary + self._c - self.min_latency_usec + self._s * (secondary - self._xr)


@dataclass(frozen=True)
class FloorBracket:
    """The lowest and highest floor lines (``y = master - secondary`` as a function of ``secondary``) lying below
    every point of a floor hull and at most a frame below every point of a ceiling hull, for device times at or
    after the newest point: the lowest has the smallest feasible slope, the highest the largest."""

    reference: int
    low_intercept: float
    low_slope: float
    high_intercept: float
    high_slope: float

    def low(self, secondary: int) -> float:
        return self.low_intercept + self.low_slope * (secondary - self.reference)

    def high(self, secondary: int) -> float:
        return self.high_intercept + self.high_slope * (secondary - self.reference)

    @classmethod
    def between(cls, floor: LowerHull, ceiling: LowerHull, frame_usec: float, min_slope: float,
                max_slope: float) -> FloorBracket | None:
        """The bracket, None if no line fits between the hulls (``ceiling`` stores the upper hull negated).

        A line of slope ``s`` fits iff every ceiling vertex ``p`` (less a frame) and floor vertex ``q`` satisfy
        ``p.y - s p.x <= q.y - s q.x``: each pair bounds ``s`` from one side, so the feasible slopes form an
        interval, and at device times after every point a line's lowest (highest) placement rises with ``s``.
        """
        shift_x, shift_y = ceiling.x0 - floor.x0, -ceiling.y0 - frame_usec - floor.y0
        ceiling_points = [(shift_x + x, shift_y - y) for x, y in zip(ceiling.xs, ceiling.ys)]
        low_slope, high_slope = min_slope, max_slope
        for floor_x, floor_y in zip(floor.xs, floor.ys):  # hull coordinates: small exact integers
            for ceiling_x, ceiling_y in ceiling_points:
                run = floor_x - ceiling_x
                if run > 0:
                    high_slope = min(high_slope, (floor_y - ceiling_y) / run)
                elif run < 0:
                    low_slope = max(low_slope, (floor_y - ceiling_y) / run)
                elif floor_y < ceiling_y:
                    return None
        if low_slope > high_slope:
            return None
        low = max(y - low_slope * x for x, y in ceiling_points)
        high = min(y - high_slope * x for x, y in zip(floor.xs, floor.ys))
        return cls(floor.x0, floor.y0 + low, low_slope, floor.y0 + high, high_slope)


# ---------------------------------------------------------------------------------------------------------------
# Offline: the same LP line over whole arrays


def fit_lower_line(secondary: np.ndarray, master: np.ndarray) -> Line:
    """The line below all points ``(secondary, master - secondary)`` minimising the summed gap (vectorised).

    The objective ``mean(y - s x) - min(y - s x)`` is convex and piecewise linear in the slope ``s``; its
    subgradient is ``x[argmin] - mean(x)``, so bisection on ``s`` finds the hull edge spanning the mean x.
    """
    x_abs = np.asarray(secondary, dtype=np.int64)
    if x_abs.size == 0:
        raise ConfigError("cannot fit a clock mapping to zero points")
    reference = int(x_abs[0])
    x = (x_abs - reference).astype(np.float64)
    y = (np.asarray(master, dtype=np.int64) - x_abs).astype(np.float64)
    mean_x = float(x.mean())
    if x[-1] - x[0] <= 0:
        return Line(reference, float(y.min()), 0.0)
    low, high = -DEFAULT_MAX_SKEW, DEFAULT_MAX_SKEW
    for _ in range(60):
        slope = 0.5 * (low + high)
        touching_x = x[np.argmin(y - slope * x)]
        if touching_x < mean_x:
            low = slope
        elif touching_x > mean_x:
            high = slope
        else:
            break
    slope = 0.5 * (low + high)
    return Line(reference, float(np.min(y - slope * x)), slope)


def find_steps(secondary: np.ndarray, master: np.ndarray, *, block_usec: int = 1_000_000,
               step_threshold_usec: int = DEFAULT_STEP_THRESHOLD_USEC) -> np.ndarray:
    """Indices where a new clock segment starts: device time went backwards, or the envelope jumped.

    The envelope is tracked by per-block minima of ``master - secondary`` (latency spikes never lower a
    minimum; a block holds at least ``MIN_STEP_BLOCK_POINTS`` pairs, so slow events are not cut at every pair);
    consecutive minima differing (beyond their median difference, the drift) by more than the threshold mark a
    step inside those blocks. The threshold is at
    least 4x the median delay above the block minima, as online: a stair-shaped floor drops by less. A rise
    into a block with under half the usual number of points (the tail of a recording, a few points after a gap)
    is not trusted: one latency spike there would otherwise cut off a segment of raw receive times.
    """
    x = np.asarray(secondary, dtype=np.int64)
    y = np.asarray(master, dtype=np.int64) - x
    starts = set((np.flatnonzero(np.diff(x) < 0) + 1).tolist())
    bounds = [0, *sorted(starts), x.size]
    if x.size > 1:
        gaps = np.diff(x)
        gaps = gaps[gaps > 0]
        if gaps.size:
            block_usec = max(block_usec, int(MIN_STEP_BLOCK_POINTS * np.median(gaps)))
    for begin, end in zip(bounds[:-1], bounds[1:]):
        block = (x[begin:end] - x[begin]) // block_usec
        first = np.flatnonzero(np.concatenate(([True], np.diff(block) != 0)))
        minima = np.minimum.reduceat(y[begin:end], first)
        counts = np.diff(np.append(first, end - begin))
        full = counts >= np.median(counts) / 2
        above = y[begin:end] - np.repeat(minima, counts)
        threshold = max(step_threshold_usec, STEP_MEDIAN_FACTOR * float(np.median(above)))
        rises = np.diff(minima)
        trend = float(np.median(rises)) if rises.size else 0.0  # the drift over one block (slow events: large)
        for k in np.flatnonzero(np.abs(rises - trend) > threshold):
            lo, hi = begin + first[k], begin + (first[k + 2] if k + 2 < first.size else end - begin)
            if minima[k + 1] < minima[k]:  # jumped ahead: first point far below the earlier level
                below = np.flatnonzero(y[lo:hi] < minima[k] + trend - threshold)
                starts.add(int(lo + below[0]))
            elif full[k + 1]:  # jumped back: the point after the last one near the earlier level
                near = np.flatnonzero(y[lo:hi] <= minima[k] + max(trend, 0) + threshold)
                starts.add(int(lo + near[-1] + 1))
    return np.array(sorted(s for s in starts if 0 < s < x.size), dtype=np.int64)


def frame_grid_window(secondary: np.ndarray, master: np.ndarray, window_usec: int, max_window_usec: int,
                      sample_limit: int = 20_000) -> int:
    """The offline counterpart of :attr:`DriftEstimator._window` for one clock segment: on a 1 ms USB frame
    grid at low skew, two sweeps of the sample phase over a frame (from an evenly thinned sample of the pairs)."""
    stride = max(1, secondary.size // sample_limit)
    x, m = secondary[::stride], master[::stride]
    own_read = np.concatenate(([True], master[1:] != master[:-1]))[::stride]  # not held back with the one before
    line = fit_lower_line(x, m)
    near = (m - line.master(x) <= USB_FRAME_USEC) & own_read
    phases = (m[near] % USB_FRAME_USEC) * FRAME_PHASE_TO_RADIANS
    on_grid = phases.size > 0 and math.hypot(float(np.mean(np.cos(phases))),
                                             float(np.mean(np.sin(phases)))) > FRAME_GRID_LOCK
    return sweep_window(line.slope, on_grid, window_usec, max_window_usec)


def map_offline(secondary: np.ndarray, master: np.ndarray, *, window_usec: int = DEFAULT_WINDOW_USEC,
                step_threshold_usec: int = DEFAULT_STEP_THRESHOLD_USEC, min_latency_usec: int = 0,
                max_window_usec: int = DEFAULT_MAX_WINDOW_USEC) -> np.ndarray:
    """Corrected master timestamps (int64) for whole arrays of pairs, using past *and* future points.

    Per clock segment, lower lines are fitted in windows overlapping by half and cross-faded between window
    centres (windows widened up to ``max_window_usec`` on a USB frame grid at low skew, as online); output never
    exceeds the receive time and never decreases.
    """
    x = np.asarray(secondary, dtype=np.int64)
    m = np.asarray(master, dtype=np.int64)
    if x.shape != m.shape or x.ndim != 1:
        raise ConfigError("secondary and master must be 1-D arrays of the same length")
    out = np.empty(x.size, dtype=np.float64)
    bounds = np.concatenate(([0], find_steps(x, m, step_threshold_usec=step_threshold_usec), [x.size]))
    if max_window_usec < window_usec:
        raise ConfigError("the maximum window must not be shorter than the window")
    for begin, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        xs, ms = x[begin:end], m[begin:end]
        window = window_usec
        if xs.size > 1:  # stretched to hold WINDOW_MIN_POINTS pairs, as online
            window = max(window, min(WINDOW_MIN_POINTS * int(xs[-1] - xs[0]) // (xs.size - 1), max_window_usec))
        half = max(frame_grid_window(xs, ms, window, max_window_usec) // 2, 1)
        span = int(xs[-1] - xs[0])
        count = max(1, -(-span // half))
        centres, lines = [], []
        for k in range(count + 1):
            lo_t, hi_t = xs[0] + (k - 1) * half, xs[0] + (k + 1) * half
            lo, hi = np.searchsorted(xs, [lo_t, hi_t], side="left")
            if hi - lo < 2:
                continue
            lines.append(fit_lower_line(xs[lo:hi], ms[lo:hi]))
            centres.append(float(xs[0] + k * half))
        if not lines:
            lines, centres = [fit_lower_line(xs, ms)], [float(xs[0])]
        references = np.array([line.reference for line in lines], dtype=np.float64)
        intercepts = np.array([line.intercept for line in lines])
        slopes = np.array([line.slope for line in lines])
        x_float = xs.astype(np.float64)
        position = np.interp(x_float, centres, np.arange(len(centres), dtype=np.float64))
        left = np.floor(position).astype(np.int64)
        right = np.minimum(left + 1, len(centres) - 1)
        weight = position - left
        from_left = x_float + intercepts[left] + slopes[left] * (x_float - references[left])
        from_right = x_float + intercepts[right] + slopes[right] * (x_float - references[right])
        out[begin:end] = (1 - weight) * from_left + weight * from_right
    out = np.minimum(np.rint(out - min_latency_usec), m)
    return np.maximum.accumulate(out).astype(np.int64)
