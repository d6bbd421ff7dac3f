"""Offline correction: edlio's Intan-loader semantics (compared with edlio itself), maps, CSV and HDF5 files."""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from edlio import ureg
from edlio.dataio.intan import _make_synced_tsvec

from hwlink.errors import HwlinkError
from hwlink.sync.offline import (
    IndexTable,
    OfflineError,
    PiecewiseLinearMap,
    SyncPointMap,
    correct_csv,
    correct_hdf5,
    load_mapping,
)
from hwlink.sync.tsync import TSyncFileMode, TSyncTimeUnit, TSyncWriter, read_tsync
from tests.conftest import SHARED

BLINK_INTAN_TSYNC = SHARED / "data" / "edl" / "blink1" / "intan-signals" / "a870_data.tsync"


def edlio_times_us(rows: np.ndarray, count: int, rate_hz: float) -> np.ndarray:
    """edlio 0.3.4's own computation (its Intan loader's steps, minus reading an .rhd file)."""
    sync_map = rows * ureg.usec
    indices = (sync_map[:, 0].to(ureg.seconds) * (rate_hz * ureg.hertz)).magnitude.astype(np.int32)
    return _make_synced_tsvec(count, rate_hz * ureg.hertz, indices, sync_map).to(ureg.usec).magnitude


def syncpoint_rows(seed: int, count: int, rate_hz: float) -> np.ndarray:
    """Rows like a Syntalos synchronizer's: (0, -offset), then device/master pairs drifting apart."""
    rng = np.random.default_rng(seed)
    device = np.concatenate([[0], np.cumsum(rng.integers(200_000, 2_000_000, count - 1))])
    master = device * (1 + rng.uniform(-80e-6, 80e-6)) + rng.integers(-9000, 9000) + rng.normal(0, 200, count)
    return np.stack([device, np.rint(master)], axis=1).astype(np.int64)


@pytest.mark.parametrize(("seed", "rows", "rate_hz", "extra"), [
    (0, 12, 30_000.0, 5000), (1, 3, 20_000.0, 0), (2, 40, 1000.0, 777), (3, 8, 25_000.0, 1),
    (4, 2, 30_000.0, 100), (5, 1, 30_000.0, 10),
])
def test_edlio_replica_matches_edlio(seed: int, rows: int, rate_hz: float, extra: int) -> None:
    table = syncpoint_rows(seed, rows, rate_hz)
    count = int(table[-1, 0] * rate_hz / 1e6) + extra
    theirs = edlio_times_us(table.astype(np.float64), count, rate_hz)
    ours = SyncPointMap(rows=table.astype(np.float64)).edlio_sample_times(count, rate_hz)
    assert np.allclose(ours, theirs, rtol=0, atol=1e-6)


