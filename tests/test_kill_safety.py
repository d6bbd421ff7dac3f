"""SIGKILL at random moments: every file hwlink wrote stays readable, and the loss stays within the README's bound.

`hwlink record` and `hwlink run` are killed at several random moments (seeded, so a failure reproduces). After
each kill: every tsync file is read by edlio 0.3.4's reader and by hwlink's strict ``read_tsync`` (no
truncation), every HDF5 file by h5py, the collection by edlio, and the newest reading on disk is at most
``LOSS_BOUND_S`` (README: "missing at most the last half second") older than the moment of the kill.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import edlio
import h5py
import numpy as np
import pytest
from edlio.dataio.tsyncfile import TSyncFile as EdlioTSyncFile

from hwlink.edl import read_table
from hwlink.sync.tsync import read_tsync

HWLINK = str(Path(sys.executable).with_name("hwlink"))
LOSS_BOUND_S = 0.5


def loss_bound_s() -> float:
    """The README's half second, on a machine with two CPU hogs beside the suite. On a machine far busier than
    that (load average above twice the cores plus two) the writer itself gets too little CPU to keep up, which
    is starvation rather than flushing: the bound doubles and the output says so."""
    load = os.getloadavg()[0]
    if load > 2 * (os.cpu_count() or 1) + 2:
        print(f"(load average {load:.1f} on {os.cpu_count()} cores: loss bound widened to {2 * LOSS_BOUND_S} s)")
        return 2 * LOSS_BOUND_S
    return LOSS_BOUND_S
BOARD = "sim://?d2=square:20Hz&analog_interval=10ms&drift_ppm=40"  # light: the loss measured is flushing, not CPU starvation
SEEDS = [int(os.environ.get("HWLINK_KILL_SEED", "15")) + n for n in range(4)]


def newest_timestamp_usec(collection: Path) -> int:
    """The newest master-clock time of the data file that lags most (every file gets data all the time)."""
    newest: list[int] = []
    for h5 in collection.rglob("*.h5"):
        with h5py.File(h5, "r") as file:
            stamps = file["timestamps"][()]
            assert file["data"].shape[0] == stamps.shape[0]
            assert stamps.size, f"{h5}: empty"
            assert stamps.min() > 0, f"{h5}: zero rows"
            newest.append(int(stamps.max()))
    for table in collection.rglob("*.csv"):
        header, rows = read_table(table)
        assert all(len(row) == len(header) for row in rows), f"{table}: a cut row"
        assert rows, f"{table}: empty"
        newest.append(max(int(row[0]) for row in rows))
    assert newest
    return min(newest)


def data_span_usec(dataset: Path) -> int:
    """How long a dataset's data file (HDF5 or CSV) had been receiving readings when the process died."""
    for h5 in dataset.glob("*.h5"):
        with h5py.File(h5, "r") as file:
            stamps = file["timestamps"][()]
        return int(stamps.max() - stamps.min()) if stamps.size else 0
    for table in dataset.glob("*.csv"):
        _, rows = read_table(table)
        return int(rows[-1][0]) - int(rows[0][0]) if rows else 0
    return 0


def check_tsync_files(collection: Path) -> int:
    """Every tsync file is whole for both readers; one whose dataset got readings for a while has rows (its sync
    points are published with the data)."""
    files = list(collection.rglob("*.tsync"))
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a TSyncTruncationWarning would be a torn file
            strict = read_tsync(path)
        assert strict.intact, path
        if data_span_usec(path.parent) > 600_000:
            assert len(strict) > 0, f"{path}: no rows after a kill"
        assert np.array_equal(EdlioTSyncFile(str(path)).times, strict.times), path
    return len(files)


def kill_at(process: subprocess.Popen[str], delay_s: float) -> float:
    time.sleep(delay_s)
    killed = time.monotonic_ns()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return killed


@pytest.mark.parametrize("seed", SEEDS)
def test_killed_record_leaves_readable_files_within_the_loss_bound(tmp_path: Path, seed: int) -> None:
    delay = random.Random(seed).uniform(1.2, 4.0)
    output = tmp_path / "rec"
    process = subprocess.Popen([HWLINK, "record", "-q", "-b", BOARD, "--lines", "2,A0,A1", "--duration", "60s",
                                "-o", str(output / "k")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    collection_path = output / "k"
    deadline = time.monotonic() + 60
    while not (collection_path / "attributes.toml").is_file():  # the recording's time zero is in there
        assert time.monotonic() < deadline and process.poll() is None, "the recording did not start"
        time.sleep(0.01)
    start_ns = int(edlio.load(str(collection_path)).attributes["clock_start_monotonic_ns"])
    killed_ns = kill_at(process, max(0.0, delay - (time.monotonic_ns() - start_ns) / 1e9))
    collection = edlio.load(str(collection_path))
    assert check_tsync_files(collection_path) == 3
    newest = newest_timestamp_usec(collection_path)
    loss_s = (killed_ns - start_ns) / 1e9 - newest / 1e6
    print(f"record killed {(killed_ns - start_ns) / 1e9:.2f} s after time zero: newest reading {loss_s * 1000:.0f} ms before the kill")
    assert newest > 0
    assert loss_s <= loss_bound_s(), f"lost {loss_s:.3f} s"
    assert {dataset.name for dataset in collection.datasets} >= {"A0", "A1", "D2"}
    verified = subprocess.run([HWLINK, "edl", "verify", str(collection_path)], capture_output=True, text=True,
                              timeout=120)
    assert " 0 error(s)" in verified.stdout, verified.stdout


RUN = f"""
[experiment]
name = "killed"
duration = "60s"

[modules.board]
kind = "board"
url = "{BOARD}"
inputs = ["2", "A0"]

[modules.rec]
kind = "recorder"
name = "readings"

[[connect]]
from = "board.readings"
to = "rec.in"
"""


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_killed_run_leaves_readable_files_within_the_loss_bound(tmp_path: Path, seed: int) -> None:
    delay = random.Random(seed * 7).uniform(1.0, 3.5)
    experiment = tmp_path / "exp.toml"
    experiment.write_text(RUN)
    output = tmp_path / "run"
    process = subprocess.Popen([HWLINK, "run", str(experiment), "-o", str(output)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:  # "[engine] started" comes right after the run's time zero
        if "[engine] started" in line:
            started_seen_ns = time.monotonic_ns()
            break
    else:
        raise AssertionError("the run did not start")
    killed_ns = kill_at(process, delay)
    log_lines = (output / "hwlink-run" / "run.log").read_text().splitlines()
    started_at_s = float(next(line for line in log_lines if "[engine] started" in line).split()[0])
    # `run` does not store its time zero; (seen - logged time) estimates it, late by the pipe's delay (about a
    # millisecond), so this loss is short by that much
    zero_ns = started_seen_ns - round(started_at_s * 1e9)
    assert check_tsync_files(output) >= 1
    newest = newest_timestamp_usec(output)
    loss_s = (killed_ns - zero_ns) / 1e9 - newest / 1e6
    print(f"run killed after {delay:.2f} s: newest reading at most {loss_s * 1000:.0f} ms before the kill")
    assert newest > 0
    assert loss_s <= loss_bound_s(), f"lost {loss_s:.3f} s"
    assert edlio.load(str(output)).dataset_by_name("readings") is not None
