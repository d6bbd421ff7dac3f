"""Entry point of the ``hwlink`` command: the top-level group and the registry of command modules."""

from __future__ import annotations

import importlib

import click

from hwlink import __version__
from hwlink.cli.common import BOARD_HELP, HwlinkGroup, UserError
from hwlink.platform import forced_seams, setup_console

# Each module has a ``register(group)`` that adds its commands.
COMMAND_MODULES = (
    "hwlink.cli.lines_cmds",
    "hwlink.cli.demo",
    "hwlink.cli.boards_cmds",
    "hwlink.cli.record_cmds",
    "hwlink.cli.run_cmds",
    "hwlink.cli.tsync_cmds",
    "hwlink.cli.sync_cmds",
    "hwlink.cli.doctor_cmds",
    "hwlink.cli.export_cmds",
)


@click.group(cls=HwlinkGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hwlink")
@click.option("-b", "--board", "board_url", envvar="HWLINK_BOARD", default=None, help=BOARD_HELP)
def cli(board_url: str | None) -> None:
    """Drive experiment hardware and get its timestamps right."""
    try:
        forced_seams()  # a misspelt HWLINK_PORTABLE is bad input, not a silent switch to every fallback
    except ValueError as error:
        raise UserError(str(error)) from None


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(cli)


def main() -> None:
    setup_console()  # a cp1252 console must not end a run with UnicodeEncodeError
    cli(prog_name="hwlink")
