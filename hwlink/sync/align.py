"""Offline alignment of two clocks from a shared pulse train (TTL sync edges recorded by both devices).

Given the edge times of the same pulse train as seen on a master and a secondary clock — edges may be missing
on either side, and extra (glitch) edges may appear — :func:`align_edges`

1. finds the coarse lag: the densest cluster of edge-time differences among the first edges (for a periodic
   train this is only defined modulo the period: the lag closest to ``initial_offset`` wins, so give a hint when
   the streams start more than half a period apart);
2. matches edges greedily, nearest predicted edge within a quarter of the shortest edge interval, refitting a
   drift line on a window that grows 4x per pass, so drift of hundreds of ppm over hours stays matched;
3. drops outliers against a running median of the residuals (robust to slow, temperature-like drift changes);
4. fits a continuous piecewise-linear map secondary -> master by linear programming. Its pieces are as long as
   the clocks allow: starting from one straight line, the pieces are halved until the smallest achievable
   maximum edge residual (minimax) is within one sample, or pieces would hold fewer than
   ``min_edges_per_segment`` edges or number more than 4096 (the minimax LP only needs the convex-hull vertices of each piece's edges, a
   few per piece, so it stays small for days of pulses). On those pieces the least-squares map is taken if it
   keeps every edge within that bound (one sample, or the minimax value if larger), else the point nearest to
   it on the way to the minimax map that does. Least squares averages the quantization noise of many edges:
   constant drift gets a single accurate line, drift that wanders (temperature) gets as many pieces as needed;
5. reports QC: drift in ppm, max residual and the share of edges within 1 and 2 samples.

All times are plain numbers in one unit of your choice (seconds, µs, ...); ``sample_period`` is given in that
unit and is used for tolerances and the QC figures in samples.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwlink.errors import HwlinkError
from hwlink.sync.offline import PiecewiseLinearMap
from hwlink.sync.tsync import TSyncFileMode, TSyncWriter

__all__ = ["AlignError", "AlignmentQC", "Alignment", "align_edges", "simulate_edges", "SimulatedEdges"]

_COARSE_EDGES = 64  # master edges used for the coarse lag
_PREDICT_TAIL_PAIRS = 64  # matched pairs whose line predicts the edges beyond them
_RESIDUAL_MEDIAN_WINDOW = 15  # edges in the running median that outliers are judged against
_MAX_PIECES = 4096  # bounds the minimax LP (about 10 rows a piece) on days of pulses; QC reports what remains
_HULL_EDGES_PER_PIECE = 128  # the finest level whose hull vertices are found over all edges at once
_RESIDUAL_GOAL = 0.999  # samples: the edge residual bound the piecewise fit aims for (LP tolerances stay below 1)


class AlignError(HwlinkError, ValueError):
    """Edges cannot be aligned (too few, no overlap, nothing matches)."""


@dataclass(frozen=True)
class AlignmentQC:
    """Quality figures of an alignment; residuals are master minus mapped secondary, in samples."""

    master_edges: int
    secondary_edges: int
    matched: int
    outliers: int
    drift_ppm: float
    coarse_lag: float
    max_residual_samples: float
    within_1_sample: float
    within_2_samples: float

    def lines(self) -> list[str]:
        return [
            f"edges: master {self.master_edges}, secondary {self.secondary_edges}, matched {self.matched} "
            f"({self.outliers} rejected as outliers)",
            f"coarse lag: {self.coarse_lag:.9g}; drift {self.drift_ppm:+.3f} ppm (secondary vs master)",
            f"residuals: max {self.max_residual_samples:.3f} samples; within 1 sample "
            f"{100 * self.within_1_sample:.2f} %, within 2 samples {100 * self.within_2_samples:.2f} %",
        ]


@dataclass
class Alignment:
    """The result: a secondary -> master map, the matched edge pairs and QC."""

    mapping: PiecewiseLinearMap
    master_index: np.ndarray
    secondary_index: np.ndarray
    inlier: np.ndarray
    residuals_samples: np.ndarray
    sample_period: float
    qc: AlignmentQC

    def to_master(self, secondary_times: Any, out: np.ndarray | None = None) -> np.ndarray:
        return self.mapping(secondary_times, out=out)

    def write_tsync(self, path: str | os.PathLike[str], *, usec_per_unit: float = 1.0,
                    module_name: str = "hwlink align", collection_id: Any = None) -> None:
        """Store the map as a SYNCPOINTS tsync (device-time -> master-time, µs, int64) edlio and Syntalos read.

        Knots are rounded to whole µs (the format stores integers); at least 3 rows are written because edlio
        applies only the initial offset to files of 2 rows or fewer.
        """
        scaled = PiecewiseLinearMap(self.mapping.secondary * usec_per_unit, self.mapping.master * usec_per_unit,
                                    single_slope=float(self.mapping.slopes[0]))
        rows = scaled.to_tsync_rows()
        tolerance = max(1, round(self.sample_period * usec_per_unit))
        with TSyncWriter(path, mode=TSyncFileMode.SYNCPOINTS, module_name=module_name, collection_id=collection_id,
                         tolerance_us=tolerance,
                         user_data={"drift_ppb": round(self.qc.drift_ppm * 1000),
                                    "max_residual_ns": round(self.qc.max_residual_samples * self.sample_period
                                                             * usec_per_unit * 1000)}) as writer:
            writer.add_many(rows[:, 0], rows[:, 1])


def _clean_edges(edges: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(edges, dtype=np.float64).reshape(-1)
    if values.size < 3:
        raise AlignError(f"{name}: need at least 3 edges, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise AlignError(f"{name}: edge times must be finite numbers")
    order = np.argsort(values, kind="stable")
    return values[order], order


def _coarse_lag(master: np.ndarray, secondary: np.ndarray, initial_offset: float, max_lag: float,
                width: float) -> float:
    """The most common secondary-minus-master difference among the first edges (ties: nearest the hint)."""
    head = master[:_COARSE_EDGES]
    low, high = head[0] + initial_offset - max_lag, head[-1] + initial_offset + max_lag
    candidates = secondary[np.searchsorted(secondary, low):np.searchsorted(secondary, high, side="right")][:4096]
    if candidates.size == 0:
        raise AlignError("no secondary edges overlap the first master edges within the allowed lag "
                         f"({initial_offset:+.6g} ± {max_lag:.6g}); give --offset/--max-lag")
    differences = (candidates[None, :] - head[:, None]).reshape(-1)
    differences = np.sort(differences[np.abs(differences - initial_offset) <= max_lag])
    if differences.size == 0:
        raise AlignError(f"no edge pairs within the allowed lag ({initial_offset:+.6g} ± {max_lag:.6g})")
    counts = np.searchsorted(differences, differences + width, side="right") - np.arange(differences.size)
    best = counts.max()
    starts = np.flatnonzero(counts == best)
    centers = np.array([np.median(differences[s:s + best]) for s in starts])
    return float(centers[np.argmin(np.abs(centers - initial_offset))])


def _match(master: np.ndarray, secondary: np.ndarray, predicted: np.ndarray, tolerance: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one nearest matching of predicted secondary times to secondary edges within ``tolerance``."""
    right = np.clip(np.searchsorted(secondary, predicted), 1, secondary.size - 1)
    left = right - 1
    nearest = np.where(np.abs(secondary[left] - predicted) <= np.abs(secondary[right] - predicted), left, right)
    distance = np.abs(secondary[nearest] - predicted)
    master_index = np.flatnonzero(distance <= tolerance)
    secondary_index = nearest[master_index]
    if secondary_index.size > 1:
        # Two master edges claiming one secondary edge: keep the closer claim.
        order = np.lexsort((distance[master_index], secondary_index))
        master_index, secondary_index = master_index[order], secondary_index[order]
        first = np.append(True, secondary_index[1:] != secondary_index[:-1])
        master_index, secondary_index = master_index[first], secondary_index[first]
        order = np.argsort(master_index)
        master_index, secondary_index = master_index[order], secondary_index[order]
    return master_index, secondary_index


