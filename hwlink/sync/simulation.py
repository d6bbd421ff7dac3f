"""Simulated (master, device) timestamp pairs in simulated time, and the side-by-side comparison of synchronizers.

The pairs come from the same :class:`DeviceClock` and :class:`LatencyModel` the ``sim://`` board uses live, drawn
for a whole run at once with numpy, so an hour of 1 kHz data is ready in well under a second. Used by
``hwlink sync simulate``, the benchmark and the tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hwlink.sync.clockmodel import DeviceClock, LatencyModel


@dataclass(frozen=True)
class SimulatedPairs:
    """True event times and what a synchronizer sees: device timestamps and master arrival times (µs)."""

    event_usec: np.ndarray  # float64, the truth on the master clock
    secondary_usec: np.ndarray  # int64, device clock
    master_usec: np.ndarray  # int64, master receive time

    def __len__(self) -> int:
        return int(self.event_usec.size)


def simulate_pairs(
    rate_hz: float,
    duration_usec: int,
    clock: DeviceClock,
    latency: LatencyModel,
    *,
    seed: int = 0,
    gaps: Sequence[tuple[int, int]] = (),
    start_usec: float | None = None,
) -> SimulatedPairs:
    """Events every ``1/rate_hz`` of *device* time (a device samples on its own clock), none inside ``gaps``
    (``(at_usec, length_usec)`` on the master clock). The first event falls ``start_usec`` of device time after
    master time 0 (a random phase within one period unless given)."""
    rng = np.random.default_rng(seed)
    period = 1e6 / rate_hz
    start = rng.uniform(0, period) if start_usec is None else start_usec
    # device ticks k*period map back to master time through the clock's inverse (Newton on the smooth part)
    smooth = DeviceClock(clock.offset_usec, clock.drift_ppm, clock.drift_change_ppm_per_hour)
    first_tick = float(smooth.device_time(0.0)) + start
    ticks = first_tick + period * np.arange(int(duration_usec / period) + 1, dtype=np.float64)
    events = ticks - clock.offset_usec
    for _ in range(3):
        events -= (smooth.device_time(events) - ticks) / (1 + clock.drift_ppm * 1e-6)
    events = events[(events >= 0) & (events < duration_usec)]
    keep = np.ones(events.size, dtype=bool)
    for at_usec, length_usec in gaps:
        keep &= ~((events >= at_usec) & (events < at_usec + length_usec))
    events = events[keep]
    secondary = clock.device_time_int(events)
    master = np.floor(latency.arrival_times(events, rng)).astype(np.int64)
    return SimulatedPairs(events, secondary, master)


@dataclass(frozen=True)
class MethodResult:
    """One method's output over a run, its errors against the truth and its cost."""

    name: str
    output_usec: np.ndarray
    error_usec: np.ndarray  # output - true event time
    warmup_usec: float  # time from the start until its error settles (see settle_time)
    cost_usec_per_timestamp: float

    def after_warmup(self, event_usec: np.ndarray) -> np.ndarray:
        return np.abs(self.error_usec[event_usec >= event_usec[0] + self.warmup_usec])

    @property
    def backward_steps(self) -> int:
        return int(np.count_nonzero(np.diff(self.output_usec) < 0))


