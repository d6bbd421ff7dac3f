"""SampleCounterSynchronizer: sample index -> master time for blocks from a hardware-clocked device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwlink.errors import ConfigError
from hwlink.sync import SampleCounterSynchronizer, TimeSyncStrategy
from hwlink.sync.clockmodel import DeviceClock, parse_latency
from hwlink.sync.tsync import read_tsync


def acquisition(rate: float, drift: float, block: int, seconds: float, seed: int = 0, offset_usec: float = 2e6,
                latency: str = "exp:1ms") -> tuple[np.ndarray, np.ndarray]:
    """True master times of every sample and the arrival time of each block (after its last sample)."""
    clock = DeviceClock(drift_ppm=drift)
    samples = int(rate * seconds) // block * block
    device = np.arange(samples) * 1e6 / rate
    truth = offset_usec + device / (1 + drift * 1e-6)  # inverse of the device clock
    assert clock.drift_ppm == drift
    last_of_block = truth[block - 1::block]
    arrival = np.floor(parse_latency(latency).arrival_times(last_of_block + 200, np.random.default_rng(seed)))
    return truth, arrival.astype(np.int64)


@pytest.mark.parametrize("drift", [-100.0, 0.0, 60.0])
def test_sample_times_follow_the_device_clock_with_drift(drift: float) -> None:
    rate, block = 1000.0, 50
    truth, arrivals = acquisition(rate, drift, block, 120)
    sync = SampleCounterSynchronizer(rate, id="ai")
    times = np.concatenate([sync.process_block(int(arrival), block) for arrival in arrivals])
    assert times.dtype == np.int64 and times.size == truth.size
    assert np.all(np.diff(times) > 0)
    error = times - truth
    settled = truth > truth[0] + 5e6
    # the 200 µs constant transfer delay cannot be seen from one-way data; everything else is removed
    assert np.all(np.abs(error[settled] - 200) < 60)
    assert sync.skew_ppm == pytest.approx(drift, abs=1)
    assert sync.effective_sample_rate_hz == pytest.approx(rate * (1 + drift * 1e-6), rel=2e-6)
    assert sync.samples_seen == truth.size and sync.is_calibrated


def test_noise_free_linear_drift_is_corrected_and_sign_is_right() -> None:
    """The FreqCounter never corrected noise-free drift and flipped the sign of small ones."""
    rate, block = 1000.0, 10
    truth, arrivals = acquisition(rate, -100.0, block, 60, latency="none")
    sync = SampleCounterSynchronizer(rate)
    times = np.concatenate([sync.process_block(int(arrival), block) for arrival in arrivals])
    assert sync.skew_ppm == pytest.approx(-100, abs=0.2)
    assert np.abs(times - truth - 200)[truth > truth[0] + 2e6].max() < 3


def test_dropped_samples_keep_their_indices() -> None:
    rate, block = 2000.0, 100
    truth, arrivals = acquisition(rate, 25.0, block, 30)
    sync = SampleCounterSynchronizer(rate)
    kept = []
    for number, arrival in enumerate(arrivals):
        if 100 <= number < 110:
            continue  # ten blocks lost in the driver
        kept.append((number, sync.process_block(int(arrival), block, first_index=number * block)))
    for number, times in kept[-20:]:
        assert np.abs(times - truth[number * block:(number + 1) * block] - 200).max() < 80
    with pytest.raises(ConfigError):
        sync.process_block(10, 0)
    with pytest.raises(ConfigError):
        sync.process_block(10, 5, first_index=-1)


def test_receive_time_reckoning_without_shift_strategies() -> None:
    sync = SampleCounterSynchronizer(1000.0)
    sync.set_strategies(TimeSyncStrategy.NONE)
    times = sync.process_block(1_000_000, 5)
    assert times.tolist() == [996_000, 997_000, 998_000, 999_000, 1_000_000]


def test_counter_writes_a_tsync_file(tmp_path: Path) -> None:
    rate, block = 1000.0, 50
    truth, arrivals = acquisition(rate, 40.0, block, 60)
    sync = SampleCounterSynchronizer(rate, id="daq")
    sync.set_tsync_file_path(tmp_path / "daq.tsync")
    with sync:
        times = np.concatenate([sync.process_block(int(arrival), block) for arrival in arrivals])
    rows = read_tsync(tmp_path / "daq.tsync").times
    assert 2 < len(rows) < len(arrivals)
    assert tuple(rows[-1]) == (round((truth.size - 1) * 1e6 / rate), times[-1])  # the real last pair
    device = np.arange(truth.size) * 1e6 / rate
    rebuilt = np.interp(device, rows[:, 0], rows[:, 1])
    last_block_start = truth.size - block
    assert np.abs(rebuilt[:last_block_start] - times[:last_block_start]).max() <= 15


def test_bad_rates_are_rejected() -> None:
    for rate in (0, -5, float("nan")):
        with pytest.raises(ConfigError):
            SampleCounterSynchronizer(rate)


def test_stamps_stay_strictly_increasing_when_the_estimate_moves_earlier() -> None:
    """The first block came late (a slow USB transfer), the second on time: the line moves 3 ms earlier, so the
    second block's first samples would fall before the first block's last stamp. They follow it 1 µs apart
    (they used to repeat it) and the rest of the block keeps its estimated times."""
    sync = SampleCounterSynchronizer(10_000.0)
    first = sync.process_block(1_013_000, 100)  # samples 0..99 at 1.000000-1.009900 s, arrived 3 ms late
    second = sync.process_block(1_020_000, 100)  # samples 100..199, arrived at once
    stamps = np.concatenate([first, second])
    assert np.all(np.diff(stamps) > 0)
    assert second[0] == first[-1] + 1
    assert second[-1] == 1_020_000 and np.all(np.diff(second[-60:]) == 100)
