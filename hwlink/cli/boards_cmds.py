"""Finding boards and measuring them: ``hwlink boards`` and ``hwlink latency``."""

from __future__ import annotations

import queue
import time
from concurrent.futures import ThreadPoolExecutor

import click
import numpy as np

from hwlink.cli.common import DURATION, UserError, board_option, opened_board
from hwlink.drivers import BoardDescription, discover_boards
from hwlink.errors import HwlinkError
from hwlink.lines import LineModeFlags, LineReading
from hwlink.units import format_usec

HISTOGRAM_BINS = 12
BAR_WIDTH = 40


def _probe(board: BoardDescription, timeout_usec: int) -> str:
    """Ask a serial port for its Firmata firmware; a short answer either way."""
    from hwlink.drivers.firmata import probe  # pyserial-specific: only when asked to probe

    try:
        return f"firmware: {probe(board.url, timeout_usec)}"
    except HwlinkError as error:
        return f"no Firmata: {str(error).removeprefix(board.url + ': ')}"


@click.command("boards")
@click.option("--probe", is_flag=True, help="Ask each serial port for its Firmata firmware (opens the port; "
                                             "an Uno resets).")
@click.option("--timeout", type=DURATION, default="3s", show_default=True, help="How long to wait for each probe.")
def boards_command(probe: bool, timeout: int) -> None:
    """List the boards found on this machine, with the URL that opens each."""
    found = discover_boards()
    probed: dict[str, str] = {}
    if probe:
        candidates = [board for board in found if board.url.startswith("firmata")]
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(candidates)))) as pool:
            for board, answer in zip(candidates, pool.map(lambda b: _probe(b, timeout), candidates)):
                probed[board.url] = answer
    width = max([len(board.url) for board in found] + [3])
    click.echo(f"{'URL':<{width}}  DESCRIPTION")
    for board in found:
        details = ", ".join(f"{key} {value}" for key, value in board.details.items())
        line = f"{board.url:<{width}}  {board.description}"
        if details:
            line += f" ({details})"
        if board.url in probed:
            line += f"  [{probed[board.url]}]"
        click.echo(line)


def _percentiles(values: np.ndarray) -> str:
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return (f"min {format_usec(values.min())}, p50 {format_usec(p50)}, p90 {format_usec(p90)}, "
            f"p99 {format_usec(p99)}, max {format_usec(values.max())}")


def _histogram(values: np.ndarray) -> list[str]:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high))
    scale = BAR_WIDTH / max(int(counts.max()), 1)
    rows = []
    for count, start, end in zip(counts, edges[:-1], edges[1:]):
        bar = "#" * int(round(count * scale)) if count else ""
        rows.append(f"  {format_usec(start):>10} - {format_usec(end):>10}  {count:>5}  {bar}")
    return rows


@click.command("latency")
@click.option("--out", "out_line", required=True, help="Output line, wired to --in.")
@click.option("--in", "in_line", required=True, help="Input line the output drives.")
@click.option("--count", type=click.IntRange(min=2), default=100, show_default=True, help="Edges to measure.")
@click.option("--interval", type=DURATION, default="10ms", show_default=True, help="Pause between edges.")
@click.option("--timeout", type=DURATION, default="1s", show_default=True, help="Give up on an edge after this.")
@board_option
def latency_command(out_line: str, in_line: str, count: int, interval: int, timeout: int, board_url: str) -> None:
    """Loopback self-test: toggle OUT, time until IN's reading arrives, print a latency histogram."""
    with opened_board(board_url) as board:
        out_info, in_info = board.line(out_line), board.line(in_line)
        arrivals: queue.Queue[LineReading] = queue.Queue()
        board.subscribe(arrivals.put, lines=[in_info.line_id])
        board.set_mode(out_info.line_id, LineModeFlags.IS_OUTPUT)
        board.write_digital(out_info.line_id, 0)
        board.set_mode(in_info.line_id, LineModeFlags.IS_INPUT)
        time.sleep(0.05)  # the input's first report and anything in flight
        while not arrivals.empty():
            arrivals.get_nowait()
        latencies = np.empty(count, dtype=np.int64)
        level = 0
        for index in range(count):
            level ^= 1
            sent = board.clock.now_usec()
            board.write_digital(out_info.line_id, level)
            latencies[index] = _await_level(arrivals, level, timeout, out_info.label, in_info.label) - sent
            time.sleep(interval / 1e6)
    click.echo(f"{count} edges {out_info.label} -> {in_info.label} on {board_url}")
    click.echo(f"write to reading on the master clock: {_percentiles(latencies)}")
    for row in _histogram(latencies):
        click.echo(row)


def _await_level(arrivals: queue.Queue[LineReading], level: int, timeout_usec: int, out_label: str,
                 in_label: str) -> int:
    deadline = time.monotonic() + timeout_usec / 1e6
    while True:
        remaining = deadline - time.monotonic()
        try:
            reading = arrivals.get(timeout=max(remaining, 0))
        except queue.Empty:
            raise UserError(f"no change on line {in_label} within {format_usec(timeout_usec)} after writing "
                            f"{level} to line {out_label} (is {out_label} wired to {in_label}?)") from None
        if reading.value == level:
            return reading.time_usec


def register(group: click.Group) -> None:
    group.add_command(boards_command)
    group.add_command(latency_command)