def settle_time(event_usec: np.ndarray, error_usec: np.ndarray, bound_usec: float,
                block_usec: float = 1_000_000, until_usec: float | None = None) -> float:
    """Time from the first event until every later block of ``block_usec`` keeps its p99 |error| within the
    bound (up to ``until_usec``, e.g. the first clock event); ``inf`` if it never settles."""
    start = event_usec[0]
    stop = event_usec[-1] if until_usec is None else until_usec
    block = ((event_usec - start) // block_usec).astype(np.int64)
    inside = event_usec <= stop
    block, errors = block[inside], np.abs(error_usec[inside])
    if block.size == 0:
        return 0.0
    first = np.flatnonzero(np.concatenate(([True], np.diff(block) != 0)))
    sizes = np.diff(np.concatenate((first, [block.size])))
    p99 = np.array([np.percentile(errors[a:a + n], 99) for a, n in zip(first, sizes)])
    bad = np.flatnonzero(p99 > bound_usec)
    if bad.size == 0:
        return 0.0
    if bad[-1] == p99.size - 1:
        return float("inf")
    return float(block[first[bad[-1] + 1]] * block_usec)


def run_online(process: Callable[[int, int], int], pairs: SimulatedPairs) -> tuple[np.ndarray, float]:
    """Feed every pair through ``process(master, secondary)``; returns the outputs and µs per call."""
    masters = pairs.master_usec.tolist()
    secondaries = pairs.secondary_usec.tolist()
    started = time.perf_counter()
    outputs = [process(m, s) for m, s in zip(masters, secondaries)]
    elapsed = time.perf_counter() - started
    return np.asarray(outputs, dtype=np.int64), elapsed * 1e6 / max(len(masters), 1)


@dataclass(frozen=True)
class Scenario:
    """One simulated run: sample rate, device clock, transport latency, data gaps."""

    rate_hz: float
    clock: DeviceClock
    latency: LatencyModel
    duration_usec: int
    gaps: tuple[tuple[int, int], ...] = ()
    seed: int = 0

    def pairs(self) -> SimulatedPairs:
        return simulate_pairs(self.rate_hz, self.duration_usec, self.clock, self.latency, seed=self.seed,
                              gaps=self.gaps)

    @property
    def first_event_usec(self) -> float | None:
        """Master time of the first clock step or gap, where a start-up warm-up ends at the latest."""
        times = [float(at) for at, _ in self.clock.steps] + [float(at) for at, _ in self.gaps]
        return min(times) if times else None


WARMUP_BOUND_USEC = 200.0


def warmup_time(event_usec: np.ndarray, error_usec: np.ndarray, until_usec: float | None = None) -> float:
    """Time until every 1 s block's p99 |error| stays within max(0.2 ms, 1.5x the p99 over the last quarter of
    the run), up to ``until_usec``."""
    tail = np.abs(error_usec[event_usec >= event_usec[0] + 0.75 * (event_usec[-1] - event_usec[0])])
    bound = max(WARMUP_BOUND_USEC, 1.5 * float(np.percentile(tail, 99)) if tail.size else 0.0)
    return settle_time(event_usec, error_usec, bound, until_usec=until_usec)


def compare(scenario: Scenario, pairs: SimulatedPairs | None = None) -> list[MethodResult]:
    """hwlink, the Syntalos baseline (auto-tuned to the rate, as Syntalos modules do) and raw receive times.

    Warm-up: hwlink's is the time until every 1 s block's p99 |error| stays within max(0.2 ms, 1.5x its p99
    over the last quarter of the run) up to the first clock event, the error taken beyond the latency model's
    constant delay (which no estimator can see: it stays in every output for ever, so it is not a matter of
    warming up); the baseline's is its 2N-point calibration (it returns raw times until then) or that settle
    time if later; raw times need none.
    """
    from hwlink.sync.baseline import SyntalosSecondaryClockSynchronizer
    from hwlink.sync.secondary import SecondaryClockSynchronizer

    pairs = scenario.pairs() if pairs is None else pairs
    events = pairs.event_usec
    results = []
    hwlink_sync = SecondaryClockSynchronizer(scenario.rate_hz, id="hwlink")
    baseline = SyntalosSecondaryClockSynchronizer(scenario.rate_hz, id="syntalos")
    baseline.start()
    calibration_end = events[min(2 * baseline.calibration_points, events.size) - 1]
    for name, sync in (("hwlink", hwlink_sync), ("syntalos", baseline)):
        output, cost = run_online(sync.process_timestamp, pairs)
        error = output - events
        warmup = warmup_time(events, error - scenario.latency.constant_usec, scenario.first_event_usec)
        if name == "syntalos":
            warmup = max(warmup, float(calibration_end - events[0]))
        results.append(MethodResult(name, output, error, warmup, cost))
    raw_error = pairs.master_usec - events
    results.append(MethodResult("raw", pairs.master_usec, raw_error, 0.0, 0.0))
    return results


def summary_row(result: MethodResult, events: np.ndarray) -> dict[str, float]:
    """p50/p99/max |error| after the method's warm-up (all points if it never settles), warm-up, monotonicity."""
    warmup = result.warmup_usec if math.isfinite(result.warmup_usec) else 0.0
    errors = np.abs(result.error_usec[events >= events[0] + warmup])
    return {
        "p50": float(np.percentile(errors, 50)),
        "p99": float(np.percentile(errors, 99)),
        "max": float(errors.max()),
        "warmup_s": result.warmup_usec / 1e6,
        "backward": float(result.backward_steps),
        "cost": result.cost_usec_per_timestamp,
    }
