"""Offline correction speed: hwlink's piecewise-linear map against a plain memory copy, np.interp and edlio.

Goals (issue 3, restated in issue 19): >= 100 M timestamps/s, and within 2x of a plain numpy copy of the same
data, for any input order, at 20 M and at 100 M timestamps.

Method (issue 19): every peer does the same allocation. Two settings, each its own table: (a) every peer
allocates its float64 result (``np.copy``, ``np.interp``, ``time_map(values)``), (b) every peer that can writes
into one preallocated ``out`` (``np.copyto``, ``time_map(values, out=out)``; ``np.interp`` has no ``out``, so it
appears only in (a)). All peers of a table run alternated, round by round; the first round is a warm-up and is
dropped; min and median over the remaining rounds. The copy is the floor (memory bandwidth for the same bytes).
"""

from __future__ import annotations

import numpy as np

from benchmarks import _harness as harness
from hwlink.sync.offline import SyncPointMap


def _table(count: int, title: str, peers: list[tuple[str, object]], rounds: int, floor: str) -> None:
    timings = harness.alternate(peers, rounds)
    base = timings[floor]
    print(f"\n{title} ({count:,} timestamps; {rounds} rounds after one warm-up, alternated; {harness.load()})\n")
    print("| operation | min / median (ms) | M timestamps/s (min) | x floor (min) | x floor (median) |")
    print("|---|---:|---:|---:|---:|")
    for label, _ in peers:
        row = timings[label]
        print(f"| {label} | {harness.min_median(row)} | {count / row.min / 1e6:.0f} | "
              f"{row.min / base.min:.2f}x | {row.median / base.median:.2f}x |")


def run(count: int, rounds: int, with_edlio: bool) -> None:
    rate = 30_000.0
    rng = np.random.default_rng(1)
    # A Syntalos-like sync map: a row every ~10 s over the recording, ±80 ppm drift, jitter.
    duration_us = count / rate * 1e6
    device = np.concatenate([[0.0], np.sort(rng.uniform(0, duration_us, int(duration_us / 10e6)))])
    rows = np.stack([np.rint(device), np.rint(device * (1 + 40e-6) + 1234 + rng.normal(0, 100, device.size))], 1)
    points = SyncPointMap(rows=rows)
    time_map = points.time_map()
    sample_map = points.sample_map(rate)
    device_times = np.sort(rng.uniform(0, duration_us, count))
    order = rng.permutation(count)
    shuffled = device_times[order]
    mapped = time_map(device_times)
    inside = device_times <= rows[-1, 0]
    assert np.allclose(mapped[inside], np.interp(device_times, rows[:, 0], rows[:, 1])[inside], rtol=0, atol=1e-6)
    assert np.array_equal(time_map(shuffled), mapped[order])
    del order, mapped, inside
    xs, ys = rows[:, 0], rows[:, 1]
    print(f"Sync map of {rows.shape[0]} rows.")

    allocating: list[tuple[str, object]] = [
        ("floor: `np.copy` (allocates)", lambda: np.copy(device_times)),
        ("**hwlink map, sorted device times (checked, any order accepted)**", lambda: time_map(device_times)),
        ("**hwlink map, shuffled device times**", lambda: time_map(shuffled)),
        ("hwlink map, `assume_sorted=True`", lambda: time_map(device_times, assume_sorted=True)),
        ("`np.interp` (no extrapolation)", lambda: np.interp(device_times, xs, ys)),
        ("`np.interp`, shuffled", lambda: np.interp(shuffled, xs, ys)),
    ]
    _table(count, "(a) every peer allocates its result", allocating, rounds, allocating[0][0])

    out = np.empty(count)
    preallocated: list[tuple[str, object]] = [
        ("floor: `np.copyto` into `out`", lambda: np.copyto(out, device_times)),
        ("**hwlink map, sorted device times (checked)**", lambda: time_map(device_times, out=out)),
        ("**hwlink map, shuffled device times**", lambda: time_map(shuffled, out=out)),
        ("hwlink map, `assume_sorted=True`", lambda: time_map(device_times, out=out, assume_sorted=True)),
    ]
    if with_edlio:  # the smaller size only: two more arrays of the full size
        indices = np.arange(count, dtype=np.float64)
        device_int = np.rint(device_times).astype(np.int64)
        preallocated += [
            ("hwlink map, int64 device times", lambda: time_map(device_int, out=out)),
            ("hwlink map, sample indices (`assume_sorted`)",
             lambda: sample_map(indices, out=out, assume_sorted=True)),
        ]
    _table(count, "(b) every peer writes into one preallocated `out`", preallocated, rounds, preallocated[0][0])

    if with_edlio:
        from edlio import ureg
        from edlio.dataio.intan import _make_synced_tsvec

        edlio_count = min(count, 2_000_000)
        sync_map = rows[rows[:, 0] < edlio_count / rate * 1e6] * ureg.usec
        edlio_indices = (sync_map[:, 0].to(ureg.seconds) * rate * ureg.hertz).magnitude.astype(np.int32)
        small = np.arange(edlio_count, dtype=np.float64)
        timings = harness.alternate([
            ("copy", lambda: np.copy(small)),
            ("edlio", lambda: _make_synced_tsvec(edlio_count, rate * ureg.hertz, edlio_indices, sync_map)),
            ("hwlink", lambda: points.sample_times(edlio_count, rate)),
        ], 3)
        print(f"\nedlio `_make_synced_tsvec` (Pint) at {edlio_count:,} sample times, all allocating, alternated: "
              f"copy {harness.min_median(timings['copy'])} ms, edlio {harness.min_median(timings['edlio'])} ms "
              f"({timings['edlio'].min / timings['copy'].min:.1f}x floor), hwlink `sample_times` "
              f"{harness.min_median(timings['hwlink'])} ms ({timings['hwlink'].min / timings['copy'].min:.2f}x "
              "floor), min / median")


def main(quick: bool) -> None:
    sizes = [2_000_000] if quick else [20_000_000, 100_000_000]
    for count in sizes:
        print(f"\n### {count:,} float64 timestamps\n")
        run(count, 3 if count > 50_000_000 else 7, with_edlio=count == sizes[0])
