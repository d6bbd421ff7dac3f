"""A full disk, for real: `record` and `run` on a 2 MB tmpfs stop cleanly and leave readable files.

Every write path (HDF5 signals and readings, CSV tables, tsync aux files, manifests) must turn ENOSPC into a
clean stop: one-line error, exit code != 0, every unit closed, and everything up to the last successful flush
readable by h5py, edlio, hwlink's strict tsync reader and `hwlink edl verify`.

CI runs as root, so the tests mount a real tmpfs. Where mounting is refused (not root, no CAP_SYS_ADMIN) they
fall back to RLIMIT_FSIZE in the child process, which makes the kernel refuse writes past a size (EFBIG instead
of ENOSPC, a weaker stand-in) and say so in the test output.
"""

from __future__ import annotations

import csv
import os
import resource
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import edlio
import h5py
import numpy as np
import pytest
from edlio.dataio.tsyncfile import TSyncFile as EdlioTSyncFile

from hwlink.edl import TableWriteError, TableWriter
from hwlink.sync.tsync import TSyncWriteError, TSyncWriter, read_tsync

HWLINK = str(Path(sys.executable).with_name("hwlink"))
SMALL_FS_SIZE = 2 << 20
FAST_BOARD = "sim://?d2=square:500Hz&analog_interval=1ms"


class SmallDisk:
    """A small file system at ``path``, or (if mounting is refused) a per-process file-size limit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_FS_SIZE}", "tmpfs", str(path)],
                                 capture_output=True, text=True)
        self.mounted = mounted.returncode == 0
        if not self.mounted:
            print(f"\nmounting a tmpfs was refused ({mounted.stderr.strip()}); falling back to RLIMIT_FSIZE "
                  f"(EFBIG per file instead of a full disk)")

    def limit(self) -> None:
        """preexec_fn of the child: without a mount, cap each file it writes."""
        if not self.mounted:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (SMALL_FS_SIZE // 2, SMALL_FS_SIZE // 2))

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "small")
    yield disk
    disk.unmount()


def run_until_full(disk: SmallDisk, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HWLINK, *args], capture_output=True, text=True, timeout=240, preexec_fn=disk.limit)


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode not in (0, -signal.SIGSEGV, -signal.SIGBUS, 139, 135), result
    assert result.returncode > 0, result
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "No space left on device" in errors[0] or "File too large" in errors[0], errors[0]


def assert_everything_readable(collection_path: Path) -> dict[str, int]:
    """h5py, edlio, strict read_tsync, edlio's tsync reader and `edl verify` all accept what is on disk."""
    rows: dict[str, int] = {}
    verified = subprocess.run([HWLINK, "edl", "verify", str(collection_path)], capture_output=True, text=True,
                              timeout=120)
    assert verified.returncode == 0 and " 0 error(s)" in verified.stdout, verified.stdout + verified.stderr
    collection = edlio.load(str(collection_path))
    assert collection.name
    for h5 in collection_path.rglob("*.h5"):
        with h5py.File(h5, "r") as file:
            stamps = file["timestamps"][()]
            assert file["data"].shape[0] == stamps.shape[0]
            if stamps.size:  # no zero rows from a write that failed halfway
                assert stamps.min() > 0 and np.all(np.diff(stamps) >= 0), h5
            rows[h5.name] = int(stamps.size)
    for table in collection_path.rglob("*.csv"):
        text = table.read_text(encoding="utf-8")
        assert text.endswith("\n"), f"{table} ends in a cut row"
        parsed = list(csv.reader(text.splitlines(), delimiter=";"))
        assert all(len(row) == len(parsed[0]) for row in parsed), table
        rows[table.name] = len(parsed) - 1
    for tsync in collection_path.rglob("*.tsync"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a truncation warning would mean a torn file
            strict = read_tsync(tsync)
        assert strict.intact
        assert len(EdlioTSyncFile(str(tsync)).times) == len(strict)
        rows[tsync.name] = len(strict)
    assert not list(collection_path.rglob(".*.tmp")), "a temporary file was left behind"
    return rows


def test_record_on_a_full_disk_stops_cleanly(small_disk: SmallDisk) -> None:
    result = run_until_full(small_disk, ["record", "-q", "-b", FAST_BOARD, "--lines", "2,A0,A1,A2,A3",
                                         "--duration", "90s", "-o", str(small_disk.path / "rec")])
    assert_clean_failure(result)
    collection_path = small_disk.path / "rec"
    rows = assert_everything_readable(collection_path)
    assert rows["D2.csv"] > 100 and rows["A0.h5"] > 100, rows
    attributes = edlio.load(str(collection_path)).attributes
    if attributes:  # the attributes are the last thing written; a full disk may refuse them
        assert attributes.get("success") is False


def test_run_on_a_full_disk_stops_cleanly(small_disk: SmallDisk, tmp_path: Path) -> None:
    experiment = tmp_path / "heavy.toml"
    experiment.write_text(f"""
[experiment]
name = "heavy"
duration = "90s"

[modules.board]
kind = "board"
url = "{FAST_BOARD}"
inputs = ["2", "A0", "A1", "A2", "A3"]

[modules.rec]
kind = "recorder"
name = "readings"

[[connect]]
from = "board.readings"
to = "rec.in"
""")
    result = run_until_full(small_disk, ["run", str(experiment), "-o", str(small_disk.path / "run")])
    assert_clean_failure(result)
    rows = assert_everything_readable(small_disk.path / "run")
    assert rows["readings.h5"] > 100, rows


def test_writers_on_a_full_disk_keep_whole_rows_and_blocks(small_disk: SmallDisk) -> None:
    if not small_disk.mounted:
        pytest.fail("this test needs the tmpfs (CI runs as root)")
    filler = small_disk.path / "filler"
    table_path, tsync_path = small_disk.path / "t.csv", small_disk.path / "t.tsync"
    table = TableWriter(table_path, ["a", "b"], flush_interval=3600)
    tsync = TSyncWriter(tsync_path, block_size=64, flush_interval=3600)
    for i in range(100):
        table.append([i, "x" * 50])
        tsync.add(i, i * 2)
    table.flush()
    tsync.flush()
    with open(filler, "wb") as handle:  # fill the disk to the last byte
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    for i in range(100, 3000):
        try:
            table.append([i, "y" * 50])
        except TableWriteError:
            break
    with pytest.raises(TableWriteError, match="No space left on device|failed"):
        table.close()
    with pytest.raises(TSyncWriteError, match="No space left on device"):
        for i in range(100, 3000):
            tsync.add(i, i * 2)
        tsync.flush()
    with pytest.raises(TSyncWriteError):
        tsync.close()
    lines = table_path.read_text().splitlines(keepends=True)
    assert lines[-1].endswith("\n") and len(lines) >= 101
    assert all(line.count(";") == 1 for line in lines)
    assert len(read_tsync(tsync_path)) >= 100
    assert len(EdlioTSyncFile(str(tsync_path)).times) == len(read_tsync(tsync_path))
    assert not list(small_disk.path.glob(".*.tmp"))
    os.unlink(filler)
