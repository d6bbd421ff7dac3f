"""HDF5 signal and line-reading writers (read back with plain h5py) and the CSV table writer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from hwlink.edl import (
    NO_DEVICE_TIME,
    Collection,
    LineReadingWriter,
    SignalWriteError,
    SignalWriter,
    TableWriteError,
    read_signal_file,
    read_table,
)
from hwlink.lines import LineReading, SignalBlock


def test_signal_layout_for_plain_h5py(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        dataset = collection.create_dataset("ai")
        writer = dataset.signal_writer(["ai0", "ai1", "ai2"], np.int16, sample_rate_hz=30_000, units="V",
                                       line_ids=[0, 1, 2])
        rng = np.random.default_rng(1)
        expected = []
        for block in range(20):
            data = rng.integers(-30000, 30000, size=(997, 3), dtype=np.int16)
            stamps = np.arange(block * 997, (block + 1) * 997, dtype=np.int64) * 33
            writer.append(stamps, data)
            expected.append(data)
        assert writer.rows == 20 * 997
    with h5py.File(dataset.path / "ai.h5", "r") as file:
        data, stamps = file["data"], file["timestamps"]
        assert data.dtype == np.int16 and data.shape == (20 * 997, 3) and data.chunks is not None
        assert data.maxshape == (None, 3) and stamps.dtype == np.int64 and stamps.maxshape == (None,)
        np.testing.assert_array_equal(data[()], np.concatenate(expected))
        np.testing.assert_array_equal(stamps[()], np.arange(20 * 997) * 33)
        assert list(data.attrs["channel_names"]) == ["ai0", "ai1", "ai2"]
        assert data.attrs["units"] == "V" and data.attrs["sample_rate_hz"] == 30_000.0
        assert stamps.attrs["unit"] == "us" and stamps.attrs["clock"] == "master"
        assert file.attrs["hwlink_layout"] == "hwlink-signals-1"
        assert file.attrs["collection_id"] == str(collection.collection_id)


def test_large_blocks_bypass_the_buffer_and_keep_order(tmp_path: Path) -> None:
    with SignalWriter(tmp_path / "big.h5", ["a"], np.float32) as writer:
        writer.append(np.arange(10), np.arange(10, dtype=np.float32))
        big = np.arange(3_000_000, dtype=np.float32)  # larger than the 4 MiB buffer
        writer.append(np.arange(10, 10 + big.size), big)
        writer.append(np.arange(5), np.full(5, -1, dtype=np.float32))
    content = read_signal_file(tmp_path / "big.h5")
    assert content["data"].shape == (3_000_015, 1)
    np.testing.assert_array_equal(content["data"][:10, 0], np.arange(10))
    np.testing.assert_array_equal(content["data"][10:-5, 0], big)
    np.testing.assert_array_equal(content["data"][-5:, 0], -1)


def test_signal_blocks_record_gaps(tmp_path: Path) -> None:
    with SignalWriter(tmp_path / "s.h5", ["A0", "A1"], np.float64, line_ids=(14, 15)) as writer:
        for first in (100, 110, 130):  # samples 120..129 were lost
            writer.append_block(SignalBlock(np.arange(first, first + 10), np.zeros((10, 2)), (14, 15), first))
        with pytest.raises(SignalWriteError, match="block has lines"):
            writer.append_block(SignalBlock(np.arange(3), np.zeros((3, 2)), (1, 2), 140))
    content = read_signal_file(tmp_path / "s.h5")
    assert content["attrs"]["first_sample_index"] == 100
    np.testing.assert_array_equal(content["sample_gaps"], [[20, 130]])


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with SignalWriter(tmp_path / "s.h5", ["a", "b"], np.int16) as writer:
        with pytest.raises(SignalWriteError, match="expected 3 x 2 samples"):
            writer.append(np.arange(3), np.zeros((3, 3), dtype=np.int16))
        with pytest.raises(SignalWriteError, match="cannot store float64 samples in a int16 signal"):
            writer.append(np.arange(3), np.zeros((3, 2)))
        with pytest.raises(SignalWriteError, match="timestamps must be integer"):
            writer.append(np.zeros(3), np.zeros((3, 2), dtype=np.int16))
    with pytest.raises(SignalWriteError, match="cannot create HDF5 file"):
        SignalWriter(tmp_path / "s.h5", ["a"], np.int16)  # exists: never overwritten
    with pytest.raises(SignalWriteError, match="is closed"):
        writer.append(np.arange(1), np.zeros((1, 2), dtype=np.int16))


def test_line_readings_with_device_and_synced_times(tmp_path: Path) -> None:
    readings = [LineReading(14, 512, 1000, 900), LineReading(15, 3, 2000, None), LineReading(14, 7, 3000, 2950)]
    with LineReadingWriter(tmp_path / "r.h5", {14: "A0", 15: "A1"}, synced=True) as writer:
        for number, reading in enumerate(readings):
            writer.append(reading, synced_time_usec=reading.time_usec - 10 * number)
        with pytest.raises(SignalWriteError, match="pass synced_time_usec"):
            writer.append(readings[0])
    content = read_signal_file(tmp_path / "r.h5")
    np.testing.assert_array_equal(content["timestamps"], [1000, 1990, 2980])
    np.testing.assert_array_equal(content["arrival_timestamps"], [1000, 2000, 3000])
    np.testing.assert_array_equal(content["data"][:, 0], [512, 3, 7])
    np.testing.assert_array_equal(content["line_ids"], [14, 15, 14])
    np.testing.assert_array_equal(content["device_timestamps"], [900, NO_DEVICE_TIME, 2950])
    assert content["attrs"]["line_names"] == ["A0", "A1"] and content["attrs"]["hwlink_layout"] == \
        "hwlink-line-readings-1"


def test_line_readings_bulk_without_device_clock(tmp_path: Path) -> None:
    with LineReadingWriter(tmp_path / "r.h5", {2: "D2"}, device_clock=False) as writer:
        writer.append_arrays(np.arange(5), np.full(5, 2), np.arange(5) % 2)
        with pytest.raises(SignalWriteError, match="differ in length"):
            writer.append_arrays(np.arange(5), np.full(4, 2), np.arange(5))
    content = read_signal_file(tmp_path / "r.h5")
    assert "device_timestamps" not in content and content["data"].shape == (5, 1)


READ_ROWS = """
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    print(f["timestamps"].shape[0])
"""


def _rows_seen_by_another_process(path: Path) -> int:
    env = dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE")
    out = subprocess.run([sys.executable, "-c", READ_ROWS, str(path)], capture_output=True, text=True, env=env,
                         check=True, timeout=30)
    return int(out.stdout)


def test_quiet_stream_is_flushed_by_the_background_thread(tmp_path: Path) -> None:
    with SignalWriter(tmp_path / "s.h5", ["a"], np.int32, flush_interval=0.2) as writer:
        appended = time.monotonic()
        writer.append(np.arange(7), np.arange(7, dtype=np.int32))
        seen = _rows_seen_by_another_process(tmp_path / "s.h5")
        # buffered at first; on a loaded machine the reader may start after the flush was due (then it sees all)
        assert seen == 0 or (seen == 7 and time.monotonic() - appended >= 0.2)
        deadline = time.monotonic() + 15
        while _rows_seen_by_another_process(tmp_path / "s.h5") != 7:
            assert time.monotonic() < deadline, "buffered rows never reached the file"
            time.sleep(0.1)


FORGET_TO_CLOSE = """
import sys
import numpy as np
from hwlink.edl import Collection
collection = Collection.create(sys.argv[1], "rec")
writer = collection.create_dataset("s").signal_writer(["a"], np.int16, flush_interval=60)
writer.append(np.arange(5), np.arange(5, dtype=np.int16))
table = collection.create_dataset("t").table_writer(["x"], flush_interval=60)
table.append([1])
"""


def test_writers_left_open_are_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", FORGET_TO_CLOSE, str(tmp_path)], check=True, timeout=60)
    assert read_signal_file(tmp_path / "rec" / "s" / "s.h5")["data"][:, 0].tolist() == [0, 1, 2, 3, 4]
    assert read_table(tmp_path / "rec" / "t" / "t.csv") == (["x"], [["1"]])


def test_table_writer_syntalos_style(tmp_path: Path) -> None:
    with Collection.create(tmp_path, "rec") as collection:
        dataset = collection.create_dataset("events")
        with dataset.table_writer(["Time", "Event", "Value"]) as table:
            table.append([100, "press;hard", 1.5])
            table.append([250, "multi\nline", None])
            table.append([300, True, 2])
            with pytest.raises(TableWriteError, match="row has 2 cells, the table has 3 columns"):
                table.append([1, 2])
    text = (dataset.path / "events.csv").read_text(encoding="utf-8")
    assert text == "Time;Event;Value\n100;press\uff1bhard;1.5\n250;multi line;\n300;1;2\n"
    assert read_table(dataset.path / "events.csv") == (
        ["Time", "Event", "Value"], [["100", "press\uff1bhard", "1.5"], ["250", "multi line", ""], ["300", "1", "2"]])
