"""Online clock synchronization: hwlink's lower-envelope estimator vs the Syntalos baseline vs raw receive times.

Simulated runs in simulated time (an hour each; 10 minutes with --quick) over the grid of issue 4: rates
{30 Hz, 1 kHz} x drift {0, 10, 50, 100 ppm, -20 ppm per hour (50 -> 30 ppm over an hour)} x latency {exponential 1 ms; USB 1 ms
frames with 5 % spikes of 5-20 ms}, plus event runs at 100 ppm (device clock steps of +50 ms and -50 ms and a 30 s
gap). Errors are output minus the true event time on the master clock. The baseline is auto-tuned to the rate
(N, tolerance) as Syntalos' modules do. "offline" is hwlink's vectorised non-causal map over the whole run.
"""

from __future__ import annotations

import math

import numpy as np

from hwlink.sync.clockmodel import DeviceClock, parse_latency
from hwlink.sync.estimator import map_offline
from hwlink.sync.simulation import Scenario, compare, summary_row

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
    print("| rate | drift | latency | event | hwlink p50 / p99 / max | syntalos p50 / p99 / max | "
          "raw p50 / p99 / max | offline p99 | warm-up hwlink / syntalos | back hwlink / syntalos | "
          "p99 syntalos/hwlink | p99 raw/hwlink | cost hwlink / syntalos |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
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
        print(f"| {label} | {ms(hw['p50'])} / {ms(hw['p99'])} / {ms(hw['max'])} "
              f"| {ms(sy['p50'])} / {ms(sy['p99'])} / {ms(sy['max'])} "
              f"| {ms(raw['p50'])} / {ms(raw['p99'])} / {ms(raw['max'])} | {ms(offline_p99)} "
              f"| {warmup_text(hw['warmup_s'])} / {warmup_text(sy['warmup_s'])} "
              f"| {hw['backward']:.0f} / {sy['backward']:.0f} "
              f"| {sy['p99'] / hw['p99']:.0f}x | {raw['p99'] / hw['p99']:.1f}x "
              f"| {hw['cost']:.2f} / {sy['cost']:.2f} |", flush=True)
    print(f"\nMean cost per timestamp: hwlink {totals['hwlink'][0] / totals['hwlink'][1]:.2f} µs, "
          f"syntalos {totals['syntalos'][0] / totals['syntalos'][1]:.2f} µs. "
          f"Smallest p99 raw/hwlink ratio: {worst_ratio_raw:.1f}x.")
