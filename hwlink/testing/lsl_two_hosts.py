"""Two hwlink processes, one clock: a publisher records a ``sim://`` board with a drifting device clock and
publishes it over LSL (``hwlink record --lsl``); a recorder records that stream through ``lsl://`` into its own
EDL collection. Used by the test and by ``python -m benchmarks lsl``.

The board's true event times: the simulated square wave changes level at exact multiples of half its period
after the board opened, on the publisher's master clock; the device stamps each change with its own clock
(``offset + t * (1 + drift)``), which the publisher records, so the time since opening of every edge follows
from its device stamp. The one unknown, when the board opened, is bounded by the earliest arrival: with a
constant transport latency ``L`` every arrival is at least ``L`` after its edge (the simulated device loop never
delivers early), so ``opened = min(arrival - since_open) - L`` to within the least wake-up delay of the
publisher's device thread (µs); where the collection records the board's open time (``boards``, ``opened_usec``)
that is used instead. Both collections store their master clock's start on CLOCK_MONOTONIC
(``clock_start_monotonic_ns``), which puts everything on one time axis.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RUN_CLI = "from hwlink.cli.main import main; main()"
LATENCY_USEC = 300
SQUARE_HZ = 20.0
DRIFT_PPM = 250.0
OFFSET_USEC = -2_000_000


@dataclass
class TwoHostResult:
    true_usec: np.ndarray  # absolute CLOCK_MONOTONIC µs of each edge the recorder got
    publisher_usec: np.ndarray  # the publisher's recorded (clock-synchronized) times, same axis
    recorder_usec: np.ndarray  # the recorder's times (lsl:// -> hwlink synchronizer), same axis
    publisher_output: str
    recorder_output: str

    @property
    def recorder_error(self) -> np.ndarray:
        return self.recorder_usec - self.true_usec

    @property
    def publisher_error(self) -> np.ndarray:
        return self.publisher_usec - self.true_usec

    @property
    def chain_error(self) -> np.ndarray:
        """What LSL and the recorder's synchronizer add to the publisher's times."""
        return self.recorder_usec - self.publisher_usec


def _table(path: Path) -> tuple[list[str], np.ndarray]:
    text = path.read_text(encoding="utf-8")
    rows = [row for row in csv.reader(text.splitlines(), delimiter=";" if ";" in text.split("\n", 1)[0] else ",")
            if row]
    return rows[0], np.array([[int(cell) for cell in row] for row in rows[1:]], dtype=np.int64)


def _attributes(collection: Path) -> dict:
    return tomllib.loads((collection / "attributes.toml").read_text())


def _start_ns(collection: Path) -> int:
    return int(_attributes(collection)["clock_start_monotonic_ns"])


def _opened_usec(collection: Path) -> float | None:
    """The sim board's open time on the master clock, where the collection records it (``boards`` table)."""
    boards = _attributes(collection).get("boards")
    for board in boards if isinstance(boards, list) else []:
        if isinstance(board, dict) and "opened_usec" in board:
            return float(board["opened_usec"])
    return None


def run_two_hosts(work: Path, *, publish_s: float = 8.0, record_s: float = 6.0, tag: str = "",
                  env: dict[str, str] | None = None) -> TwoHostResult:
    """Run both processes (the recorder first, the publisher waits for it), then compare their collections."""
    name = f"two-hosts-{tag or os.getpid()}"
    board = (f"sim://?d2=square:{SQUARE_HZ:g}Hz&drift_ppm={DRIFT_PPM:g}&offset={OFFSET_USEC}us"
             f"&latency=const:{LATENCY_USEC}us&seed=5")
    environment = dict(os.environ, **(env or {}))
    recorder = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "record", "-b", f"lsl://?name={name}&timeout=60s", "--lines", "D2",
         "--duration", f"{record_s:g}s", "-o", str(work / "recorder" / "received"), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    publisher = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "record", "-b", board, "--lines", "2", "--duration", f"{publish_s:g}s",
         "-o", str(work / "publisher" / name), "-q", "--lsl", "--lsl-wait", "60s"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    try:
        recorder_output = recorder.communicate(timeout=180)[0]
        publisher_output = publisher.communicate(timeout=180)[0]
    finally:
        for process in (recorder, publisher):
            if process.poll() is None:
                process.kill()
    if recorder.returncode or publisher.returncode:
        raise RuntimeError(f"publisher ({publisher.returncode}): {publisher_output}\n"
                           f"recorder ({recorder.returncode}): {recorder_output}")
    published = work / "publisher" / name
    received = work / "recorder" / "received"
    header, a = _table(published / "D2" / "D2.csv")
    assert header == ["time_usec", "value", "device_time_usec", "arrival_time_usec"], header
    header_b, b = _table(received / "D2" / "D2.csv")
    a_start, b_start = _start_ns(published) // 1000, _start_ns(received) // 1000
    # edges of the square wave (the first row is the line's initial level, read when its mode was set)
    since_open = (a[:, 2] - OFFSET_USEC) / (1.0 + DRIFT_PPM * 1e-6)
    half = 1e6 / SQUARE_HZ / 2
    edge = np.abs(since_open - np.round(since_open / half) * half) < 3
    opened = _opened_usec(published)
    if opened is None:  # bounded by the earliest arrival (see the module docstring)
        opened = float(np.min(a[edge, 3] - since_open[edge])) - LATENCY_USEC
    # the recorder's rows are the publisher's rows, from the first on (the publisher waited for it)
    count = len(b)
    assert count <= len(a) and np.array_equal(b[:, 1], a[:count, 1]), "the recorder missed or reordered readings"
    assert np.abs(b[:, 2] - (a[:count, 0] + a_start)).max() <= 1, "LSL stamps are not the published times"
    keep = edge[:count]
    return TwoHostResult(
        true_usec=a_start + opened + since_open[:count][keep],
        publisher_usec=(a_start + a[:count, 0])[keep].astype(np.float64),
        recorder_usec=(b_start + b[:, 0])[keep].astype(np.float64),
        publisher_output=publisher_output, recorder_output=recorder_output)

