"""Entry point of the ``hwlink`` command: the top-level group and the registry of commands.

Commands are imported when they run, not when ``hwlink`` starts: ``hwlink --help`` (and completion) reads the
one-line summaries below, so it costs little more than starting Python and click; ``hwlink lines`` imports the
drivers (numpy), ``hwlink tsync align`` scipy, and so on. ``tests/test_startup.py`` checks that the summaries
match the commands' docstrings, so the listing cannot drift from the commands.
"""

from __future__ import annotations

import importlib

import click

from hwlink import __version__
from hwlink.cli.common import BOARD_HELP, HwlinkGroup, UserError
from hwlink.platform import forced_seams, setup_console

# name -> (module, attribute, first paragraph of the command's docstring: its summary in `hwlink --help`)
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "align": ("hwlink.cli.tsync_cmds", "align_command",
              "Align SECONDARY_EDGES to MASTER_EDGES (the same sync pulses seen by two devices) and report QC."),
    "boards": ("hwlink.cli.boards_cmds", "boards_command",
               "List the boards found on this machine, with the URL that opens each."),
    "demo": ("hwlink.cli.demo", "demo_command",
             "Pulse a looped-back output, read it back with an analog line, and report the timing."),
    "doctor": ("hwlink.cli.doctor_cmds", "doctor_command",
               "Report the clock, timer precision, thread priority obtained, worker channel and the rest of the platform."),
    "edl": ("hwlink.cli.record_cmds", "edl_group", "Inspect EDL collections (hwlink's, Syntalos', edlio's)."),
    "export": ("hwlink.cli.export_cmds", "export_group", "Export EDL collections to other formats."),
    "latency": ("hwlink.cli.boards_cmds", "latency_command",
                "Loopback self-test: toggle OUT, time until IN's reading arrives, print a latency histogram."),
    "lines": ("hwlink.cli.lines_cmds", "lines_command", "List the board's lines and what each can do."),
    "pulse": ("hwlink.cli.lines_cmds", "pulse_command", "Pulse an output LINE and report the achieved pulse widths."),
    "read": ("hwlink.cli.lines_cmds", "read_command",
             "Stream timestamped readings of LINES until --duration, --count or Ctrl-C."),
    "record": ("hwlink.cli.record_cmds", "record_command",
               "Record the --lines of a board into a new EDL collection (HDF5, CSV events, tsync clock sync)."),
    "run": ("hwlink.cli.run_cmds", "run_command",
            "Run EXPERIMENT (a TOML file) until its duration, an error, or Ctrl-C / SIGTERM (twice forces)."),
    "sync": ("hwlink.cli.sync_cmds", "sync_group", "Device clock synchronization."),
    "tsync": ("hwlink.cli.tsync_cmds", "tsync_group", "Inspect, check, export and apply Syntalos .tsync files."),
    "write": ("hwlink.cli.lines_cmds", "write_command", "Set an output LINE to VALUE (0/1, or an analog code with --analog)."),
}

# Modules imported at start-up, each with a ``register(group)`` that adds its commands (for commands that are not
# in LAZY_COMMANDS yet; prefer an entry there).
COMMAND_MODULES: tuple[str, ...] = ()


class LazyGroup(HwlinkGroup):
    """A group whose commands are imported on first use; the listing in ``--help`` comes from LAZY_COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in LAZY_COMMANDS:
            module, attribute, _ = LAZY_COMMANDS[name]
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = [name for name in self.list_commands(ctx) if name in LAZY_COMMANDS or not self.commands[name].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            shown = loaded if loaded is not None else click.Command(name, help=LAZY_COMMANDS[name][2])
            summary = shown.get_short_help_str(limit)  # click's own shortening of the same text
            rows.append((name, summary))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
