"""SecondaryClockSynchronizer: Syntalos' API with hwlink's estimator, strategy flags and tsync output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edlio.dataio.tsyncfile import TSyncFile as EdlioTSyncFile

import hwlink.sync as sync_package
from hwlink.errors import ConfigError
from hwlink.sync import SecondaryClockSynchronizer, TimeSyncStrategy
from hwlink.sync.clockmodel import DeviceClock, parse_latency
from hwlink.sync.offline import SyncPointMap
from hwlink.sync.simulation import SimulatedPairs, run_online, simulate_pairs
from hwlink.sync.tsync import TSyncFileMode, read_tsync

FWD, BWD = TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD, TimeSyncStrategy.SHIFT_TIMESTAMPS_BWD
ADJUST, TSYNC = TimeSyncStrategy.ADJUST_CLOCK, TimeSyncStrategy.WRITE_TSYNCFILE


def pairs_for(drift: float = 100, minutes: float = 2, rate: float = 30, seed: int = 1,
              steps: tuple[tuple[int, int], ...] = ()) -> SimulatedPairs:
    return simulate_pairs(rate, int(minutes * 60e6), DeviceClock(offset_usec=-3_000_000, drift_ppm=drift,
                                                                 steps=steps),
                          parse_latency("exp:1ms"), seed=seed)


def synchronized(pairs: SimulatedPairs, strategies: int | None = None, **options: object) -> \
        tuple[SecondaryClockSynchronizer, np.ndarray]:
    sync = SecondaryClockSynchronizer(30, **options)  # type: ignore[arg-type]
    if strategies is not None:
        sync.set_strategies(strategies)
    output, _ = run_online(sync.process_timestamp, pairs)
    return sync, output


def test_strategy_flags_have_syntalos_values_and_combine() -> None:
    assert [int(f) for f in (TimeSyncStrategy.NONE, FWD, BWD, ADJUST, TSYNC)] == [0, 1, 2, 4, 8]
    combined = FWD | BWD | TSYNC
    assert isinstance(combined, TimeSyncStrategy) and int(combined) == 11
    assert TimeSyncStrategy(int(FWD) | int(ADJUST)) == FWD | ADJUST
    assert sync_package.TimeSyncStrategy is TimeSyncStrategy
    assert sync_package.SecondaryClockSynchronizer is SecondaryClockSynchronizer


def test_defaults_and_syntalos_auto_tuning() -> None:
    sync = SecondaryClockSynchronizer()
    assert sync.strategies == FWD | BWD and sync.tolerance_usec == 1000 and sync.calibration_points_count == 400
    assert len(sync.id) == 4 and sync.id != SecondaryClockSynchronizer().id
    tuned = SecondaryClockSynchronizer(30, id="cam")
    assert (tuned.id, tuned.tolerance_usec, tuned.calibration_points_count) == ("cam", 16_667, 710)
    tuned.set_calibration_points_count(3)
    assert tuned.calibration_points_count == 46
    with pytest.warns(RuntimeWarning):
        tuned.set_expected_clock_frequency_hz(0)
    with pytest.raises(ConfigError):
        tuned.set_tolerance(0)


def test_corrects_drift_and_jitter_from_the_first_seconds() -> None:
    pairs = pairs_for(drift=100)
    sync, output = synchronized(pairs)
    error = np.abs(output - pairs.event_usec)
    raw = np.abs(pairs.master_usec - pairs.event_usec)
    after = pairs.event_usec > pairs.event_usec[0] + 5e6
    assert np.percentile(error[after], 99) < 100 < np.percentile(raw[after], 99) / 10
    assert np.all(output <= pairs.master_usec)  # never later than the receive time
    assert np.all(np.diff(output) >= 0)
    assert sync.is_calibrated
    assert sync.skew_ppm == pytest.approx(100, abs=1)


def test_a_known_minimum_latency_is_subtracted() -> None:
    pairs = simulate_pairs(30, 60_000_000, DeviceClock(drift_ppm=20), parse_latency("uniform:2ms-3ms"), seed=6)
    plain, plain_out = synchronized(pairs)
    sync = SecondaryClockSynchronizer(30)
    sync.set_min_latency_usec(2000)
    output, _ = run_online(sync.process_timestamp, pairs)
    late = pairs.event_usec > 5e6
    assert np.abs(plain_out - pairs.event_usec)[late].min() > 1900  # the floor stays in without it
    assert np.percentile(np.abs(output - pairs.event_usec)[late], 99) < 60
    with pytest.raises(ConfigError):
        sync.set_min_latency_usec(-1)


def test_correction_offset_sign_follows_syntalos() -> None:
    """Positive when the device clock runs fast (its time gets ahead of the master), negative when slow."""
    fast, _ = synchronized(pairs_for(drift=100))
    slow, _ = synchronized(pairs_for(drift=-100))
    # after ~2 minutes at 100 ppm the device time is ~12 ms off its calibrated offset
    assert 10_000 < fast.clock_correction_offset < 13_000
    assert -13_000 < slow.clock_correction_offset < -10_000
    assert fast.clock_correction_offset_usec == fast.clock_correction_offset
    assert fast.expected_offset_to_master_usec == pytest.approx(-3_000_000, abs=2_000)


def test_strategy_none_returns_receive_times_and_single_directions_limit_the_shift() -> None:
    pairs = pairs_for(drift=100)
    _, raw_out = synchronized(pairs, TimeSyncStrategy.NONE)
    assert np.array_equal(raw_out, np.maximum.accumulate(pairs.master_usec))
    _, both = synchronized(pairs, FWD | BWD)
    _, bwd = synchronized(pairs, BWD)
    _, fwd = synchronized(pairs, FWD)
    # the device runs fast: once the correction is positive BWD permits it and FWD does not
    late = pairs.event_usec > 30e6
    assert np.array_equal(bwd[late], both[late])
    fwd_error = (fwd - pairs.event_usec)[late]
    assert np.all(fwd_error > -1) and fwd_error.max() > 5_000  # drift left in, never before the event
    assert np.all(fwd <= pairs.master_usec)
    _, fwd_slow = synchronized(pairs_for(drift=-100), FWD)
    _, both_slow = synchronized(pairs_for(drift=-100), FWD | BWD)
    assert np.array_equal(fwd_slow[late], both_slow[late])


def test_settings_are_locked_once_calibrated_and_no_restart() -> None:
    sync = SecondaryClockSynchronizer(30)
    run_online(sync.process_timestamp, pairs_for(minutes=0.1))
    assert sync.is_calibrated
    with pytest.warns(RuntimeWarning):
        sync.set_strategies(TimeSyncStrategy.NONE)
    with pytest.warns(RuntimeWarning):
        sync.set_tolerance_usec(5)
    assert sync.strategies == FWD | BWD and sync.tolerance_usec == 16_667
    with pytest.warns(RuntimeWarning):
        assert not sync.start()


def test_clock_steps_recalibrate_and_output_stays_monotone() -> None:
    pairs = pairs_for(drift=50, minutes=3, steps=((60_000_000, 50_000), (120_000_000, -50_000)))
    sync, output = synchronized(pairs)
    assert sync.clock_resets == 2
    assert np.all(np.diff(output) >= 0)
    error = np.abs(output - pairs.event_usec)
    settled = ((pairs.event_usec > 65e6) & (pairs.event_usec < 120e6)) | (pairs.event_usec > 125e6)
    assert error[settled].max() < 200
    # the correction stays continuous across a step: the expected offset absorbs the jump
    assert abs(sync.clock_correction_offset - 50e-6 * pairs.event_usec[-1]) < 3_000


def test_adjust_clock_calls_back_when_the_correction_moves_by_the_tolerance() -> None:
    calls: list[tuple[int, float]] = []
    pairs = pairs_for(drift=100, minutes=2)
    sync = SecondaryClockSynchronizer(id="dev")
    sync.set_tolerance(2000)
    sync.set_strategies(FWD | BWD | ADJUST)
    sync.set_clock_adjust_callback(lambda correction, skew: calls.append((correction, skew)))
    output, _ = run_online(sync.process_timestamp, pairs)
    assert 5 <= len(calls) <= 7  # ~12 ms over the run in steps of > 2 ms
    assert all(b[0] - a[0] > 2000 for a, b in zip(calls, calls[1:]))
    assert calls[-1][1] == pytest.approx(100, abs=2)
    plain = SecondaryClockSynchronizer()
    plain.set_clock_adjust_callback(lambda correction, skew: calls.append((correction, skew)))
    before = len(calls)
    same, _ = run_online(plain.process_timestamp, pairs)
    assert len(calls) == before  # without ADJUST_CLOCK the callback is never used
    assert np.array_equal(same, output)  # and timestamps do not depend on it


def test_write_tsyncfile_lets_edlio_rebuild_the_mapping(tmp_path: Path) -> None:
    pairs = pairs_for(drift=80, minutes=3, steps=((100_000_000, 50_000),))
    sync = SecondaryClockSynchronizer(30, id="cam")
    sync.set_tsync_file_path(tmp_path / "cam-sync")
    assert sync.strategies & TSYNC and sync.tsync_file_path == tmp_path / "cam-sync.tsync"
    assert sync.start()
    output, _ = run_online(sync.process_timestamp, pairs)
    sync.stop()
    sync.stop()  # idempotent
    ours = read_tsync(tmp_path / "cam-sync.tsync")
    assert ours.mode == TSyncFileMode.SYNCPOINTS
    assert ours.time_names == ("device-time", "master-time") and ours.tolerance_us == 16_667
    assert 3 < len(ours) < len(pairs) / 20  # far fewer rows than timestamps
    assert tuple(ours.times[-1]) == (pairs.secondary_usec[-1], output[-1])
    edlio_file = EdlioTSyncFile(tmp_path / "cam-sync.tsync")
    rows = np.asarray(edlio_file.times, dtype=np.int64)
    assert np.array_equal(rows, ours.times)
    # hwlink's offline tool (edlio's piecewise-linear sync-point semantics) rebuilds every returned timestamp,
    # across the forward clock step too (rows on both sides of it)
    mapping = SyncPointMap.from_tsync(tmp_path / "cam-sync.tsync").time_map()
    rebuilt = mapping(pairs.secondary_usec.astype(np.float64))
    assert np.abs(rebuilt - output).max() <= 15


def test_write_tsyncfile_without_a_path_is_a_clear_error() -> None:
    sync = SecondaryClockSynchronizer()
    sync.set_strategies(FWD | BWD | TSYNC)
    with pytest.raises(ConfigError, match="set_tsync_file_path"):
        sync.start()
    cleared = SecondaryClockSynchronizer()
    cleared.set_tsync_file_path("x")
    cleared.set_tsync_file_path("")
    assert not cleared.strategies & TSYNC


def test_live_pairs_from_the_simulated_board() -> None:
    """The sim board's readings carry exactly the pairs the synchronizer consumes (master arrival, device time)."""
    from hwlink.drivers import open_board
    from hwlink.lines import LineModeFlags

    url = "sim://?drift_ppm=3000&analog_interval=2ms&latency=uniform:100us-400us&offset=2s&seed=4"
    sync = SecondaryClockSynchronizer(500)
    rows = []
    with open_board(url) as board:
        board.set_mode(board.line("A0").line_id, LineModeFlags.IS_INPUT)
        with board.readings(lines=["A0"]) as readings:
            while len(rows) < 600:
                reading = readings.get(timeout=2)
                rows.append((reading.time_usec, reading.device_time_usec,
                             sync.process_timestamp(reading.time_usec, reading.device_time_usec)))
    master, device, output = (np.array(column, dtype=np.int64) for column in zip(*rows))
    assert sync.skew_ppm == pytest.approx(3000, abs=150)  # a ceramic-resonator-sized rate error
    assert np.all(output <= master) and np.all(np.diff(output) >= 0)
    # the receive jitter (300 µs wide) is gone: output follows the device clock's 2 ms ticks
    settled = slice(300, None)
    assert np.std(np.diff(output[settled])) < np.std(np.diff(master[settled])) / 5
    assert np.all(np.diff(device) > 0)
