"""The Syntalos FreqCounterSynchronizer baseline reproduces the behaviours and bugs clocksync-baseline.md §4 states."""

from __future__ import annotations

import numpy as np
import pytest

from hwlink.sync.baseline import SyntalosFreqCounterSynchronizer, eigen_linspaced_uint64
from hwlink.sync.secondary import TimeSyncStrategy

TSYNC = TimeSyncStrategy.WRITE_TSYNCFILE


@pytest.mark.parametrize(("length", "k", "last"), [
    (10, 5, 4), (10, 6, 4), (10, 7, 4), (10, 8, 4), (128, 43, 42), (128, 64, 63), (128, 100, 63), (128, 126, 63),
    (128, 150, 127), (128, 200, 127), (10, 3, 3),
])
def test_linspaced_ramp_ends_short_of_positive_offsets(length: int, k: int, last: int) -> None:
    assert int(eigen_linspaced_uint64(length, k)[-1]) == last


def test_linspaced_ramp_garbage_for_negative_offsets() -> None:
    ramp = eigen_linspaced_uint64(10, -5)
    assert (0 - int(ramp[-1])) % 2**64 == 7  # subtracting it shifts the last index by +7 instead of +5
    assert 1e19 < int(ramp[8]) < 2e19  # middle elements ~1.6e19
    assert int(eigen_linspaced_uint64(10, -1)[-1]) == 1  # k = -1 ends at +1: the wrong direction
    assert int(eigen_linspaced_uint64(128, -5)[-1]) == (-129) % 2**64  # +129 instead of +5


def run_blocks(sync: SyntalosFreqCounterSynchronizer, rate: float, seconds: float, drift_ppm: float,
               jitter_usec: float, block: int = 10, seed: int = 0) -> list[int]:
    """One block per receive time; device indices run at ``rate`` on a clock off by ``drift_ppm``."""
    rng = np.random.default_rng(seed)
    offsets = []
    for number in range(int(rate * seconds) // block):
        first = number * block
        idx = np.arange(first, first + block, dtype=np.uint64)
        true_end = (first + block) / rate * 1e6 / (1 + drift_ppm * 1e-6)
        recv = int(true_end + 2000 + abs(rng.normal(0, jitter_usec)))
        sync.process_timestamps(recv, 0, 1, idx)
        offsets.append(sync.index_offset)
    return offsets


def test_slow_device_gets_the_wrong_sign() -> None:
    """§4.4 sign flip: a slow 1 kHz device (tol 1000 = one sample) first gets index offset +1, the wrong way."""
    sync = SyntalosFreqCounterSynchronizer(1000.0)
    sync.set_calibration_blocks_count(100)
    sync.start()
    offsets = run_blocks(sync, 1000.0, 40, -100.0, 300)
    assert set(offsets) == {0, 1}
    assert sync.time_correction_offset == 1000  # ceil(tpp), positive although the device is slow


def test_noise_free_linear_drift_is_never_corrected() -> None:
    """§4.4: every point past the tolerance is a 1.5-SD 'fluke' for a clean ramp."""
    for drift in (1000.0, -1000.0):
        sync = SyntalosFreqCounterSynchronizer(1000.0)
        sync.set_calibration_blocks_count(100)
        sync.start()
        offsets = run_blocks(sync, 1000.0, 30, drift, 0)
        assert set(offsets) == {0} and sync.time_correction_offset == 0


def test_with_jitter_a_fast_device_is_corrected() -> None:
    sync = SyntalosFreqCounterSynchronizer(1000.0)
    sync.set_calibration_blocks_count(100)
    sync.start()
    offsets = run_blocks(sync, 1000.0, 60, 1000.0, 300)
    assert max(offsets) > 1 and min(offsets) >= 0


def test_stop_without_last_valid_timestamp_writes_a_garbage_row() -> None:
    for last_valid in (None, "two blocks back"):
        sync = SyntalosFreqCounterSynchronizer(20_000.0)
        sync.set_strategies(TimeSyncStrategy.SHIFT_TIMESTAMPS_FWD | TimeSyncStrategy.SHIFT_TIMESTAMPS_BWD | TSYNC)
        sync.set_calibration_blocks_count(50)
        sync.start()
        for number in range(200):
            idx = np.arange(number * 128, (number + 1) * 128, dtype=np.uint64)
            sync.process_timestamps(1000 + (number + 1) * 6400, 0, 1, idx)
        assert sync.tsync_rows[0][0] == 0  # the calibration row (0, -expectedOffset)
        last_assumed, device = 1000 + 200 * 6400, round(200 * 128 * 50)
        if last_valid is None:
            sync.stop()
            assert sync.tsync_rows[-1] == (device - last_assumed, 0)
        else:
            sync.set_last_valid_master_timestamp(last_assumed - 2 * 6400)
            sync.stop()
            assert sync.tsync_rows[-1] == (device - 2 * 6400, last_assumed - 2 * 6400)


def test_upstream_freq_counter_scenario() -> None:
    """runFreqCounterSynchronizer (rebuilt from its description): 20 kHz, 10-sample blocks, 2 per receive time,
    N = 1000, tol 1000; below the tolerance nothing changes, past it the offset follows with the right sign,
    master flukes do not move it, and it returns to 0 once the divergence is gone."""
    rate, block, n = 20_000.0, 10, 1000
    sync = SyntalosFreqCounterSynchronizer(rate)
    sync.set_calibration_blocks_count(n)
    sync.set_tolerance(1000)
    sync.start()
    rng = np.random.default_rng(1)
    index, master, divergence = 0, 0, 0.0
    seen_offset = False

    def feed(extra_usec: float, fluke: int = 0) -> list[np.ndarray]:
        nonlocal index, master
        master += 1000
        blocks = []
        for block_index in range(2):
            idx = np.arange(index, index + block, dtype=np.uint64) + np.uint64(int(extra_usec * rate / 1e6))
            original = idx.copy()
            sync.process_timestamps(master + fluke + int(rng.integers(-150, 150)), block_index, 2, idx)
            blocks.append(idx - original)
            index += block
        return blocks

    for _ in range(n):  # calibration: 2N blocks
        feed(0)
    assert sync.is_calibrated
    for step in range(12 * n):
        divergence += 700 / (2 * n) * 2  # 700 µs per 2N blocks (two blocks per step)
        fluke = int(rng.integers(50, 450)) if step % 97 == 0 else 0
        before = sync.index_offset
        shifts = feed(divergence, fluke)
        if fluke:
            assert sync.index_offset == before
        div_index = divergence * rate / 1e6
        if divergence < 1000:
            assert sync.index_offset == 0 and all(not s.any() for s in shifts)
        elif sync.index_offset:
            seen_offset = True
            assert div_index / 21 <= sync.index_offset < div_index
    assert seen_offset
    for _ in range(8 * n):  # divergence removed
        feed(0)
    assert sync.index_offset == 0
