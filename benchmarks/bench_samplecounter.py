"""Sample-counter synchronization: hwlink's SampleCounterSynchronizer vs Syntalos' FreqCounterSynchronizer.

The Intan-like setting of clocksync-baseline.md §4.4: 20 kHz, 128-sample blocks, tolerance 1400 µs, N = 3125
blocks, WRITE_TSYNCFILE only, blocks received 2 ms after their last sample plus |N(0, 500 µs)|; sample times
of the baseline rebuilt from its sync points as edlio does (linear between rows, an offset only with <= 2 rows;
hwlink's SyncPointMap, which continues the end segments instead of edlio's zeros). hwlink's are the timestamps
``process_block`` returns. Errors are against the true sample times plus the constant 2 ms transport floor (which
no one-way method can see). 10-minute runs (2 with --quick) in simulated time.
"""

from __future__ import annotations

import time

import numpy as np

from hwlink.sync.baseline import SyntalosFreqCounterSynchronizer
from hwlink.sync.counter import SampleCounterSynchronizer
from hwlink.sync.offline import SyncPointMap
from hwlink.sync.secondary import TimeSyncStrategy

RATE_HZ = 20_000.0
BLOCK = 128
FLOOR_USEC = 2000


def simulate(drift_ppm: float, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True master time of every sample and the receive time of each block."""
    blocks = int(RATE_HZ * seconds) // BLOCK
    truth = 1e6 + np.arange(blocks * BLOCK) * 1e6 / RATE_HZ / (1 + drift_ppm * 1e-6)
    jitter = np.abs(np.random.default_rng(seed).normal(0, 500, blocks))
    receive = np.floor(truth[BLOCK - 1::BLOCK] + FLOOR_USEC + jitter).astype(np.int64)
    return truth, receive


def run_hwlink(receive: np.ndarray) -> tuple[np.ndarray, float]:
    sync = SampleCounterSynchronizer(RATE_HZ)
    started = time.perf_counter()
    times = np.concatenate([sync.process_block(arrival, BLOCK) for arrival in receive.tolist()])
    return times, time.perf_counter() - started


def run_syntalos(receive: np.ndarray) -> tuple[np.ndarray, int, float]:
    sync = SyntalosFreqCounterSynchronizer(RATE_HZ)
    sync.set_strategies(TimeSyncStrategy.WRITE_TSYNCFILE)
    sync.set_tolerance(1400)
    sync.set_calibration_blocks_count(3125)
    sync.start()
    started = time.perf_counter()
    for number, arrival in enumerate(receive.tolist()):
        sync.process_timestamps(arrival, 0, 1, np.arange(number * BLOCK, (number + 1) * BLOCK, dtype=np.uint64))
    sync.set_last_valid_master_timestamp(int(receive[-1]))
    sync.stop()
    elapsed = time.perf_counter() - started
    mapping = SyncPointMap(rows=np.array(sync.tsync_rows, dtype=np.float64))
    return mapping.sample_times(receive.size * BLOCK, RATE_HZ), len(sync.tsync_rows), elapsed


def main(quick: bool) -> None:
    seconds = 120 if quick else 600
    print(f"{seconds / 60:g}-minute runs at 20 kHz; |error| in ms beyond the 2 ms transport floor, over all samples "
          "after the baseline's 40 s calibration.\n")
    print("| drift | hwlink p50 / p99 / max | syntalos (tsync rows, interpolated) p50 / p99 / max | syntalos rows "
          "| max ratio | cost per sample hwlink / syntalos (µs) |")
    print("|---|---|---|---|---|---|")
    for seed, drift in enumerate((0.0, 20.0, 100.0, -100.0)):
        truth, receive = simulate(drift, seconds, seed)
        ours, our_seconds = run_hwlink(receive)
        theirs, rows, their_seconds = run_syntalos(receive)
        after = truth > truth[0] + 40e6
        e_ours = np.abs(ours - truth - FLOOR_USEC)[after] / 1000
        e_theirs = np.abs(theirs - truth - FLOOR_USEC)[after] / 1000
        stats = [f"{np.percentile(e, 50):.3f} / {np.percentile(e, 99):.3f} / {e.max():.3f}" for e in (e_ours, e_theirs)]
        ratio = e_theirs.max() / max(e_ours.max(), 0.001)
        print(f"| {drift:g} ppm | {stats[0]} | {stats[1]} | {rows} | {ratio:.0f}x "
              f"| {our_seconds * 1e6 / truth.size:.3f} / {their_seconds * 1e6 / truth.size:.3f} |", flush=True)
