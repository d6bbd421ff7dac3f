"""The Syntalos baseline reproduces the behaviours clocksync-baseline.md states (it is only a comparison peer)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwlink.sync.baseline import SyntalosSecondaryClockSynchronizer, _delay_factor
from hwlink.sync.clockmodel import DeviceClock, parse_latency
from hwlink.sync.secondary import TimeSyncStrategy
from hwlink.sync.simulation import run_online, simulate_pairs

FWD, BWD = TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD, TimeSyncStrategy.SHIFT_TIMESTAMPS_BWD


def started(n: int = 48, tol: int = 1000, strategies: int = FWD | BWD, frequency: float = 0) -> \
        SyntalosSecondaryClockSynchronizer:
    sync = SyntalosSecondaryClockSynchronizer(frequency)
    if not frequency:
        sync.set_calibration_points_count(n)
        sync.set_tolerance(tol)
    sync.set_strategies(strategies)
    assert sync.start()
    return sync


@pytest.mark.parametrize(("frequency", "points", "tolerance"), [
    (0.5, 46, 1_000_000), (1, 90, 500_000), (10, 900, 50_000), (15, 886, 33_333), (25, 750, 20_000),
    (30, 710, 16_667), (50, 700, 10_000), (60, 748, 8_333), (100, 1059, 5_000), (250, 2510, 2_000),
    (1000, 10001, 500), (20000, 200001, 25),
])
def test_expected_frequency_sets_points_and_tolerance_as_the_table(frequency: float, points: int,
                                                                   tolerance: int) -> None:
    sync = SyntalosSecondaryClockSynchronizer(frequency)
    assert (sync.calibration_points, sync.tolerance_usec) == (points, tolerance)


def test_defaults_and_minimum_point_count() -> None:
    sync = SyntalosSecondaryClockSynchronizer()
    assert (sync.calibration_points, sync.tolerance_usec) == (400, 1000)
    assert sync.strategies == FWD | BWD
    sync.set_calibration_points_count(10)
    assert sync.calibration_points == 46


@pytest.mark.parametrize(("gap", "delay"), [
    (0, 1001), (1, 296.4), (100, 121.4), (1000, 78.9), (2000, 68.5), (10_000, 47.3), (16_667, 41.3),
    (20_000, 39.2), (33_333, 33.5), (50_000, 29.2), (100_000, 22.1), (200_000, 15.4), (500_000, 7.0),
])
def test_delay_factor_matches_the_table(gap: int, delay: float) -> None:
    assert _delay_factor(gap) == pytest.approx(delay, abs=0.05)


def test_delay_factor_reaches_one_at_a_second_and_is_nan_for_backwards_gaps() -> None:
    assert _delay_factor(1_000_000) <= 1.0 + 1e-9
    assert math.isnan(_delay_factor(-2))


def calibrate(sync: SyntalosSecondaryClockSynchronizer, master: int, secondary: int, period: int = 1000,
              jitter: int = 500) -> tuple[int, int, int]:
    """Feed alternating +-jitter until calibrated; returns (points used, master, secondary)."""
    for count in range(1, 4 * sync.calibration_points + 1):
        master += period
        secondary += period
        noisy = master + (jitter if count % 2 else -jitter)
        assert sync.process_timestamp(noisy, secondary) == noisy  # untouched during calibration
        assert sync.clock_correction_offset == 0
        if sync.is_calibrated:
            return count, master, secondary
    raise AssertionError("never calibrated")


def test_calibration_takes_two_n_points_and_a_perfect_clock_gets_no_correction() -> None:
    sync = started(n=48)
    used, master, secondary = calibrate(sync, 0, 11_111)
    assert used == 96
    assert sync.expected_offset_to_master_usec == 11_111
    for _ in range(4 * 48):
        master += 1000
        secondary += 1000
        assert sync.process_timestamp(master, secondary) == master
        assert sync.clock_correction_offset == 0


def test_faster_then_slower_secondary_follows_the_upstream_bounds() -> None:
    """runExClockSynchronizer (sequence rebuilt from its description): corrections only once the divergence
    passes the tolerance, within the upstream bounds, output never backwards in time."""
    n, tol = 48, 1000
    sync = started(n=n, tol=tol, strategies=TimeSyncStrategy.ADJUST_CLOCK | FWD | BWD)
    _, master, secondary = calibrate(sync, 0, 11_111)
    divergence, last_output, corrected = 0, -1, False
    for direction, limit in ((+1, 10_600), (-1, -5_300)):
        divergence = 0
        for step in range(abs(limit) // 100 * 30):
            master += 1000
            secondary += 1000
            if step % 30 == 0:
                divergence += 100 * direction
                secondary += 100 * direction
            output = sync.process_timestamp(master, secondary)
            assert output >= last_output
            last_output = output
            if step % 30 < n // 2:
                continue
            corr = sync.clock_correction_offset
            if abs(divergence) <= tol:
                assert corr == 0
            elif abs(divergence) < tol + 251:  # the first, small corrections: sign only
                assert corr * direction >= 0
            elif direction > 0:
                corrected = True
                assert divergence / 110 <= corr < divergence
                assert output > master
            else:
                assert divergence - 250 < corr <= divergence / 68
                assert output < master
        # remove the divergence again: the correction decays and is gone after at most 2N points
        secondary -= divergence
        for _ in range(2 * n):
            master += 1000
            secondary += 1000
            last_output = max(last_output, sync.process_timestamp(master, secondary))
        assert sync.clock_correction_offset == 0
    assert corrected


def test_moving_average_uses_the_historic_mean() -> None:
    """runExClockSynchronizerMovingAverage: no correction for 45 samples, 115 µs on the 46th."""
    sync = started(n=46, tol=4500)
    master, offset = 0, -500_000
    for count in range(2 * 46):
        master += 20_000
        jitter = 5000 if count % 2 else -5000
        sync.process_timestamp(master + jitter, master + offset)
    assert sync.is_calibrated and sync.expected_offset_to_master_usec == -500_000
    for _ in range(46):  # flush the window with exact points
        master += 20_000
        assert sync.process_timestamp(master, master + offset) == master
    for sample in range(1, 47):
        master += 20_000
        output = sync.process_timestamp(master, master + offset + 4600)
        if sample < 46:
            assert sync.clock_correction_offset == 0 and output == master
        else:
            assert sync.clock_correction_offset == 115
            assert output == master + 4600 - 115


def test_master_flukes_are_replaced_by_device_clock_extrapolation_even_with_strategy_none() -> None:
    sync = started(n=48, strategies=TimeSyncStrategy.NONE)
    _, master, secondary = calibrate(sync, 0, 11_111, jitter=30)
    for count in range(1, 200):
        master += 1000
        secondary += 1000
        fluke = count % 10 == 0
        received = master + (5000 if fluke else 0)
        output = sync.process_timestamp(received, secondary)
        if fluke:
            assert output < received and output == master  # extrapolated with the device increment
        else:
            assert output == received


def test_no_drift_correction_for_the_first_two_n_points_and_lag_at_100_ppm() -> None:
    """§3.5/§8.1: auto-tuned 30 Hz keeps raw times for 1420 points, then lags tens of ms behind 100 ppm."""
    pairs = simulate_pairs(30, 600_000_000, DeviceClock(drift_ppm=100), parse_latency("exp:1ms"), seed=3)
    sync = SyntalosSecondaryClockSynchronizer(30)
    sync.start()
    output, _ = run_online(sync.process_timestamp, pairs)
    assert np.array_equal(output[:1419], pairs.master_usec[:1419])
    late_error = np.abs(output - pairs.event_usec)[pairs.event_usec > 500e6]
    assert late_error.max() > 16_667  # worse than its own tolerance
    assert late_error.max() > np.abs(pairs.master_usec - pairs.event_usec).max()  # and worse than raw


def test_output_can_go_backwards_after_a_step_fluke_streak() -> None:
    """§3.5: the fluke streak after a device clock step ends with a raw, unclamped master."""
    pairs = simulate_pairs(30, 300_000_000, DeviceClock(steps=((120_000_000, 40_000),)),
                           parse_latency("exp:1ms"), seed=5)
    sync = SyntalosSecondaryClockSynchronizer(30)
    sync.start()
    output, _ = run_online(sync.process_timestamp, pairs)
    assert np.any(np.diff(output) < 0)


def test_backwards_secondary_when_a_correction_is_due_gives_garbage() -> None:
    """§3.5 NaN bug: corr becomes INT64_MIN and outputs are ~9.2e18 afterwards."""
    sync = started(n=48, tol=1000)
    _, master, secondary = calibrate(sync, 0, 0, jitter=1500)
    corrections = 0
    while corrections == 0:  # secondary 3 ms ahead: out of tolerance, corrected once the window shows it
        master += 1000
        secondary += 1000
        before = sync.clock_correction_offset
        sync.process_timestamp(master - 3000, secondary)
        corrections += sync.clock_correction_offset != before
    for _ in range(31):  # the next correction is due on the 32nd point (ceil(0.65 N))
        master += 1000
        secondary += 1000
        sync.process_timestamp(master - 3000, secondary)
    master += 1000
    sync.process_timestamp(master - 3000, secondary - 2)
    assert abs(sync.clock_correction_offset) > 2**62
    outputs = []
    for _ in range(100):
        master += 1000
        secondary += 1000
        outputs.append(sync.process_timestamp(master - 3000, secondary))
    assert outputs[0] < master  # first stuck at the last good time, then ~9.1e18 as the reference measured
    assert all(output > 9e18 for output in outputs[-10:])


def test_tsync_rows_follow_section_3_6() -> None:
    sync = started(n=48, strategies=FWD | BWD | TimeSyncStrategy.WRITE_TSYNCFILE)
    _, master, secondary = calibrate(sync, 0, 11_111)
    assert sync.tsync_rows == [(0, -11_111)]
    master += 1000
    secondary += 1000
    fluke_output = sync.process_timestamp(master + 20_000, secondary)
    assert sync.tsync_rows[-1] == (secondary, fluke_output)
    sync.stop()
    assert sync.tsync_rows[-1] == (secondary, fluke_output)
    assert len(sync.tsync_rows) == 3


def test_settings_are_locked_once_calibrated() -> None:
    sync = started(n=48)
    calibrate(sync, 0, 0)
    sync.set_tolerance(5)
    sync.set_calibration_points_count(100)
    assert (sync.tolerance_usec, sync.calibration_points) == (1000, 48)
    assert not sync.start()
