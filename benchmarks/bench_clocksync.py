"""Online clock synchronization: hwlink's lower-envelope estimator vs the Syntalos baseline vs raw receive times.

Simulated runs in simulated time (an hour each; 10 minutes with --quick) over the grid of issue 4: rates
{30 Hz, 1 kHz} x drift {0, 10, 50, 100 ppm, a slow change of -20 ppm per hour from 50 ppm} x latency
{exponential 1 ms; USB 1 ms frames with 5 % spikes of 5-20 ms}, plus event runs at 100 ppm (device clock steps
of +50 ms and -50 ms a third into the run, and a 30 s gap there). Errors are output minus the true event time on
the master clock; "latency floor" is the smallest transport delay of the run, which one-way data cannot reveal.
The baseline is auto-tuned to the rate (N, tolerance) as Syntalos' modules do. "offline" is hwlink's vectorised
non-causal map over the whole run."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from hwlink.sync.baseline import SyntalosSecondaryClockSynchronizer
from hwlink.sync.clockmodel import DeviceClock, parse_latency
from hwlink.sync.counter import SampleCounterSynchronizer
from hwlink.sync.estimator import DriftEstimator, map_offline
from hwlink.sync.secondary import SecondaryClockSynchronizer
from hwlink.sync.simulation import Scenario, compare, run_online, summary_row

LATENCIES = {"exp 1 ms": "exp:1ms", "USB 1 ms + 5 % spikes": "usb:1ms"}
SPIKES = {"exp 1 ms": None, "USB 1 ms + 5 % spikes": "0.05:5ms-20ms"}
HOUR_USEC = 3_600_000_000


def drift_label(clock: DeviceClock, duration_usec: int) -> str:
    if clock.drift_change_ppm_per_hour:
        final = clock.drift_ppm + clock.drift_change_ppm_per_hour * duration_usec / HOUR_USEC
        return f"{clock.drift_ppm:g} -> {final:g} ppm"
    return f"{clock.drift_ppm:g} ppm"


def scenarios(duration_usec: int) -> list[tuple[str, Scenario]]:
    runs = []
    seed = 0
    clocks = [DeviceClock(offset_usec=-1_234_567, drift_ppm=d) for d in (0, 10, 50, 100)]
    # a slow drift change: -20 ppm per hour (50 -> 30 ppm over an hour), as a device warming up
    clocks.append(DeviceClock(offset_usec=-1_234_567, drift_ppm=50, drift_change_ppm_per_hour=-20.0))
    for rate in (30.0, 1000.0):
        for label, spec in LATENCIES.items():
            latency = parse_latency(spec).with_spikes(SPIKES[label])
            for clock in clocks:
                seed += 1
                runs.append((f"{rate:g} Hz | {drift_label(clock, duration_usec)} | {label} | -",
                             Scenario(rate, clock, latency, duration_usec, seed=seed)))
            third = duration_usec // 3
            events = {
                "step +50 ms": (DeviceClock(offset_usec=-1_234_567, drift_ppm=100, steps=((third, 50_000),)), ()),
                "step -50 ms": (DeviceClock(offset_usec=-1_234_567, drift_ppm=100, steps=((third, -50_000),)), ()),
                "30 s gap": (DeviceClock(offset_usec=-1_234_567, drift_ppm=100), ((third, 30_000_000),)),
            }
            for event, (clock, gaps) in events.items():
                seed += 1
                runs.append((f"{rate:g} Hz | {drift_label(clock, duration_usec)} | {label} | {event}",
                             Scenario(rate, clock, latency, duration_usec, gaps=gaps, seed=seed)))
    return runs


def ms(usec: float) -> str:
    return f"{usec / 1000:.3f}"


def warmup_text(seconds: float) -> str:
    return "never" if not math.isfinite(seconds) else f"{seconds:.1f}"


def main(quick: bool) -> None:
    duration = 600_000_000 if quick else HOUR_USEC
    print(f"Simulated runs of {duration / 60e6:g} min each. |error| in ms after each method's warm-up; "
          "warm-up in s; 'back' = output steps backwards; cost in µs per timestamp (this machine, shared).\n")
    print("| rate | drift | latency | event | latency floor | hwlink p50 / p99 / max | syntalos p50 / p99 / max | "
          "raw p50 / p99 / max | offline p99 | warm-up hwlink / syntalos | back hwlink / syntalos | "
          "p99 syntalos/hwlink | p99 raw/hwlink | cost hwlink / syntalos |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    totals = {"hwlink": [0.0, 0], "syntalos": [0.0, 0]}
    worst_ratio_raw = math.inf
    for label, scenario in scenarios(duration):
        pairs = scenario.pairs()
        results = compare(scenario, pairs)
        rows = {r.name: summary_row(r, pairs.event_usec) for r in results}
        offline = map_offline(pairs.secondary_usec, pairs.master_usec)
        offline_p99 = float(np.percentile(np.abs(offline - pairs.event_usec), 99))
        hw, sy, raw = rows["hwlink"], rows["syntalos"], rows["raw"]
        for name in totals:
            totals[name][0] += rows[name]["cost"] * len(pairs)
            totals[name][1] += len(pairs)
        worst_ratio_raw = min(worst_ratio_raw, raw["p99"] / hw["p99"])
        floor = float(np.min(pairs.master_usec - pairs.event_usec))
        print(f"| {label} | {ms(floor)} | {ms(hw['p50'])} / {ms(hw['p99'])} / {ms(hw['max'])} "
              f"| {ms(sy['p50'])} / {ms(sy['p99'])} / {ms(sy['max'])} "
              f"| {ms(raw['p50'])} / {ms(raw['p99'])} / {ms(raw['max'])} | {ms(offline_p99)} "
              f"| {warmup_text(hw['warmup_s'])} / {warmup_text(sy['warmup_s'])} "
              f"| {hw['backward']:.0f} / {sy['backward']:.0f} "
              f"| {sy['p99'] / hw['p99']:.0f}x | {raw['p99'] / hw['p99']:.1f}x "
              f"| {hw['cost']:.2f} / {sy['cost']:.2f} |", flush=True)
    print(f"\nMean cost per timestamp over the grid: hwlink {totals['hwlink'][0] / totals['hwlink'][1]:.2f} µs, "
          f"syntalos {totals['syntalos'][0] / totals['syntalos'][1]:.2f} µs (shared machine, load varies). "
          f"Smallest p99 raw/hwlink ratio: {worst_ratio_raw:.1f}x.\n")
    cost_table(200_000 if not quick else 50_000)


def best_of(repeats: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeats))


def cost_table(count: int) -> None:
    """Cost per timestamp, best of 5 (the grid's figures move with the load of the shared machine)."""
    pairs = Scenario(1000.0, DeviceClock(drift_ppm=100), parse_latency("usb:1ms").with_spikes("0.05:5ms-20ms"),
                     int(count * 1000)).pairs()

    def online(make: Callable[[], Callable[[int, int], int]]) -> Callable[[], float]:
        return lambda: run_online(make(), pairs)[1]

    def counter() -> float:
        sync = SampleCounterSynchronizer(1000.0)
        arrivals = pairs.master_usec[99::100].tolist()
        started = time.perf_counter()
        for arrival in arrivals:
            sync.process_block(arrival, 100)
        return (time.perf_counter() - started) * 1e6 / (len(arrivals) * 100)

    def baseline() -> Callable[[int, int], int]:
        sync = SyntalosSecondaryClockSynchronizer(1000.0)
        sync.start()
        return sync.process_timestamp

    print("| cost per timestamp (1 kHz, USB latency, best of 5) | µs |")
    print("|---|---|")
    print(f"| hwlink SecondaryClockSynchronizer.process_timestamp | "
          f"{best_of(5, online(lambda: SecondaryClockSynchronizer(1000.0).process_timestamp)):.2f} |")
    print(f"| hwlink DriftEstimator.add | {best_of(5, online(lambda: DriftEstimator().add)):.2f} |")
    print(f"| Syntalos baseline process_timestamp | {best_of(5, online(baseline)):.2f} |")
    print(f"| hwlink SampleCounterSynchronizer, per sample in blocks of 100 | {best_of(5, counter):.3f} |")
    started = time.perf_counter()
    map_offline(pairs.secondary_usec, pairs.master_usec)
    print(f"| hwlink map_offline (vectorised), per pair | "
          f"{(time.perf_counter() - started) * 1e6 / len(pairs):.3f} |")