def _predict(window: np.ndarray, master_index: np.ndarray, secondary_index: np.ndarray, master: np.ndarray,
             secondary: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Secondary times predicted for master edges: through the pairs matched so far (interpolated), and beyond
    them along a line fitted to the last of those pairs (a drift that wanders over hours bends away from one line
    fitted to all of them by more than the matching tolerance)."""
    if master_index.size < _PREDICT_TAIL_PAIRS:
        return intercept + slope * window
    known_m, known_s = master[master_index], secondary[secondary_index]
    tail_slope, tail_intercept = np.polyfit(known_m[-_PREDICT_TAIL_PAIRS:], known_s[-_PREDICT_TAIL_PAIRS:], 1)
    head_slope, head_intercept = np.polyfit(known_m[:_PREDICT_TAIL_PAIRS], known_s[:_PREDICT_TAIL_PAIRS], 1)
    predicted = np.interp(window, known_m, known_s)
    after, before = window > known_m[-1], window < known_m[0]
    predicted[after] = tail_intercept + tail_slope * window[after]
    predicted[before] = head_intercept + head_slope * window[before]
    return predicted


def _running_median(values: np.ndarray, window: int) -> np.ndarray:
    if values.size <= window:
        return np.full(values.size, np.median(values))
    half = window // 2
    padded = np.pad(values, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)


def _hat_basis(x: np.ndarray, knots: np.ndarray) -> Any:
    """Sparse (n, knots) matrix: row i interpolates linearly between the two knots around x[i]."""
    from scipy import sparse

    segment = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, knots.size - 2)
    weight = (x - knots[segment]) / (knots[segment + 1] - knots[segment])
    rows = np.repeat(np.arange(x.size), 2)
    columns = np.stack([segment, segment + 1], axis=1).reshape(-1)
    values = np.stack([1 - weight, weight], axis=1).reshape(-1)
    return sparse.csr_matrix((values, (rows, columns)), shape=(x.size, knots.size))


def _minimax(basis: Any, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Smallest t such that some knot values v give |basis @ v - y| <= t for every edge, and those v."""
    from scipy import sparse
    from scipy.optimize import linprog

    count, knot_count = basis.shape
    ones = sparse.csr_matrix(np.ones((count, 1)))
    constraints = sparse.vstack([sparse.hstack([basis, -ones]), sparse.hstack([-basis, -ones])]).tocsr()
    objective = np.zeros(knot_count + 1)
    objective[-1] = 1.0
    bounds = [(None, None)] * knot_count + [(0, None)]
    result = linprog(objective, A_ub=constraints, b_ub=np.concatenate([y, -y]), bounds=bounds, method="highs")
    if result.status != 0:
        raise AlignError(f"minimax fit failed: {result.message}")
    return float(result.x[-1]), np.asarray(result.x[:knot_count])


def _piece_bounds(x: np.ndarray, knots: np.ndarray) -> tuple[list[int], list[int]]:
    segment = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, knots.size - 2)
    starts = np.flatnonzero(np.concatenate(([True], np.diff(segment) != 0))).tolist()
    return starts, starts[1:] + [x.size]


