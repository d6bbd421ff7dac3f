"""Pin and pulse testing: ``hwlink lines``, ``write``, ``pulse``, ``read``."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

import click
import numpy as np

from hwlink.cli.common import DURATION, UserError, board_option, opened_board
from hwlink.drivers import Board, LineInfo
from hwlink.drivers.info import reading_to_volts
from hwlink.errors import BoardError
from hwlink.lines import LineModeFlags, LineReading
from hwlink.units import format_usec


@click.command("lines")
@board_option
def lines_command(board_url: str) -> None:
    """List the board's lines and what each can do."""
    with opened_board(board_url) as board:
        rows = [(str(info.line_id), info.name, info.describe_modes()) for info in board.lines]
        widths = [max(len(row[i]) for row in rows + [("LINE", "NAME", "MODES")]) for i in range(3)]
        click.echo(f"{'LINE':>{widths[0]}}  {'NAME':<{widths[1]}}  MODES")
        for line_id, name, modes in rows:
            click.echo(f"{line_id:>{widths[0]}}  {name:<{widths[1]}}  {modes}")


@click.command("write")
@click.argument("line")
@click.argument("value", type=int)
@click.option("--analog", is_flag=True, help="Write an analog/PWM code instead of a digital level.")
@board_option
def write_command(line: str, value: int, analog: bool, board_url: str) -> None:
    """Set an output LINE to VALUE (0/1, or an analog code with --analog)."""
    with opened_board(board_url) as board:
        info = board.line(line)
        if analog:
            board.set_mode(info.line_id, LineModeFlags.IS_OUTPUT | LineModeFlags.ANALOG)
            board.write_analog(info.line_id, value)
        else:
            if value not in (0, 1):
                raise UserError(f"digital value must be 0 or 1, got {value} (use --analog for analog codes)")
            board.set_mode(info.line_id, LineModeFlags.IS_OUTPUT)
            board.write_digital(info.line_id, value)
        click.echo(f"line {info.label} <- {value}")


@click.command("pulse")
@click.argument("line")
@click.option("--width", type=DURATION, default="50ms", show_default=True, help="High time of each pulse.")
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--period", type=DURATION, default="1s", show_default=True, help="Start-to-start time of pulses.")
@board_option
def pulse_command(line: str, width: int, count: int, period: int, board_url: str) -> None:
    """Pulse an output LINE and report the achieved pulse widths."""
    with opened_board(board_url) as board:
        info = board.line(line)
        board.set_mode(info.line_id, LineModeFlags.IS_OUTPUT)
        train = board.pulse(info.line_id, width, count=count, period_usec=period if count > 1 else 0)
        if not train.wait(timeout=(count * max(period, width) + width) / 1e6 + 5):
            raise UserError(f"pulse train on line {info.label} did not finish")
        if train.error is not None:
            raise UserError(f"pulse on line {info.label} failed: {train.error}")
        widths = train.achieved_widths_usec
        for index, achieved in enumerate(widths):
            click.echo(f"pulse {index + 1}: width {format_usec(achieved)} (error {achieved - width:+d} µs)")
        errors = np.abs(widths - width)
        click.echo(
            f"{len(widths)} pulse(s) of {format_usec(width)} on line {info.label}: "
            f"mean |error| {errors.mean():.0f} µs, max |error| {errors.max():.0f} µs"
        )


class ReadingWriter:
    """Writes readings as a table, CSV or JSON lines, flushing as it goes so nothing is lost on Ctrl-C."""

    def __init__(self, board: Board, form: str, out: TextIO) -> None:
        self._names = {info.line_id: info.name for info in board.lines}
        # analog inputs of devices that know volts (nidaq://) print volts, as nidaqmx users expect; ADC boards
        # (sim://, Firmata) print their codes
        self._volts = reading_to_volts(board)
        self._analog = {info.line_id for info in board.lines if info.analog_in_bits}
        self._form = form
        self._out = out
        if form == "csv":
            out.write("time_usec,line_id,line,value,device_time_usec\n")
        elif form == "table":
            out.write(f"{'TIME (s)':>12}  {'LINE':<6}  {'VALUE':>10}  {'DEVICE TIME (s)':>16}\n")

    def write(self, reading: LineReading) -> None:
        name = self._names.get(reading.line_id, str(reading.line_id))
        device = "" if reading.device_time_usec is None else reading.device_time_usec
        value: int | float = reading.value
        text = str(value)
        if self._volts is not None and reading.line_id in self._analog:
            value = round(self._volts(reading.line_id, reading.value), 6)
            text = f"{value:.6f}"
        if self._form == "csv":
            self._out.write(f"{reading.time_usec},{reading.line_id},{name},{text},{device}\n")
        elif self._form == "jsonl":
            self._out.write(json.dumps({"time_usec": reading.time_usec, "line_id": reading.line_id, "line": name,
                                        "value": value, "device_time_usec": reading.device_time_usec}))
            self._out.write("\n")
        else:
            device_text = "" if reading.device_time_usec is None else f"{reading.device_time_usec / 1e6:16.6f}"
            self._out.write(f"{reading.time_usec / 1e6:12.6f}  {name:<6}  {text:>10}  {device_text}\n")
        self._out.flush()


def configure_inputs(board: Board, refs: tuple[str, ...], pullup: bool) -> list[LineInfo]:
    """Put each named line into its input mode (digital where it can, analog otherwise)."""
    infos = [board.line(ref) for ref in refs]
    for ref, info in zip(refs, infos):
        flags = LineModeFlags.IS_INPUT | (LineModeFlags.PULL_UP if pullup else LineModeFlags.NONE)
        if pullup and not info.digital_in:
            flags = LineModeFlags.IS_INPUT
        board.set_mode(ref, flags)  # the name as typed: on Firmata 'A0' means analog, 'D14' digital
    return infos


@click.command("read")
@click.argument("lines", nargs=-1, required=True)
@click.option("--duration", type=DURATION, default=None, help="Stop after this long (e.g. 10s).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after this many readings.")
@click.option("--format", "form", type=click.Choice(["table", "csv", "jsonl"]), default="table", show_default=True)
@click.option("--pullup", is_flag=True, help="Enable pull-ups on digital input lines.")
@board_option
def read_command(lines: tuple[str, ...], duration: int | None, count: int | None, form: str, pullup: bool,
                 board_url: str) -> None:
    """Stream timestamped readings of LINES until --duration, --count or Ctrl-C."""
    if duration is not None and count is not None:
        raise UserError("give either --duration or --count, not both")
    out = sys.stdout
    received = 0
    with opened_board(board_url) as board:
        named = [board.line(ref).line_id for ref in lines]
        if len(set(named)) != len(named):  # as `record` does: a line read twice would print every reading twice
            raise UserError(f"a line is named twice in {' '.join(lines)}")
        writer = ReadingWriter(board, form, out)
        deadline = None if duration is None else time.monotonic() + duration / 1e6
        try:
            with board.readings(lines=list(lines)) as stream:
                configure_inputs(board, lines, pullup)  # after subscribing: the first report may come at once
                while count is None or received < count:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    reading = stream.get(timeout=0.2 if remaining is None else min(0.2, remaining))
                    if reading is not None:
                        writer.write(reading)
                        received += 1
        except KeyboardInterrupt:
            out.flush()
        except BoardError as error:
            out.flush()
            raise UserError(f"board failed after {received} reading(s): {error}") from None
        except StopIteration:
            pass
    click.echo(f"{received} reading(s)", err=True)


def register(group: click.Group) -> None:
    for command in (lines_command, write_command, pulse_command, read_command):
        group.add_command(command)
