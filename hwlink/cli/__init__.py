"""The ``hwlink`` command line.

``main`` is the console entry point. ``hwlink --version`` and ``hwlink --help`` (``-h``) are answered without
importing click or any command: the help text is click's own rendering (``hwlink.cli.main``), kept in a small
cache file per hwlink version, terminal width and CLI source, so a first ``--help`` renders and stores it and
later ones print it (``benchmarks/bench_startup.py``: within 2x of a bare ``python -c pass``). Everything else
goes to click.
"""

from __future__ import annotations

import os
import sys


def _help_cache_path() -> str | None:
    import shutil

    from hwlink import __version__

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        stamps = [os.stat(os.path.join(here, name)).st_mtime_ns for name in ("main.py", "common.py", "__init__.py")]
    except OSError:
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = f"{__version__}-{shutil.get_terminal_size().columns}-{_digest(here, stamps)}"
    return os.path.join(base, "hwlink", f"help-{key}.txt")


def _digest(here: str, stamps: list[int]) -> str:
    import zlib  # a stable digest (str hashes are salted per process)

    return f"{zlib.crc32(repr((here, stamps)).encode()):08x}"


def _render_help() -> str:
    import click

    from hwlink.cli.main import cli

    with click.Context(cli, info_name="hwlink", **cli.context_settings) as ctx:
        return cli.get_help(ctx) + "\n"


def _fast_help() -> bool:
    """Print the cached ``--help`` text; False if there is none yet (click renders it, and it is stored)."""
    path = _help_cache_path()
    if path is not None:
        try:
            with open(path, encoding="utf-8") as stream:
                sys.stdout.write(stream.read())
            return True
        except OSError:
            pass
    text = _render_help()
    if path is not None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            partial = f"{path}.{os.getpid()}.tmp"
            with open(partial, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(partial, path)
        except OSError:
            pass  # a read-only home: every --help renders
    sys.stdout.write(text)
    return True


def main() -> None:
    """The ``hwlink`` command."""
    args = sys.argv[1:]
    try:
        if args == ["--version"]:
            from hwlink import __version__

            sys.stdout.write(f"hwlink, version {__version__}\n")
            return
        if args in (["--help"], ["-h"]) and _fast_help():
            return
    except BrokenPipeError:
        return
    from hwlink.cli.main import main as click_main

    click_main()
