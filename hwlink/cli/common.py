"""Pieces every CLI command shares: the board option, duration parameters, one-line errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from hwlink.drivers import Board, open_board
from hwlink.errors import HwlinkError
from hwlink.units import parse_duration_usec

DEFAULT_BOARD = "sim://"


class HwlinkGroup(click.Group):
    """Turns hwlink's expected errors into one line on stderr and exit code 2, without a traceback."""

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
