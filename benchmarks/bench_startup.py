"""Start-up time of the ``hwlink`` command (issue 16): ``hwlink --help`` against a bare ``python -c pass``.

Goal: ``hwlink --help`` within 2x of ``python -c pass``. Every row is a fresh process of the same interpreter (the
venv's, with hwlink installed as it is in use); rows are run in turn, round after round, so a busy machine slows
them alike. The floor is ``python -c pass``; "all commands imported" is what ``--help`` cost when every command
module was imported at start (numpy, h5py, click and hwlink's drivers/sync/edl), the state before issue 16.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EAGER = ("import hwlink.cli.main, hwlink.cli.lines_cmds, hwlink.cli.demo, hwlink.cli.boards_cmds, "
         "hwlink.cli.record_cmds, hwlink.cli.run_cmds, hwlink.cli.tsync_cmds, hwlink.cli.sync_cmds")


def rows(empty_cache: str) -> list[tuple[str, list[str], dict[str, str] | None]]:
    python = sys.executable
    script = str(Path(python).with_name("hwlink"))
    if not Path(script).exists():
        script = shutil.which("hwlink") or script
    first = {**os.environ, "XDG_CACHE_HOME": empty_cache}  # a cache that is never written: every run renders
    return [
        ("`python -c pass` (floor)", [python, "-c", "pass"], None),
        ("`python -c 'import click'`", [python, "-c", "import click"], None),
        ("`hwlink --help`", [script, "--help"], None),
        ("`hwlink --help`, no help cache (click renders it)", [script, "--help"], first),
        ("`hwlink --version`", [script, "--version"], None),
        ("`python -m hwlink --help`", [python, "-m", "hwlink", "--help"], None),
        ("all commands imported (before)", [python, "-c", EAGER], None),
    ]


def measure(rounds: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        unwritable = Path(folder) / "cache"
        unwritable.write_text("")  # a file where the cache directory would go: nothing is ever stored
        cases = rows(str(unwritable))
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(rounds):
            for name, argv, env in cases:
                started = time.perf_counter()
                subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
                times[name].append(time.perf_counter() - started)
    return times


def main(quick: bool) -> None:
    rounds = 5 if quick else 30
    times = measure(rounds)
    floor = statistics.median(times["`python -c pass` (floor)"])
    print(f"{rounds} rounds, each row a fresh process, rows alternated\n")
    print("| command | median ms | min ms | median / floor |")
    print("|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1e3:.1f} | {min(values) * 1e3:.1f} | {median / floor:.2f}x |")
