"""``hwlink run EXPERIMENT``: run an experiment file and record it into one EDL collection."""

from __future__ import annotations

from pathlib import Path
from types import FrameType

import click

from hwlink import platform
from hwlink.cli.common import DURATION
from hwlink.cli.common import check_unused, collection_path
from hwlink.units import format_usec


@click.command("run")
@click.argument("experiment", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--duration", type=DURATION, default=None, help="Stop after this long (overrides the file's).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The collection directory to create, e.g. sessions/mouse01 (as in `hwlink record -o`).")
@click.option("--name", default=None,
              help="Without -o: create the collection NAME in the current directory (default: the experiment's "
                   "name and the date and time).")
def run_command(experiment: Path, duration: int | None, output: Path | None, name: str | None) -> None:
    """Run EXPERIMENT (a TOML file) until its duration, an error, or Ctrl-C / SIGTERM (twice forces)."""
    from hwlink.runtime import Engine

    if output is not None and name is not None:
        collection_path(output, name, "")  # the one-line explanation
    engine = Engine(experiment, output if output is not None else name, duration_usec=duration)
    check_unused(engine.output)

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if engine.stopping:
            engine.force()
            click.echo("forcing stop", err=True)
        else:
            engine.request_stop("interrupted")
            click.echo("stopping (Ctrl-C again to force)", err=True)

    with platform.stop_signals(on_interrupt):  # Ctrl-C, SIGTERM, SIGHUP; Ctrl-Break and console close on Windows
        result = engine.run()
    where = result.collection_path or "(nothing recorded)"
    click.echo(f"run {result.reason} after {format_usec(result.duration_usec)}; collection: {where}", err=True)
    if result.failure is not None:
        raise click.exceptions.Exit(1)


def register(group: click.Group) -> None:
    group.add_command(run_command)
