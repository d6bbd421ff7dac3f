"""Offline correction of EDL datasets (hwlink.edl trees, edlio reading them back, and the Syntalos sample)."""

from __future__ import annotations

from pathlib import Path

import edlio
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from hwlink.cli.main import cli
from hwlink.edl import NO_DEVICE_TIME, Collection, read_table
from hwlink.sync.offline import OfflineError, SyncPointMap
from hwlink.edl_correction import correct_edl_dataset, dataset_mapping, open_dataset
from hwlink.sync.tsync import TSyncFileMode, TSyncWriter
from tests.conftest import SHARED

DEVICE = np.array([0, 10_000_000, 20_000_000, 30_000_000], dtype=np.int64)
MASTER = np.array([-2500, 10_000_400, 20_000_900, 30_001_300], dtype=np.int64)


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    with Collection.create(tmp_path, "session") as root:
        group = root.create_group("daq")
        events = group.create_dataset("events")
        with events.table_writer(["Time", "Event"]) as table:
            for time_us, name in [(0, "start"), (5_000_000, "lever"), (29_999_999, "end")]:
                table.append([time_us, name])
        with TSyncWriter(events.add_aux_file("events.tsync", summary="clock sync"), tolerance_us=1500) as sync:
            sync.add_many(DEVICE, MASTER)
        lines = group.create_dataset("lines")
        writer = lines.line_reading_writer({2: "D2"})
        writer.append_arrays(np.array([1, 2, 3]), np.array([2, 2, 2]), np.array([0, 1, 0]),
                             device_time_usec=np.array([1_000_000, NO_DEVICE_TIME, 25_000_000]))
        # The sync map in two parts, as a long recording would have it.
        for index, (rows, name) in enumerate([(slice(0, 2), "sync-0.tsync"), (slice(2, 4), "sync-1.tsync")]):
            with TSyncWriter(lines.add_aux_file_part(name, "sync.tsync", index)) as sync:
                sync.add_many(DEVICE[rows], MASTER[rows])
        group.create_dataset("nosync").table_writer(["Time"]).close()
    return tmp_path / "session"


def expected(values: np.ndarray) -> np.ndarray:
    return np.interp(values, DEVICE, MASTER)


def test_csv_part_corrected_with_its_aux_tsync(collection: Path) -> None:
    written = correct_edl_dataset(collection / "daq" / "events", column="Time")
    assert written == [str(collection / "daq" / "events" / "events_master.csv")]
    header, rows = read_table(written[0])
    assert header == ["Time_master_us", "Event"] and [row[1] for row in rows] == ["start", "lever", "end"]
    assert np.allclose([float(row[0]) for row in rows], expected(np.array([0, 5e6, 29_999_999])), atol=1e-3)


def test_hdf5_part_with_multi_part_aux_tsync_and_missing_device_times(collection: Path) -> None:
    dataset = open_dataset(collection / "daq" / "lines")
    mapping = dataset_mapping(dataset)
    assert np.allclose(mapping(DEVICE.astype(float)), MASTER)
    (written,) = correct_edl_dataset(collection / "daq" / "lines")
    path, name = written.rsplit(":", 1)
    assert name == "device_timestamps_master_us"
    with h5py.File(path, "r") as file:
        corrected = file[name][:]
    assert np.allclose(corrected[[0, 2]], expected(np.array([1e6, 25e6])))
    assert np.isnan(corrected[1])


def test_edlio_sees_the_same_aux_tsync(collection: Path) -> None:
    theirs = edlio.load(collection / "daq" / "lines")
    tsyncs = [file for aux in theirs.aux_data for file in aux.read()]
    stacked = np.vstack([file.times for file in tsyncs])
    assert np.array_equal(stacked, np.stack([DEVICE, MASTER], axis=1))
    assert all(file.sync_mode == TSyncFileMode.SYNCPOINTS for file in tsyncs)


def test_datasets_without_tsync_or_with_unsupported_parts(collection: Path) -> None:
    with pytest.raises(OfflineError, match="no aux tsync"):
        correct_edl_dataset(collection / "daq" / "nosync")
    with pytest.raises(OfflineError, match="not a dataset"):
        correct_edl_dataset(collection / "daq")
    intan = SHARED / "data" / "edl" / "blink1" / "intan-signals"
    mapping = dataset_mapping(open_dataset(intan), rate_hz=30_000)
    reference = SyncPointMap.from_tsync(intan / "a870_data.tsync").sample_times(100, 30_000)
    assert np.array_equal(mapping(np.arange(100.0)), reference)
    with pytest.raises(OfflineError, match="cannot correct .rhd files"):
        correct_edl_dataset(intan, rate_hz=30_000)


def test_cli_corrects_an_edl_dataset(collection: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(cli, ["tsync", "correct", str(collection / "daq" / "events"), "--column", "Time",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    header, rows = read_table(out / "events_master.csv")
    assert float(rows[1][0]) == pytest.approx(expected(np.array([5e6]))[0], abs=1e-3)
