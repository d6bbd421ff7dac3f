"""Behavioural boundaries of the clock-sync core that any estimator/alignment design must keep: the exact index
of a clock step, a step back declared at exactly the streak threshold, and align_edges' bounded fit.

(These modules are being redesigned; only contracts a redesign keeps are asserted here.)
"""

from __future__ import annotations

import numpy as np
import pytest

from hwlink.sync.align import align_edges
from hwlink.sync.estimator import DEFAULT_STEP_STREAK, DriftEstimator, EstimatorEvent, find_steps


def stepped_pairs(count: int, spacing_usec: int, step_at: int, step_usec: int, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Events ``spacing_usec`` apart; the device clock jumps by ``step_usec`` from pair ``step_at`` on; arrivals are
    0-400 µs late (uniform, never a spike a step threshold could mistake for a step)."""
    rng = np.random.default_rng(seed)
    events = np.arange(count, dtype=np.int64) * spacing_usec + 5_000_000
    secondary = events + 123_456 + np.where(np.arange(count) >= step_at, step_usec, 0)
    master = events + rng.integers(0, 400, count)
    return secondary.astype(np.int64), master.astype(np.int64)


@pytest.mark.parametrize("step_at", [1234, 60_000, 60_001, 99_998])
@pytest.mark.parametrize("step_usec", [50_000, -50_000, 3_000, -3_000])
def test_find_steps_returns_the_exact_index_of_a_step_in_pairs_1ms_apart(step_at: int, step_usec: int) -> None:
    """Bug caught: find_steps' step index off by one (the old test allowed ±2 pairs)."""
    secondary, master = stepped_pairs(100_000, 1_000, step_at, step_usec, seed=step_at)
    assert find_steps(secondary, master).tolist() == [step_at]


@pytest.mark.parametrize("step_at", [777, 10_001])
def test_find_steps_exact_index_of_a_small_step_back_with_device_time_still_rising(step_at: int) -> None:
    """Pairs 5 ms apart, the device clock set back 3 ms: device time still rises, only the envelope jumps up."""
    secondary, master = stepped_pairs(20_000, 5_000, step_at, -3_000, seed=step_at)
    assert np.all(np.diff(secondary) > 0)
    assert find_steps(secondary, master).tolist() == [step_at]


def test_find_steps_finds_nothing_in_a_clean_recording() -> None:
    secondary, master = stepped_pairs(50_000, 1_000, 50_000, 0)
    assert find_steps(secondary, master).size == 0


def feed(estimator: DriftEstimator, secondary: np.ndarray, master: np.ndarray) -> list[EstimatorEvent]:
    return [estimator.add(s, m) for s, m in zip(secondary.tolist(), master.tolist())]


# spacing <= 250 ms (STEP_BACK_MIN_USEC: the run starts right after a near point) and (streak - 1) * spacing >= 1 s
# (STEP_BACK_RUN_USEC: the run has lasted long enough by the streak-th point), so the streak alone decides
@pytest.mark.parametrize("streak, spacing_usec", [(DEFAULT_STEP_STREAK, 100_000), (8, 200_000), (6, 220_000)])
def test_step_back_is_declared_at_exactly_the_streak_threshold(streak: int, spacing_usec: int) -> None:
    """Bug caught: ``_above_streak >= step_streak`` changed to ``>`` (the step back declared one point late).

    The device clock is set back 20 ms after 20 s of clean pairs; spacing is chosen so the run above the envelope
    has lasted long enough by the streak-th point, so the streak count alone decides the point."""
    step_at = 20_000_000 // spacing_usec
    secondary, master = stepped_pairs(step_at + 40, spacing_usec, step_at, -20_000, seed=streak)
    estimator = DriftEstimator(step_streak=streak)
    events = feed(estimator, secondary, master)
    flagged = [i for i, event in enumerate(events) if event != EstimatorEvent.NONE]
    assert flagged == [step_at + streak - 1]
    assert events[step_at + streak - 1] == EstimatorEvent.STEP_BACK
    assert estimator.resets == 1


def test_a_run_above_one_point_short_of_the_streak_is_no_step() -> None:
    streak = 8
    spacing = 100_000
    step_at = 200
    secondary, master = stepped_pairs(step_at + 60, spacing, step_at, 0, seed=3)
    master = master.copy()
    master[step_at:step_at + streak - 1] += 20_000  # a latency episode of streak-1 points, then normal again
    events = feed(DriftEstimator(step_streak=streak), secondary, master)
    assert all(event == EstimatorEvent.NONE for event in events)


# ----- align_edges' bounded fit --------------------------------------------------------------------------------

RATE = 30_000.0


def lopsided_edges(count: int = 600, every: int = 20, late_samples: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """1 Hz edges; every ``every``-th master edge is ``late_samples`` late. The least-squares line sits a little
    above the on-time edges, leaving the late ones ~1.4 samples off; a line within one sample of all exists."""
    secondary = 10.0 + np.arange(count, dtype=float) * 1.000_37
    master = secondary - 0.004_1
    master[::every] += late_samples / RATE
    return master, secondary


def test_bounded_fit_keeps_every_edge_within_one_sample_when_least_squares_does_not() -> None:
    """Bugs caught: the residual-bound check skipped (least squares always taken: late edges ~1.4 samples off),
    and the bounded fallback replaced by ``raise`` (this input needs it, see the next test)."""
    master, secondary = lopsided_edges()
    alignment = align_edges(master, secondary, sample_period=1 / RATE, min_edges_per_segment=10_000)
    residuals = alignment.residuals_samples
    assert np.abs(residuals).max() <= 0.999 + 1e-6
    assert alignment.qc.max_residual_samples <= 0.999 + 1e-6
    assert alignment.qc.within_1_sample == 1.0 and alignment.qc.outliers == 0
    assert alignment.qc.matched == master.size
    # the bounded fit moved the line toward the late edges without giving up the on-time ones
    on_time = np.delete(residuals, np.s_[::20])
    assert residuals[::20].min() > 0.5 and on_time.max() < -0.25


def test_without_the_fallback_the_same_input_would_break_the_bound() -> None:
    """The crafted input really needs the bounded fit: the plain least-squares line leaves late edges > 1 sample
    off, while a line within 0.75 samples of every edge exists."""
    master, secondary = lopsided_edges()
    slope, intercept = np.polyfit(secondary, master, 1)
    residual = (master - (intercept + slope * secondary)) * RATE
    assert np.abs(residual).max() > 1.4
    assert np.abs(residual - (residual.max() + residual.min()) / 2).max() == pytest.approx(0.75, abs=0.01)


def test_least_squares_is_kept_when_it_is_within_the_bound() -> None:
    """The other branch: when least squares keeps every edge within a sample it is the answer (residuals sum to
    zero), not the bounded fit (which would put the on-time edges at zero)."""
    master, secondary = lopsided_edges(late_samples=0.6)
    alignment = align_edges(master, secondary, sample_period=1 / RATE, min_edges_per_segment=10_000)
    residuals = alignment.residuals_samples
    assert alignment.qc.max_residual_samples == pytest.approx(0.57, abs=0.01)
    assert residuals.mean() == pytest.approx(0, abs=1e-6)
