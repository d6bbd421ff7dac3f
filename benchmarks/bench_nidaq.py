"""Continuous analog input from the simulated NI-DAQmx device (16 ch x 100 kHz, a PXIe-6358-like device with
simultaneous sampling) through nidaqmx's real Task code, three ways in the same run:

* ``nidaqmx alone``: a Task with an every-N-samples callback reading each block into a numpy buffer — the cost of
  the simulated device plus nidaqmx, the floor everything else stands on;
* ``nidaq:// -> plain h5py``: the hwlink driver (float32 SignalBlocks, sample-counter synchronizer) feeding a plain
  h5py append loop (resize + write per block) on a writer thread;
* ``nidaq:// -> hwlink record``: the ``hwlink record`` command (EDL collection, HDF5 signal writer), in-process.

Reported: samples per second and channel actually stored over the nominal rate, CPU share of one core (process CPU
time / wall time, simulator included), and dropped blocks (gaps in the acquisition's sample indices or in the
recorded file; an overflow (-200279) would end the run and is reported as such).
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
from click.testing import CliRunner

import nidaqmx
from hwlink.cli.main import cli
from hwlink.drivers import open_board
from hwlink.edl import read_signal_file
from hwlink.lines import LineModeFlags, SignalBlock
from hwlink.testing.nidaq_sim import SimulatedDevice, SimulatedNidaq

CHANNELS = 16
RATE_HZ = 100_000
BLOCK = 10_000  # samples per channel per block: 100 ms
URL = f"nidaq://Dev1?rate={RATE_HZ}Hz&block={BLOCK}"


def _device() -> SimulatedDevice:
    return SimulatedDevice(product_type="PXIe-6358", ai_count=CHANNELS, ai_simultaneous_sampling=True,
                           ai_max_single_chan_rate_hz=1.25e6)


def _measure(work: Callable[[], tuple[int, int, str]]) -> tuple[float, float, int, int, str]:
    """(wall s, CPU share, samples stored, gaps, note) of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    stored, gaps, note = work()
    elapsed = time.perf_counter() - wall
    return elapsed, (time.process_time() - cpu) / elapsed, stored, gaps, note


def nidaqmx_alone(seconds: float) -> tuple[int, int, str]:
    from nidaqmx.constants import AcquisitionType
    from nidaqmx.stream_readers import AnalogMultiChannelReader

    buffer = np.zeros((CHANNELS, BLOCK))
    received = [0]
    with nidaqmx.Task() as task:
        task.ai_channels.add_ai_voltage_chan(f"Dev1/ai0:{CHANNELS - 1}", min_val=-10, max_val=10)
        task.timing.cfg_samp_clk_timing(RATE_HZ, sample_mode=AcquisitionType.CONTINUOUS, samps_per_chan=4 * BLOCK)
        reader = AnalogMultiChannelReader(task.in_stream)

        def on_block(handle: object, event: int, count: int, data: object) -> int:
            reader.read_many_sample(buffer, number_of_samples_per_channel=count, timeout=1.0)
            received[0] += count
            return 0

        task.register_every_n_samples_acquired_into_buffer_event(BLOCK, on_block)
        task.start()
        time.sleep(seconds)
        task.stop()
    return received[0], 0, ""


def driver_to_plain_h5py(seconds: float, folder: Path) -> tuple[int, int, str]:
    blocks: queue.SimpleQueue[SignalBlock | None] = queue.SimpleQueue()
    errors: list[BaseException] = []
    stored = gaps = 0

    def write() -> None:
        nonlocal stored, gaps
        expected = None
        with h5py.File(folder / "plain.h5", "w") as file:
            data = file.create_dataset("data", (0, CHANNELS), maxshape=(None, CHANNELS), dtype=np.float32,
                                       chunks=(BLOCK, CHANNELS))
            stamps = file.create_dataset("timestamps", (0,), maxshape=(None,), dtype=np.int64, chunks=(BLOCK,))
            while (block := blocks.get()) is not None:
                gaps += expected is not None and block.first_index != expected
                expected = block.first_index + block.length
                rows = data.shape[0]
                data.resize(rows + block.length, axis=0)
                stamps.resize(rows + block.length, axis=0)
                data[rows:] = block.data
                stamps[rows:] = block.timestamps
                stored += block.length
                file.flush()

    writer = threading.Thread(target=write)
    writer.start()
    with open_board(URL) as board:
        board.subscribe_signals(blocks.put, on_error=errors.append)
        for channel in range(CHANNELS):
            board.set_mode(f"ai{channel}", LineModeFlags.IS_INPUT)
        time.sleep(seconds)
    blocks.put(None)
    writer.join()
    return stored, gaps, f"error: {errors[0]}" if errors else ""


def driver_to_hwlink_record(seconds: float, folder: Path) -> tuple[int, int, str]:
    lines = ",".join(f"ai{channel}" for channel in range(CHANNELS))
    result = CliRunner().invoke(cli, ["record", "-b", URL, "--lines", lines, "--duration", f"{seconds}s",
                                      "-o", str(folder / "bench"), "-q"])
    note = "" if result.exit_code == 0 else result.output.strip().splitlines()[-1]
    signals = read_signal_file(folder / "bench" / "signals" / "signals.h5")
    gaps = len(signals.get("sample_gaps", ()))
    return int(signals["data"].shape[0]), gaps, note


def main(quick: bool) -> None:
    seconds = 2.0 if quick else 10.0
    base = Path(tempfile.mkdtemp(prefix="hwlink-bench-nidaq-"))
    try:
        with SimulatedNidaq([_device()]):
            runs = [
                ("nidaqmx alone (simulator + nidaqmx, no hwlink)", lambda: nidaqmx_alone(seconds)),
                ("nidaq:// -> plain h5py append loop", lambda: driver_to_plain_h5py(seconds, base)),
                ("nidaq:// -> `hwlink record` (EDL, HDF5 signal writer)",
                 lambda: driver_to_hwlink_record(seconds, base)),
            ]
            results = [(name, *_measure(work)) for name, work in runs]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    megabytes = CHANNELS * RATE_HZ * 4 / 1e6
    print(f"{CHANNELS} ch x {RATE_HZ / 1000:.0f} kHz float32 ({megabytes:.1f} MB/s of samples), blocks of "
          f"{BLOCK} samples, {seconds:.0f} s per run")
    print()
    print("| path | samples/s per channel stored | of nominal | CPU share of one core | gaps | note |")
    print("|---|---|---|---|---|---|")
    floor = results[0][2]
    for name, elapsed, cpu, stored, gaps, note in results:
        rate = stored / seconds  # each path acquires for `seconds` after its set-up
        print(f"| {name} | {rate:,.0f} | {rate / RATE_HZ:.2f} | {cpu * 100:.1f} % ({cpu / floor:.1f}x floor) | "
              f"{gaps} | {note or '-'} |")