def test_edlio_replica_when_the_recording_is_shorter_than_the_sync_map() -> None:
    table = syncpoint_rows(7, 10, 30_000.0)
    count = int(table[5, 0] * 30_000 / 1e6) + 17  # data ends inside the sync map
    theirs = edlio_times_us(table.astype(np.float64), count, 30_000.0)
    assert np.allclose(SyncPointMap(rows=table.astype(float)).edlio_sample_times(count, 30_000.0), theirs, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hwlink_sample_times_equal_edlio_between_rows_and_extrapolate_sanely(seed: int) -> None:
    rate = 30_000.0
    table = syncpoint_rows(seed, 15, rate)
    table[0, 0] = 40_000  # first row after sample 0: edlio leaves zeros before it
    count = int(table[-1, 0] * rate / 1e6) + 3000
    theirs = edlio_times_us(table.astype(np.float64), count, rate)
    points = SyncPointMap(rows=table.astype(np.float64))
    ours = points.sample_times(count, rate)
    first, last = points.row_sample_indices(rate)[[0, -1]]
    assert np.allclose(ours[first:last + 1], theirs[first:last + 1], rtol=0, atol=1e-6)
    # Outside the rows hwlink continues the end segments' lines (documented difference from edlio).
    slopes = np.diff(ours)
    assert np.allclose(slopes[:first], slopes[first], rtol=1e-9)
    assert np.allclose(slopes[last:], slopes[last - 1], rtol=1e-9)
    assert np.all(theirs[:first] == 0)


def test_syncpoint_map_from_the_blink_sample_applies_only_the_offset() -> None:
    """The Syntalos 2.x Intan tsync has 2 rows: edlio (and hwlink) apply only row 0's offset."""
    points = SyncPointMap.from_tsync(BLINK_INTAN_TSYNC)
    assert points.rows.shape == (2, 2)
    count, rate = 450_000, 30_000.0
    theirs = edlio_times_us(points.rows, count, rate)
    assert np.allclose(points.sample_times(count, rate), theirs, atol=1e-6)
    times_map = points.time_map()
    assert times_map(np.array([0.0, 1e6])).tolist() == [6196.0, 1e6 + 6196.0]


def test_time_map_interpolates_device_times() -> None:
    table = syncpoint_rows(3, 20, 30_000).astype(np.float64)
    mapping = SyncPointMap(rows=table).time_map()
    probe = np.linspace(table[0, 0], table[-1, 0], 10_001)
    assert np.allclose(mapping(probe), np.interp(probe, table[:, 0], table[:, 1]), atol=1e-6)


def reference_map(knots_x: np.ndarray, knots_y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Piecewise-linear with extrapolation, one value at a time (independent of the vectorised code)."""
    result = np.empty(values.size)
    for i, value in enumerate(values):
        k = min(max(int(np.searchsorted(knots_x, value, side="right")) - 1, 0), knots_x.size - 2)
        slope = (knots_y[k + 1] - knots_y[k]) / (knots_x[k + 1] - knots_x[k])
        result[i] = knots_y[k] + (value - knots_x[k]) * slope
    return result


def test_piecewise_map_on_sorted_unsorted_and_integer_input() -> None:
    rng = np.random.default_rng(5)
    knots_x = np.cumsum(rng.uniform(1, 5, 30))
    knots_y = knots_x * 1.0001 + rng.normal(0, 0.01, 30)
    mapping = PiecewiseLinearMap(knots_x, knots_y)
    # 100k sorted values cross every knot and several chunk boundaries; include points outside the knots.
    sorted_values = np.sort(rng.uniform(knots_x[0] - 20, knots_x[-1] + 20, 100_000))
    sample = rng.choice(sorted_values.size, 3000, replace=False)
    assert np.allclose(mapping(sorted_values)[sample], reference_map(knots_x, knots_y, sorted_values[sample]),
                       rtol=0, atol=1e-9)
    shuffled = rng.permutation(sorted_values)
    assert np.allclose(mapping(shuffled)[sample], reference_map(knots_x, knots_y, shuffled[sample]), atol=1e-9)
    integers = np.arange(-5, 200, dtype=np.int64)
    assert np.allclose(mapping(integers), reference_map(knots_x, knots_y, integers.astype(float)), atol=1e-9)
    in_place = sorted_values.copy()
    assert mapping(in_place, out=in_place) is in_place
    assert np.array_equal(in_place, mapping(sorted_values))
    assert mapping(np.empty((0,))).shape == (0,)
    assert np.isnan(mapping(np.array([np.nan]))[0])


def test_piecewise_map_rejects_bad_knots() -> None:
    for knots in ([1, 1, 2], [3, 2], []):
        with pytest.raises(OfflineError):
            PiecewiseLinearMap(knots, list(range(len(knots))))
    with pytest.raises(OfflineError):
        PiecewiseLinearMap([0, 1], [0, np.inf])


def test_tsync_rows_keep_the_slope_for_edlio() -> None:
    mapping = PiecewiseLinearMap([0.0, 1e6], [100.0, 1e6 + 150.0])
    rows = mapping.to_tsync_rows()
    assert rows.shape == (3, 2)
    assert np.allclose(SyncPointMap(rows=rows.astype(float)).time_map()(np.array([2e6])), mapping(np.array([2e6])))


def test_index_table_from_the_syntalos_video_sample(syntalos_tsync: Path) -> None:
    path = syntalos_tsync
    table = load_mapping(path)
    assert isinstance(table, IndexTable)
    file = read_tsync(path)
    frames = np.array([0, 5, 3124, 17])
    assert table(frames).tolist() == file.time2[frames].astype(float).tolist()
    with pytest.raises(OfflineError, match="index 3125 is not in the table"):
        table(np.array([3125]))
    with pytest.raises(OfflineError, match="not SYNCPOINTS"):
        SyncPointMap.from_tsync(path)


def test_index_table_with_gaps_and_millisecond_times(tmp_path: Path) -> None:
    path = tmp_path / "gaps.tsync"
    units = (TSyncTimeUnit.INDEX, TSyncTimeUnit.MILLISECONDS)
    with TSyncWriter(path, mode=TSyncFileMode.CONTINUOUS, time_units=units) as writer:
        writer.add_many([10, 12, 13, 20], [1, 2, 3, 4])
    table = IndexTable.from_tsync(path)
    assert table(np.array([20, 10, 13])).tolist() == [4000.0, 1000.0, 3000.0]
    with pytest.raises(OfflineError, match="index 11"):
        table(np.array([10, 11]))


def test_load_mapping_dispatch_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "sp.tsync"
    table = syncpoint_rows(1, 5, 30_000)
    with TSyncWriter(path) as writer:
        writer.add_many(table[:, 0], table[:, 1])
    assert isinstance(load_mapping(path), PiecewiseLinearMap)
    by_samples = load_mapping(path, rate_hz=30_000)
    assert np.allclose(by_samples(np.arange(100.0)), SyncPointMap.from_tsync(path).sample_times(100, 30_000))
    empty = tmp_path / "empty.tsync"
    TSyncWriter(empty).close()
    with pytest.raises(HwlinkError, match="no sync points"):
        load_mapping(empty)
    with pytest.raises(OfflineError, match="positive"):
        SyncPointMap.from_tsync(path).sample_map(0)


@pytest.fixture
def drift_map() -> PiecewiseLinearMap:
    return PiecewiseLinearMap([0.0, 1e6, 2e6], [500.0, 1e6 + 520.0, 2e6 + 560.0])


@pytest.mark.parametrize("delimiter", [";", ","])
def test_correct_csv_in_chunks(delimiter: str, drift_map: PiecewiseLinearMap, tmp_path: Path) -> None:
    source, target = tmp_path / "events.csv", tmp_path / "out.csv"
    times_ms = np.arange(0, 2500, 0.5)
    with open(source, "w", newline="") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow(["Time", "Event", "Value"])
        other = "tick;tock" if delimiter == "," else "tick,tock"  # the other delimiter, inside a cell
        writer.writerows([f"{t:g}", other, i] for i, t in enumerate(times_ms))
    calls: list[tuple[int, int]] = []
    rows = correct_csv(source, target, "Time", drift_map, scale=1000, chunk_rows=777, new_column="master_us",
                       progress=lambda done, total: calls.append((done, total)))
    assert rows == times_ms.size and len(calls) == -(-rows // 777) and calls[-1][0] == calls[-1][1]
    with open(target, newline="") as stream:
        table = list(csv.reader(stream, delimiter=delimiter))
    assert table[0] == ["Time", "Event", "Value", "master_us"]
    corrected = np.array([float(row[3]) for row in table[1:]])
    assert np.allclose(corrected, drift_map(times_ms * 1000), atol=5e-4)
    assert [row[:3] for row in table[1:3]] == [["0", table[1][1], "0"], ["0.5", table[1][1], "1"]]
    correct_csv(source, target, 0, drift_map, scale=1000)
    with open(target, newline="") as stream:
        replaced = list(csv.reader(stream, delimiter=delimiter))
    assert replaced[0] == ["Time_master_us", "Event", "Value"]  # the values are master µs now: the name says so
    assert float(replaced[2][0]) == pytest.approx(drift_map(np.array([500.0]))[0])


def test_correct_csv_errors_name_the_problem(drift_map: PiecewiseLinearMap, tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("Time;Event\n1;a\n2;b\nthree;c\n")
    with pytest.raises(OfflineError, match="line 4: column 'Time' is not a number"):
        correct_csv(source, tmp_path / "o.csv", "Time", drift_map)
    with pytest.raises(OfflineError, match="no column 'Missing'"):
        correct_csv(source, tmp_path / "o.csv", "Missing", drift_map)


def test_correct_hdf5_dataset_and_column_with_bounded_memory(drift_map: PiecewiseLinearMap, tmp_path: Path) -> None:
    path = tmp_path / "signals.h5"
    device_us = np.arange(2_000_000, dtype=np.int64)
    with h5py.File(path, "w") as file:
        file["timestamps"] = device_us
        file["pairs"] = np.stack([device_us[:1000], -device_us[:1000]], axis=1)
    tracemalloc.start()
    try:
        name = correct_hdf5(path, "timestamps", drift_map, chunk_rows=1 << 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000  # the data are 16 MB in and 16 MB out
    name2 = correct_hdf5(path, "pairs", drift_map, column=0, out_dataset="first_master", chunk_rows=300)
    assert name2 == "first_master"
    with h5py.File(path, "r") as file:
        assert name == "timestamps_master_us" and file[name].attrs["unit"] == "us"
        assert np.array_equal(file[name][:], drift_map(device_us))
        assert np.array_equal(file["first_master"][:], drift_map(device_us[:1000]))
        assert np.array_equal(file["timestamps"][:], device_us)
    with pytest.raises(OfflineError, match="exists already"):
        correct_hdf5(path, "timestamps", drift_map)
    with pytest.raises(OfflineError, match="choose a column"):
        correct_hdf5(path, "pairs", drift_map, out_dataset="x")
    with pytest.raises(OfflineError, match="no dataset"):
        correct_hdf5(path, "nothing", drift_map)


def test_assume_sorted_gives_the_same_result_on_sorted_input() -> None:
    knots = np.linspace(0, 1e6, 40)
    mapping = PiecewiseLinearMap(knots, knots * 1.00003 + np.sin(knots))
    values = np.linspace(-5e4, 1.1e6, 300_001)
    assert np.array_equal(mapping(values, assume_sorted=True), mapping(values))


@pytest.mark.parametrize("knots_x", [
    np.linspace(0, 1e6, 50),  # even spacing: the bin table
    np.array([0.0, 1.0, 1.0 + 1e-6, 5e9, 1e10]),  # a tiny gap: too many bins, binary search instead
    np.array([-3.0, 7.0, 11.0]),  # one inner knot
])
def test_unsorted_values_find_their_segment(knots_x: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    knots_y = knots_x * 0.9999 + rng.normal(0, 1, knots_x.size)
    mapping = PiecewiseLinearMap(knots_x, knots_y)
    span = knots_x[-1] - knots_x[0]
    values = np.concatenate([rng.uniform(knots_x[0] - span, knots_x[-1] + span, 5000), knots_x,
                             np.nextafter(knots_x, -np.inf), np.nextafter(knots_x, np.inf)])
    values = rng.permutation(values)
    assert np.allclose(mapping(values), reference_map(knots_x, knots_y, values), rtol=1e-12, atol=1e-6)
    ends = mapping(np.array([5.0, -np.inf, np.inf, np.nan]))
    assert ends[1] == (-np.inf if mapping.slopes[0] > 0 else np.inf) and np.isnan(ends[3])
