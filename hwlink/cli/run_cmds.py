"""``hwlink run EXPERIMENT``: run an experiment file and record it into one EDL collection."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from hwlink.cli.common import DURATION
from hwlink.units import format_usec


@click.command("run")
@click.argument("experiment", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--duration", type=DURATION, default=None, help="Stop after this long (overrides the file's).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Collection directory to create (default: NAME-DATE-TIME in the current directory).")
def run_command(experiment: Path, duration: int | None, output: Path | None) -> None:
    """Run EXPERIMENT (a TOML file) until its duration, an error, or Ctrl-C / SIGTERM (twice forces)."""
    from hwlink.runtime import Engine

    engine = Engine(experiment, output, duration_usec=duration)

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if engine.stopping:
            engine.force()
            click.echo("forcing stop", err=True)
        else:
            engine.request_stop("interrupted")
            click.echo("stopping (Ctrl-C again to force)", err=True)

    in_main = threading.current_thread() is threading.main_thread()  # handlers live in the main thread only
    previous = {signum: signal.signal(signum, on_interrupt) for signum in (signal.SIGINT, signal.SIGTERM)} \
        if in_main else {}
    try:
        result = engine.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    where = result.collection_path or "(nothing recorded)"
    click.echo(f"run {result.reason} after {format_usec(result.duration_usec)}; collection: {where}", err=True)
    if result.failure is not None:
        raise click.exceptions.Exit(1)


def register(group: click.Group) -> None:
    group.add_command(run_command)