def _hull_rows(x: np.ndarray, y: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Indices of the edges that can bind a minimax fit: on each piece the map is linear, so the largest
    ``y - map`` and ``map - y`` there are at vertices of the upper and lower convex hulls of the piece's edges
    (``x`` ascending). Exact, and it turns hundreds of thousands of constraints into a few per piece. For few
    edges per piece (a monotone chain in Python)."""
    xs, ys = x.tolist(), y.tolist()
    keep: list[int] = []
    for lo, hi in zip(*_piece_bounds(x, knots)):
        for sign in (1.0, -1.0):  # lower hull of (x, y), then of (x, -y): the upper hull
            hull: list[int] = []
            for i in range(lo, hi):
                xi, yi = xs[i], sign * ys[i]
                while len(hull) >= 2:
                    j, k = hull[-2], hull[-1]
                    if (sign * ys[k] - sign * ys[j]) * (xi - xs[j]) >= (yi - sign * ys[j]) * (xs[k] - xs[j]):
                        hull.pop()  # k is on or above the chord from j to i
                    else:
                        break
                hull.append(i)
            keep.extend(hull)
    return np.unique(np.array(keep, dtype=np.int64))


def _hull_rows_many(x: np.ndarray, y: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """:func:`_hull_rows` for many edges per piece (qhull; every vertex of the full hull is a vertex of the
    lower or the upper one)."""
    from scipy.spatial import ConvexHull, QhullError

    keep = []
    for lo, hi in zip(*_piece_bounds(x, knots)):
        if hi - lo <= 3:
            keep.append(np.arange(lo, hi))
            continue
        xs = x[lo:hi]
        points = np.column_stack(((xs - xs[0]) / max(float(xs[-1] - xs[0]), 1e-300), y[lo:hi]))
        try:
            keep.append(lo + ConvexHull(points).vertices)
        except QhullError:  # collinear or too few distinct points: keep them all
            keep.append(np.arange(lo, hi))
    return np.unique(np.concatenate(keep))


def _least_squares(basis: Any, y: np.ndarray) -> np.ndarray:
    """Knot values minimizing sum (basis @ v - y)^2 (normal equations; the matrix is tridiagonal)."""
    from scipy.sparse.linalg import spsolve

    normal = (basis.T @ basis).tocsc()
    return np.atleast_1d(spsolve(normal, basis.T @ y))


def _toward_within(basis: Any, y: np.ndarray, start: np.ndarray, inside: np.ndarray, band: float) -> np.ndarray:
    """Knot values on the segment from ``start`` to ``inside`` (a solution within the band), as close to
    ``start`` as keeps every |basis @ v - y| <= band: each edge's residual is affine along the segment, so the
    first point where all are within the band is found exactly in one pass (O(edges), no LP over every edge)."""
    r0 = basis @ start - y
    r1 = basis @ inside - y
    lowest = 0.0
    change = r1 - r0
    # need -band <= r0 + s * change <= band for s in [lowest, 1]; r1 satisfies it at s = 1
    with np.errstate(divide="ignore", invalid="ignore"):
        high_bound = np.where(change < 0, (r0 - band) / -change, np.where(r0 > band, np.inf, 0.0))
        low_bound = np.where(change > 0, (-band - r0) / change, np.where(r0 < -band, np.inf, 0.0))
    lowest = float(min(1.0, max(0.0, np.max(high_bound), np.max(low_bound))))
    return start + lowest * (inside - start)


def _quantile_knots(x: np.ndarray, segments: int) -> np.ndarray:
    knots = np.unique(np.quantile(x, np.linspace(0, 1, segments + 1)))
    return knots if knots.size >= 2 else np.array([x[0], x[0] + 1.0])


def align_edges(
    master: Any,
    secondary: Any,
    *,
    sample_period: float,
    initial_offset: float = 0.0,
    max_lag: float | None = None,
    min_edges_per_segment: int = 8,
    outlier_samples: float = 3.0,
) -> Alignment:
    """Align ``secondary`` edge times to ``master`` ones (same unit); see the module docstring for the method.

    ``initial_offset`` is the expected secondary-minus-master lag and ``max_lag`` the largest deviation from it
    searched (default: half the median master edge interval). Edges further than ``outlier_samples`` samples
    (or 6 robust sigmas, if larger) from the running median of the residuals are excluded from the fit.
    """
    if not sample_period > 0:
        raise AlignError(f"sample period must be positive, got {sample_period}")
    if min_edges_per_segment < 2:
        raise AlignError("min_edges_per_segment must be at least 2")
    master_sorted, master_order = _clean_edges(master, "master edges")
    secondary_sorted, secondary_order = _clean_edges(secondary, "secondary edges")
    intervals = np.diff(master_sorted)
    if np.median(intervals) <= 0:
        raise AlignError("master edges must not all be at the same time")
    shortest = float(np.percentile(intervals[intervals > 0], 5))
    tolerance = max(0.25 * shortest, 3 * sample_period)
    if max_lag is None:
        max_lag = 0.5 * float(np.median(intervals))
    lag = _coarse_lag(master_sorted, secondary_sorted, initial_offset, max_lag, tolerance / 2)

    # Progressive matching: secondary ~ intercept + slope * master, fitted on a growing window.
    slope, intercept = 1.0, lag
    span = master_sorted[min(_COARSE_EDGES, master_sorted.size) - 1] - master_sorted[0]
    horizon = master_sorted[0] + max(span, 8 * shortest)
    master_index = secondary_index = np.zeros(0, dtype=np.int64)
    while True:
        window = master_sorted[:np.searchsorted(master_sorted, horizon, side="right")]
        master_index, secondary_index = _match(window, secondary_sorted,
                                               _predict(window, master_index, secondary_index, master_sorted,
                                                        secondary_sorted, slope, intercept), tolerance)
        if master_index.size >= 2:
            slope, intercept = np.polyfit(master_sorted[master_index], secondary_sorted[secondary_index], 1)
        if window.size == master_sorted.size:
            break
        horizon = master_sorted[0] + 4 * (horizon - master_sorted[0])
    predicted = intercept + slope * master_sorted
    overlapping = int(np.count_nonzero((predicted >= secondary_sorted[0] - tolerance)
                                       & (predicted <= secondary_sorted[-1] + tolerance)))
    if master_index.size < 3 or master_index.size < 0.5 * overlapping:
        raise AlignError(f"only {master_index.size} of {overlapping} overlapping edges matched: the trains do "
                         "not look alike (check units, the lag hint, or that both files hold the same pulses)")

    matched_master = master_sorted[master_index]
    matched_secondary = secondary_sorted[secondary_index]
    # Residuals of master ~ line(secondary), judged against their own running median (slow drift survives).
    line_slope, line_intercept = np.polyfit(matched_secondary, matched_master, 1)
    residual = (matched_master - (line_intercept + line_slope * matched_secondary)) / sample_period
    deviation = residual - _running_median(residual, _RESIDUAL_MEDIAN_WINDOW)
    sigma = 1.4826 * float(np.median(np.abs(deviation)))
    inlier = np.abs(deviation) <= max(outlier_samples, 6 * sigma)
    if inlier.sum() < 3:
        raise AlignError("fewer than 3 matched edges survive outlier rejection")

    x, y = matched_secondary[inlier], residual[inlier]
    segments = 1
    # pieces split at quantiles of x halve into pieces of the next level, so the hull vertices of each piece at a
    # fine level include those of every coarser piece: found once, they are all the rows coarser levels need
    fine_segments = 1 << max(0, int(np.ceil(np.log2(max(x.size / _HULL_EDGES_PER_PIECE, 1)))))
    rows_at: dict[int, np.ndarray] = {fine_segments: _hull_rows_many(x, y, _quantile_knots(x, fine_segments))}
    level = fine_segments
    while level > 1:  # coarser levels from the finer one's rows (a few per piece)
        finer = rows_at[level]
        level //= 2
        rows_at[level] = finer[_hull_rows(x[finer], y[finer], _quantile_knots(x, level))]
    while True:
        knots = _quantile_knots(x, segments)
        # the minimax LP needs only these rows
        binding = rows_at[segments] if segments in rows_at else _hull_rows_many(x, y, knots)
        band, minimax_values = _minimax(_hat_basis(x[binding], knots), y[binding])
        if band <= _RESIDUAL_GOAL or x.size < 2 * segments * min_edges_per_segment \
                or segments >= _MAX_PIECES:
            break
        segments *= 2
    basis = _hat_basis(x, knots)
    bound = max(band * (1 + 1e-9) + 1e-9, _RESIDUAL_GOAL)
    correction = _least_squares(basis, y)
    if np.abs(basis @ correction - y).max() > bound:
        correction = _toward_within(basis, y, correction, minimax_values, bound)
    mapping = PiecewiseLinearMap(knots, line_intercept + line_slope * knots + correction * sample_period,
                                 single_slope=float(line_slope))
    final = (matched_master - mapping(matched_secondary)) / sample_period
    magnitude = np.abs(final)
    qc = AlignmentQC(
        master_edges=int(master_sorted.size), secondary_edges=int(secondary_sorted.size),
        matched=int(master_index.size), outliers=int((~inlier).sum()), drift_ppm=mapping.drift_ppm,
        coarse_lag=lag, max_residual_samples=float(magnitude[inlier].max()),
        within_1_sample=float(np.mean(magnitude <= 1.0)), within_2_samples=float(np.mean(magnitude <= 2.0)))
    return Alignment(mapping=mapping, master_index=master_order[master_index],
                     secondary_index=secondary_order[secondary_index], inlier=inlier,
                     residuals_samples=final, sample_period=sample_period, qc=qc)


# ----------------------------------------------------------------------------------------------------------
# Simulation (tests and benchmarks use the same model)

@dataclass
class SimulatedEdges:
    """Edge times (seconds) of one pulse train seen by two sampled streams, and the truth behind them."""

    master: np.ndarray
    secondary: np.ndarray
    true_master_of_secondary: Callable[[Any], np.ndarray]  # secondary stream time -> true master time
    rate_hz: float


def simulate_edges(*, duration_s: float = 3600.0, rate_hz: float = 30_000.0, pulse_hz: float = 1.0,
                   drift_ppm: float = 20.0, offset_s: float = 0.0123, drop: float = 0.01, extra: float = 0.0,
                   drift_wander_ppm: float = 0.0, seed: int = 0) -> SimulatedEdges:
    """Rising edges of a ``pulse_hz`` train recorded by two streams sampled at ``rate_hz`` on their own clocks.

    Each stream stamps an edge with its first sample at or after it (quantization up to one sample). The
    secondary clock runs ``drift_ppm`` fast, plus a slow sinusoidal wander of ``drift_wander_ppm`` (temperature),
    and starts ``offset_s`` ahead. Each stream loses ``drop`` of its edges; the secondary gains ``extra`` glitches.
    """
    rng = np.random.default_rng(seed)
    # The pulse generator has a clock of its own (random period error, random start): edges do not fall on
    # either stream's sample grid in a repeating pattern.
    generator_period = (1.0 + rng.uniform(-50e-6, 50e-6)) / pulse_hz
    true_edges = np.arange(rng.uniform(0.1, 0.9) / pulse_hz, duration_s, generator_period)
    master_phase, secondary_phase = rng.random(2) / rate_hz
    period = duration_s if duration_s > 0 else 1.0

    def secondary_clock(true_time: np.ndarray) -> np.ndarray:
        wander = drift_wander_ppm * 1e-6 * period / (2 * np.pi) * (1 - np.cos(2 * np.pi * true_time / period))
        return offset_s + true_time * (1 + drift_ppm * 1e-6) + wander

    master = np.ceil((true_edges - master_phase) * rate_hz) / rate_hz
    secondary = np.ceil((secondary_clock(true_edges) - secondary_phase) * rate_hz) / rate_hz
    master = master[rng.random(master.size) >= drop]
    secondary = secondary[rng.random(secondary.size) >= drop]
    if extra:
        glitches = rng.uniform(secondary[0], secondary[-1], int(extra * secondary.size))
        secondary = np.sort(np.concatenate([secondary, np.ceil(glitches * rate_hz) / rate_hz]))

    dense = np.linspace(-1.0, duration_s + 1.0, 200_001)
    dense_clock = secondary_clock(dense)

    def true_master(secondary_time: Any) -> np.ndarray:
        """True master time of an event the secondary stream stamps with ``secondary_time`` (its sample)."""
        shifted = np.asarray(secondary_time, dtype=np.float64) + secondary_phase
        return np.interp(shifted, dense_clock, dense) - master_phase

    return SimulatedEdges(master=master, secondary=secondary, true_master_of_secondary=true_master, rate_hz=rate_hz)
