"""Pulse width accuracy on the simulated board: hwlink's scheduler vs a host-blocking sleep loop.

The baseline is what Syntalos' firmata-io does (write HIGH, sleep, write LOW on the calling thread). Both run
against the same board in the same process; widths are measured as the master-clock times of the two writes.
"""

from __future__ import annotations

import time

import numpy as np

from hwlink.drivers import open_board
from hwlink.lines import LineModeFlags


def sleep_loop_widths(board, width_usec: int, count: int, period_usec: int) -> tuple[np.ndarray, float]:
    widths = np.empty(count, dtype=np.int64)
    blocked = 0.0
    for index in range(count):
        started = time.perf_counter()
        rise = board.clock.now_usec()
        board.write_digital(13, 1)
        time.sleep(width_usec / 1e6)
        fall = board.clock.now_usec()
        board.write_digital(13, 0)
        blocked += time.perf_counter() - started
        widths[index] = fall - rise
        time.sleep((period_usec - width_usec) / 1e6)
    return widths, blocked / count


def scheduler_widths(board, width_usec: int, count: int, period_usec: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    train = board.pulse(13, width_usec, count=count, period_usec=period_usec)
    blocked = time.perf_counter() - started
    train.wait()
    return train.achieved_widths_usec, blocked


def row(name: str, widths: np.ndarray, blocked_s: float, width: int) -> tuple[str, np.ndarray]:
    errors = np.abs(widths - width)
    p50, p90, p99 = np.percentile(errors, [50, 90, 99])
    return (f"| {name} | {width / 1000:g} ms | {len(widths)} | {p50:.0f} | {p90:.0f} | {p99:.0f} | "
            f"{errors.max():.0f} | {blocked_s * 1e6:.0f} |", np.array([p50, p90, p99]))


def main(quick: bool) -> None:
    count = 50 if quick else 300
    print("| method | width | pulses | p50 abs error (µs) | p90 (µs) | p99 (µs) | max (µs) |"
          " caller blocked per pulse (µs) |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    with open_board("sim://?latency=none") as board:
        board.set_mode(13, LineModeFlags.IS_OUTPUT)
        for width in (1_000, 5_000, 20_000):
            period = 2 * width + 2_000
            ours, stats_ours = row("hwlink scheduler", *scheduler_widths(board, width, count, period), width)
            base, stats_base = row("sleep loop (baseline)", *sleep_loop_widths(board, width, count, period), width)
            print(ours)
            print(base)
            ratios.append((width, stats_base / np.maximum(stats_ours, 1.0)))
    print()
    for width, (p50, p90, p99) in ratios:
        print(f"- {width / 1000:g} ms pulses: baseline error / hwlink error = {p50:.0f}x at p50, {p90:.1f}x at p90, "
              f"{p99:.1f}x at p99 (errors below 1 µs count as 1 µs)")
