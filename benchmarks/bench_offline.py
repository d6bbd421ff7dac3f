"""Offline correction speed: hwlink's piecewise-linear map against a plain memory copy, np.interp and edlio.

Goals (issue 3): >= 100 M timestamps/s, and within 2x of a plain numpy copy of the same data.
"""

from __future__ import annotations

import time

import numpy as np

from hwlink.sync.offline import SyncPointMap


def _best(function, repeats: int = 7) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def _against_copy(copy, function, repeats: int = 9) -> tuple[float, float]:
    """Best times of ``copy`` and ``function`` run alternately, so both see the same machine load."""
    copy_s, function_s = [], []
    for _ in range(repeats):
        copy_s.append(_best(copy, 1))
        function_s.append(_best(function, 1))
    return min(copy_s), min(function_s)


def main(quick: bool) -> None:
    count = 2_000_000 if quick else 20_000_000
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
    indices = np.arange(count, dtype=np.float64)
    out = np.empty(count)
    shuffled = rng.permutation(device_times)

    def copy() -> None:
        np.copyto(out, device_times)

    copy_s, ours_s = _against_copy(copy, lambda: time_map(device_times, out=out))
    sorted_s = _against_copy(copy, lambda: time_map(device_times, out=out, assume_sorted=True))[1]
    device_int = np.rint(device_times).astype(np.int64)
    ours_int_s = _against_copy(copy, lambda: time_map(device_int, out=out))[1]
    samples_s = _against_copy(copy, lambda: sample_map(indices, out=out, assume_sorted=True))[1]
    interp_s = _best(lambda: np.interp(device_times, rows[:, 0], rows[:, 1]), 3)
    unsorted_s = _best(lambda: time_map(shuffled, out=out), 3)
    inside = device_times <= rows[-1, 0]
    assert np.allclose(time_map(device_times)[inside], np.interp(device_times, rows[:, 0], rows[:, 1])[inside],
                       rtol=0, atol=1e-6)

    from edlio import ureg
    from edlio.dataio.intan import _make_synced_tsvec

    edlio_count = min(count, 2_000_000)
    sync_map = rows[rows[:, 0] < edlio_count / rate * 1e6] * ureg.usec
    edlio_indices = (sync_map[:, 0].to(ureg.seconds) * rate * ureg.hertz).magnitude.astype(np.int32)
    edlio_s = _best(lambda: _make_synced_tsvec(edlio_count, rate * ureg.hertz, edlio_indices, sync_map), 2)
    edlio_s *= count / edlio_count

    print(f"{count:,} float64 timestamps, a sync map of {rows.shape[0]} rows; best of several runs, the hwlink "
          "map runs alternated with the copy so both see the same machine load.\n")
    print("| operation | time | M timestamps/s | vs plain copy |")
    print("|---|---:|---:|---:|")
    for label, seconds in [
        ("plain numpy copy (`np.copyto`, same data)", copy_s),
        ("**hwlink map, device times (any order accepted)**", ours_s),
        ("hwlink map, device times, `assume_sorted=True`", sorted_s),
        ("hwlink map, int64 device times", ours_int_s),
        ("hwlink map, sample indices at 30 kHz (`sample_times`: sorted by construction)", samples_s),
        ("hwlink map, shuffled device times", unsorted_s),
        ("`np.interp` (no extrapolation)", interp_s),
        (f"edlio `_make_synced_tsvec` (Pint; scaled from {edlio_count:,})", edlio_s),
    ]:
        print(f"| {label} | {seconds * 1e3:.1f} ms | {count / seconds / 1e6:.0f} | {seconds / copy_s:.2f}x |")
