"""Pieces every CLI command shares: the board option, duration parameters, one-line errors."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hwlink.errors import HwlinkError
from hwlink.units import parse_duration_usec

if TYPE_CHECKING:
    from hwlink.drivers import Board

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
        except BrokenPipeError:
            # The reader went away (``hwlink read ... | head -3``): end quietly and successfully, as Unix tools
            # do. The board was closed on the way out; stdout goes to /dev/null so the interpreter's last flush
            # does not complain either.
            _silence_stdout()
            raise click.exceptions.Exit(0) from None
        except HwlinkError as error:
            raise UserError(str(error)) from None
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise UserError(f"{where}{error.strerror or error}") from None


def _silence_stdout() -> None:
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's buffer)
        pass


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
    from hwlink.drivers import open_board  # drivers import numpy: only the commands that open a board pay for it

    board = open_board(url)
    try:
        yield board
    finally:
        board.close()


def collection_path(output: Path | None, name: str | None, default_name: str) -> Path:
    """Where a command that writes a collection writes it: ``-o PATH`` is the collection itself (``record`` and
    ``run`` alike); without it, ``--name`` (or a dated default) in the current directory. The path must not hold
    anything yet: an earlier attempt's leftover is described, never deleted."""
    if output is not None and name is not None:
        raise UserError(f"-o is the collection's own path: give -o {output / name} instead of -o {output} "
                        f"--name {name}")
    path = output if output is not None else Path(name or default_name)
    check_unused(path)
    return path


def check_unused(path: Path) -> None:
    """One line saying what is in the way when ``path`` exists and is not empty, and what to do about it."""
    if not path.exists():
        blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
        if blocking is not None:
            raise UserError(f"cannot create {path}: {blocking}: Not a directory")
        return
    if not path.is_dir():
        raise UserError(f"{path} exists and is not a directory; give another -o")
    if not any(path.iterdir()):
        return
    if not (path / "manifest.toml").is_file():
        raise UserError(f"{path} exists and is not empty (no collection in it); give another -o")
    import tomllib

    attributes: dict[str, Any] = {}
    try:
        with open(path / "attributes.toml", "rb") as stream:
            attributes = tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError):
        pass
    if "success" not in attributes:
        state = "a leftover of an attempt that did not finish (it was killed or failed before it ended)"
    elif attributes.get("success") is False:
        state = f"a collection of an earlier attempt that failed ({attributes.get('failure_reason') or 'see its logs'})"
    else:
        state = "a finished collection"
    raise UserError(f"{path} already holds {state}; nothing was changed. Keep it and give another -o, or "
                    f"remove it first (rm -r '{path}') to record there again")
