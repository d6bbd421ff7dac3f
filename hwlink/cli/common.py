"""Pieces every CLI command shares: the board option, duration parameters, one-line errors."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from hwlink.drivers import Board, open_board
from hwlink.errors import HwlinkError
from hwlink.units import parse_duration_usec

DEFAULT_BOARD = "sim://"


class HwlinkGroup(click.Group):
    """Turns hwlink's expected errors into one line on stderr and exit code 2, without a traceback.

    Usage errors (a bad option value, a missing argument) are one line too: the message and where the help is,
    instead of click's usage block.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.UsageError as error:
            where = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
            click.echo(f"Error: {error.format_message()}{where}", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # without standalone mode click returns Exit's code

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HwlinkError as error:
            raise UserError(str(error)) from None
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise UserError(f"{where}{error.strerror or error}") from None


class UserError(click.ClickException):
    exit_code = 2


class Duration(click.ParamType):
    """A duration with a unit (us, ms, s, min, h), converted to integer microseconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration_usec(value)
        except HwlinkError as error:
            self.fail(str(error), param, ctx)


DURATION = Duration()


class FiniteFloat(click.ParamType):
    """A float that must be finite and within [low, high] (nan, inf and 1e400 are refused)."""

    name = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{value!r} is not a finite number within {self.low:g}..{self.high:g}", param, ctx)
        return number


BOARD_HELP = "Board URL: sim://..., firmata://PORT, nidaq://DEVICE (default sim://)."


def _inherit_board(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """A command's -b wins; else the one given before the command name (``hwlink -b URL lines``)."""
    if value is not None:
        return value
    root = ctx.find_root()
    return (root.params.get("board_url") if root is not ctx else None) or DEFAULT_BOARD


def board_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-b", "--board", "board_url", envvar="HWLINK_BOARD", default=None, show_envvar=True,
        callback=_inherit_board, help=BOARD_HELP,
    )(function)


@contextmanager
def opened_board(url: str) -> Iterator[Board]:
    board = open_board(url)
    try:
        yield board
    finally:
        board.close()
