"""NWB export throughput: ``hwlink export nwb`` against a plain pynwb script writing the same arrays.

The collection holds one HDF5 signal dataset (int16 channels, int64 µs timestamps), as ``record``/``run`` write
it. Peers, alternated, three rounds, best of each reported:

* hwlink: ``export_nwb`` (streams chunks of 8 MB, gzip where a trial chunk shows it pays: here the timestamps);
* pynwb, plain: the script a user would write: read both arrays into memory with h5py, one ``TimeSeries`` with
  ``timestamps = µs / 1e6``, ``NWBHDF5IO.write`` (no compression: pynwb's default and its fastest);
* pynwb, same compression as hwlink: the plain script with gzip(1)+shuffle on the timestamps, as hwlink chose;
* floor: h5py copying the same two arrays into a new HDF5 file (read + write, no NWB).
MB/s counts the input bytes (samples + timestamps). Memory: growth of the process's max RSS in an untimed
first round (hwlink first).
"""

from __future__ import annotations

import gc
import resource
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pynwb  # noqa: F401 - loaded before any peer is measured

from hwlink.edl import Collection, SignalWriter
from hwlink.nwb_export import NwbMetadata, export_nwb


def _collection(folder: Path, rows: int, channels: int) -> tuple[Path, int]:
    collection = Collection.create(folder, "bench")
    dataset = collection.create_dataset("signals")
    path = dataset.set_data_file("signals.h5", summary="bench signal")
    rng = np.random.default_rng(0)
    step = 200_000
    with SignalWriter(path, [f"ch{n}" for n in range(channels)], np.int16, sample_rate_hz=30_000) as writer:
        for start in range(0, rows, step):
            count = min(step, rows - start)
            stamps = (np.arange(start, start + count, dtype=np.int64) * 1_000_000) // 30_000 + 1_000
            writer.append(stamps, rng.integers(-2000, 2000, size=(count, channels), dtype=np.int16))
    collection.close()
    return folder / "bench", rows * (channels * 2 + 8)


def _plain_pynwb(source: Path, target: Path, compress: bool) -> None:
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    import datetime

    with h5py.File(source, "r") as file:
        data = file["data"][()]
        stamps = file["timestamps"][()] / 1e6
    nwb = NWBFile(session_description="bench", identifier="bench",
                  session_start_time=datetime.datetime.now(datetime.timezone.utc))
    timestamps = H5DataIO(stamps, compression="gzip", compression_opts=1, shuffle=True) if compress else stamps
    nwb.add_acquisition(TimeSeries(name="signals", data=data, unit="ADC codes", timestamps=timestamps))
    with NWBHDF5IO(str(target), "w") as io:
        io.write(nwb)


def _floor(source: Path, target: Path) -> None:
    with h5py.File(source, "r") as file, h5py.File(target, "w") as out:
        out["data"] = file["data"][()]
        out["timestamps"] = file["timestamps"][()] / 1e6


def _timed(function) -> tuple[float, float]:  # noqa: ANN001
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    function()
    elapsed = time.perf_counter() - started
    return elapsed, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def main(quick: bool) -> None:
    rows = 1_000_000 if quick else 20_000_000
    channels = 4
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        collection, size = _collection(work / "edl", rows, channels)
        source = collection / "signals" / "signals.h5"
        peers = {
            "floor: h5py copy (read + write)": lambda: _floor(source, work / "floor.h5"),
            "pynwb, plain script (no compression)": lambda: _plain_pynwb(source, work / "plain.nwb", False),
            "pynwb, plain script (gzip on timestamps, as hwlink)": lambda: _plain_pynwb(source, work / "gz.nwb", True),
            "hwlink export nwb": lambda: export_nwb(collection, work / "hwlink.nwb", overwrite=True,
                                                    metadata=NwbMetadata(session_description="bench")),
        }
        best: dict[str, float] = {}
        memory: dict[str, float] = {}
        # an untimed first round loads pynwb and measures memory: max RSS is a high-water mark, so hwlink (which
        # streams) goes first, and each peer after it shows how far past that mark it had to go
        for name, run in reversed(list(peers.items())):
            memory[name] = _timed(run)[1]
        for _ in range(rounds):
            for name, run in peers.items():
                best[name] = min(best.get(name, float("inf")), _timed(run)[0])
        sizes = {name: (work / f).stat().st_size / 1e6 for name, f in
                 zip(peers, ("floor.h5", "plain.nwb", "gz.nwb", "hwlink.nwb"), strict=True)}
    print(f"{rows:,} rows x {channels} int16 channels + int64 timestamps = {size / 1e6:.0f} MB of input; "
          f"best of {rounds} alternated rounds\n")
    print("| peer | s | MB/s | output MB | max RSS growth MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in peers:
        print(f"| {name} | {best[name]:.2f} | {size / 1e6 / best[name]:.0f} | {sizes[name]:.0f} | "
              f"{memory[name]:.0f} |")


if __name__ == "__main__":
    main(quick=True)
