"""``hwlink demo``: the main job on the simulated board, measured.

Pulses an output that is looped back to an input, reads that input and an analog line, and reports what was
achieved: pulse widths at the output, edge latency to the host, widths as the input saw them (host and
device clocks), and the analog sampling.
"""

from __future__ import annotations

import threading

import click
import numpy as np

from hwlink.cli.common import DURATION, UserError, opened_board
from hwlink.lines import LineModeFlags, LineReading
from hwlink.sync import SecondaryClockSynchronizer, fit_lower_line
from hwlink.units import format_usec

DEMO_BOARD = "sim://?loopback=13:2&latency=usb:1ms&spikes=0.02:2ms-5ms&drift_ppm=50&offset=1.5s&a0=sine:2Hz&seed=1"


def _stats(values_usec: np.ndarray) -> str:
    if values_usec.size == 0:
        return "none"
    p50, p99 = np.percentile(values_usec, [50, 99])
    return f"p50 {format_usec(p50)}, p99 {format_usec(p99)}, max {format_usec(values_usec.max())}"


def _demo_board(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """The board as every command takes it (``-b`` before or after the name, HWLINK_BOARD); else the demo's."""
    root = ctx.find_root()
    return value or (root.params.get("board_url") if root is not ctx else None) or DEMO_BOARD


@click.command("demo")
@click.option("-b", "--board", "board_url", envvar="HWLINK_BOARD", default=None, show_envvar=True,
              callback=_demo_board, help=f"Board with OUT looped back to IN (default {DEMO_BOARD}).")
@click.option("--out", "out_line", default="13", show_default=True, help="Output line to pulse.")
@click.option("--in", "in_line", default="2", show_default=True, help="Input line wired to --out.")
@click.option("--analog", "analog_line", default="A0", show_default=True, help="Analog input line to sample.")
@click.option("--pulses", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--width", type=DURATION, default="10ms", show_default=True)
@click.option("--period", type=DURATION, default="50ms", show_default=True)
def demo_command(board_url: str, out_line: str, in_line: str, analog_line: str, pulses: int, width: int,
                 period: int) -> None:
    """Pulse a looped-back output, read it back with an analog line, and report the timing."""
    if period <= width:
        raise UserError(f"--period ({format_usec(period)}) must exceed --width ({format_usec(width)})")
    with opened_board(board_url) as board:
        out_info, in_info, analog_info = board.line(out_line), board.line(in_line), board.line(analog_line)
        click.echo(f"board {board.url}: {len(board.lines)} lines")
        readings: list[LineReading] = []
        lock = threading.Lock()

        def collect(reading: LineReading) -> None:
            with lock:
                readings.append(reading)

        board.subscribe(collect, lines=[in_info.line_id, analog_info.line_id])
        board.set_mode(out_info.line_id, LineModeFlags.IS_OUTPUT)
        board.set_mode(in_info.line_id, LineModeFlags.IS_INPUT)
        board.set_mode(analog_info.line_id, LineModeFlags.IS_INPUT | LineModeFlags.ANALOG)
        start_usec = board.clock.now_usec()
        train = board.pulse(out_info.line_id, width, count=pulses, period_usec=period)
        if not train.wait(timeout=pulses * period / 1e6 + 5):
            raise UserError("pulse train did not finish")
        threading.Event().wait(0.05)  # let readings still in flight arrive
        end_usec = board.clock.now_usec()
    with lock:
        edges = [r for r in readings if r.line_id == in_info.line_id and r.time_usec >= start_usec]
        samples = [r for r in readings if r.line_id == analog_info.line_id]
        stamped = [r for r in readings if r.device_time_usec is not None]
    loopback_ok = _report(train.achieved_usec, width, edges, samples, end_usec - start_usec, out_info.label,
                          in_info.label, analog_info.label)
    if stamped:
        click.echo(f"\n{_drift_report(stamped)}")
    if not loopback_ok:
        raise click.ClickException(f"loopback check failed: {in_info.label} did not see every edge of "
                                   f"{out_info.label}")


def drift_estimate(pairs_device: np.ndarray, pairs_master: np.ndarray) -> tuple[float, float, float]:
    """(drift ppm as hwlink's synchronizer estimates it, its uncertainty in ppm, the span in µs).

    The synchronizer follows the lower envelope of (device time, arrival time): the arrivals with the least delay.
    How well the envelope is known at each end is limited by the transport's delay jitter above it (the median
    excess delay over the fitted floor line), so a slope over a span ``T`` is uncertain by about
    ``2 * jitter / T``: one second of arrivals on a 1 ms USB frame grid cannot tell 50 ppm from 0.
    """
    order = np.argsort(pairs_master, kind="stable")
    device, master = pairs_device[order], pairs_master[order]
    sync = SecondaryClockSynchronizer(id="demo")
    for arrival, stamp in zip(master.tolist(), device.tolist()):
        sync.process_timestamp(arrival, stamp)
    span = float(device.max() - device.min())
    line = fit_lower_line(device, master)
    jitter = float(np.median(master - line.master(device)))
    uncertainty = 2 * max(jitter, 1.0) / span * 1e6 if span > 0 else float("inf")
    return sync.skew_ppm, uncertainty, span


def _drift_report(readings: list[LineReading]) -> str:
    device = np.array([r.device_time_usec for r in readings], dtype=np.int64)
    master = np.array([r.time_usec for r in readings], dtype=np.int64)
    ppm, uncertainty, span = drift_estimate(device, master)
    span_text = format_usec(span)
    if uncertainty > 20 or abs(ppm) < uncertainty:
        wanted = 10.0  # ppm
        needed = uncertainty * span / wanted / 1e6
        return (f"device clock drift: not measurable in {span_text} (±{uncertainty:.0f} ppm with this link's delay "
                f"jitter); about {needed:.0f} s of data would give ±{wanted:.0f} ppm (more --pulses)")
    return f"device clock drift: {ppm:+.1f} ± {uncertainty:.1f} ppm (synchronizer estimate over {span_text}; + = device fast)"


def _report(commanded_usec: np.ndarray, width: int, edges: list[LineReading], samples: list[LineReading],
            span_usec: int, out_label: str, in_label: str, analog_label: str) -> bool:
    """Print what was achieved; False if the input did not see every edge of the output (the loopback check)."""
    widths = commanded_usec[1::2] - commanded_usec[0::2]
    click.echo(f"\noutput {out_label}: {len(widths)} pulses of {format_usec(width)}")
    click.echo(f"  achieved width error: {_stats(np.abs(widths - width))}")
    # The first reading after SET_MODE reports the idle level; match the rest edge for edge.
    changes = [r for r in edges if r.value in (0, 1)]
    loopback_ok = True
    if changes and changes[0].value == 0:
        changes = changes[1:]
    if len(changes) < len(commanded_usec):
        click.echo(f"\ninput {in_label}: saw {len(changes)} of {len(commanded_usec)} edges "
                   f"(is {out_label} wired to {in_label}?)")
        loopback_ok = False
    else:
        arrival = np.array([r.time_usec for r in changes[: len(commanded_usec)]], dtype=np.int64)
        latency = arrival - commanded_usec
        click.echo(f"\ninput {in_label}: {len(arrival)} edges")
        click.echo(f"  edge latency to host (arrival - output edge): {_stats(latency)}")
        host_widths = arrival[1::2] - arrival[0::2]
        click.echo(f"  width error seen on host clock: {_stats(np.abs(host_widths - width))}")
        device = np.array([r.device_time_usec for r in changes[: len(commanded_usec)]], dtype=np.float64)
        if not np.isnan(device).any():
            device_widths = device[1::2] - device[0::2]
            click.echo(f"  width error seen on device clock: {_stats(np.abs(device_widths - width))}")
            offset = device - commanded_usec
            click.echo(f"  device clock: offset {format_usec(float(np.median(offset)))} from master (device minus "
                       "master time)")
    click.echo(f"\nanalog {analog_label}: {len(samples)} samples in {format_usec(span_usec)}")
    if len(samples) > 1:
        values = np.array([r.value for r in samples])
        times = np.array([r.time_usec for r in samples], dtype=np.int64)
        intervals = np.diff(times)
        click.echo(f"  rate {1e6 / intervals.mean():.1f} Hz, interval jitter {_stats(np.abs(intervals - np.median(intervals)))}")
        click.echo(f"  values {values.min()}..{values.max()} (mean {values.mean():.0f})")
    return loopback_ok


def register(group: click.Group) -> None:
    group.add_command(demo_command)
