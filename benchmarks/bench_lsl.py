"""Lab Streaming Layer: end-to-end latency in both directions against pylsl alone (the floor), and the clock
agreement of two hwlink processes through LSL.

* hwlink outlet -> pylsl inlet: ``LineOutlet.push_reading`` (what ``record --lsl`` and ``lsl-outlet`` do) against a
  bare ``pylsl.StreamOutlet.push_sample`` of the same sample (one double channel).
* pylsl outlet -> hwlink: a ``lsl://`` board delivering LineReadings (pull, clock mapping, delivery) against a bare
  ``pylsl.StreamInlet.pull_sample`` loop.
Latency: receive time minus the sample's LSL timestamp (taken right before the push), both on this machine's
monotonic clock. Samples at 500 Hz, peers alternated, three rounds each. For hwlink's reading direction also the
error of the mapped time (``time_usec`` minus the true push time): what a recording of the stream would store.
* Two processes, one clock: ``hwlink record --lsl`` of a ``sim://`` board (250 ppm device clock, 300 µs constant
  link latency) recorded by a second ``hwlink record`` through ``lsl://``; errors against the board's true edge
  times, and what the LSL hop adds to the publisher's own times.

Everything runs with the loopback-only liblsl configuration (``LSLAPICFG``), so no packet leaves the machine.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

from hwlink.drivers.lsl import LOOPBACK_CONFIG

os.environ["LSLAPICFG"] = str(LOOPBACK_CONFIG)  # before pylsl loads liblsl

import numpy as np  # noqa: E402
import pylsl  # noqa: E402

from hwlink.clock import MasterClock  # noqa: E402
from hwlink.drivers import open_board  # noqa: E402
from hwlink.drivers.lsl import master_usec_of  # noqa: E402
from hwlink.drivers.lsl_outlet import LineOutlet  # noqa: E402
from hwlink.lines import LineModeFlags, LineReading  # noqa: E402

RATE_HZ = 500


def _pace(count: int, push) -> None:  # noqa: ANN001
    period = 1.0 / RATE_HZ
    due = time.monotonic()
    for index in range(count):
        due += period
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        push(index)


def _inlet(name: str) -> pylsl.StreamInlet:
    info = pylsl.resolve_bypred(f"name='{name}'", 1, 10)[0]
    inlet = pylsl.StreamInlet(info, processing_flags=0)
    inlet.open_stream(10)
    return inlet


def _receive(inlet: pylsl.StreamInlet, count: int, out: list[float]) -> None:
    while len(out) < count:
        sample, stamp = inlet.pull_sample(timeout=5)
        if stamp is None:
            return
        out.append((pylsl.local_clock() - stamp) * 1e6)


def outlet_to_inlet(peer: str, count: int) -> np.ndarray:
    name = f"bench-out-{uuid.uuid4().hex[:6]}"
    clock = MasterClock()
    if peer == "hwlink":
        outlet = LineOutlet(clock, name, {0: "D0"}, name)
        reading = LineReading(0, 0, 0)

        def push(index: int) -> None:
            reading.value = index & 1
            reading.time_usec = clock.now_usec()
            outlet.push_reading(reading)
    else:
        raw = pylsl.StreamOutlet(pylsl.StreamInfo(name, "hwlink-lines", 1, 0, pylsl.cf_double64, name))

        def push(index: int) -> None:
            raw.push_sample([float(index & 1)], pylsl.local_clock(), True)
    inlet = _inlet(name)
    (outlet if peer == "hwlink" else raw).wait_for_consumers(10)
    latencies: list[float] = []
    receiver = threading.Thread(target=_receive, args=(inlet, count, latencies))
    receiver.start()
    _pace(count, push)
    receiver.join(timeout=30)
    inlet.close_stream()
    return np.array(latencies)


def outlet_to_hwlink(peer: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    name = f"bench-in-{uuid.uuid4().hex[:6]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Markers", 1, 0, pylsl.cf_int32, name))
    latencies: list[float] = []
    errors: list[float] = []
    pushed: dict[int, float] = {}
    done = threading.Event()
    if peer == "hwlink":
        board = open_board(f"lsl://?name={name}")
        clock = board.clock

        def on_reading(reading: LineReading) -> None:
            now = clock.now_usec()
            stamp = reading.device_time_usec / 1e6
            latencies.append(now - master_usec_of(clock, stamp))
            errors.append(reading.time_usec - master_usec_of(clock, stamp))
            if len(latencies) >= count:
                done.set()

        board.subscribe(on_reading)
        board.set_mode(0, LineModeFlags.IS_INPUT)
        outlet.wait_for_consumers(10)
        _pace(count, lambda index: outlet.push_sample([index], pylsl.local_clock(), True))
        done.wait(timeout=30)
        board.close()
    else:
        inlet = _inlet(name)
        outlet.wait_for_consumers(10)
        receiver = threading.Thread(target=_receive, args=(inlet, count, latencies))
        receiver.start()
        _pace(count, lambda index: outlet.push_sample([index], pylsl.local_clock(), True))
        receiver.join(timeout=30)
        inlet.close_stream()
    del pushed
    return np.array(latencies), np.array(errors)


def _row(label: str, values: np.ndarray) -> str:
    p50, p99 = np.percentile(values, [50, 99])
    return f"| {label} | {values.size} | {p50:.0f} | {p99:.0f} | {values.max():.0f} |"


def main(quick: bool) -> None:
    count = 300 if quick else 2000
    rounds = 1 if quick else 3
    print(f"LSL latency, {RATE_HZ} Hz samples, {count} per run, {rounds} alternated rounds per peer (µs)\n")
    out: dict[str, list[np.ndarray]] = {"pylsl": [], "hwlink": []}
    into: dict[str, list[np.ndarray]] = {"pylsl": [], "hwlink": []}
    mapped: list[np.ndarray] = []
    for _ in range(rounds):
        for peer in ("pylsl", "hwlink"):
            out[peer].append(outlet_to_inlet(peer, count))
        for peer in ("pylsl", "hwlink"):
            latency, error = outlet_to_hwlink(peer, count)
            into[peer].append(latency)
            if peer == "hwlink":
                mapped.append(error)
    print("| direction / peer | samples | p50 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(_row("outlet -> pylsl inlet: pylsl outlet (floor)", np.concatenate(out["pylsl"])))
    print(_row("outlet -> pylsl inlet: hwlink LineOutlet", np.concatenate(out["hwlink"])))
    print(_row("pylsl outlet -> reader: pylsl inlet (floor)", np.concatenate(into["pylsl"])))
    print(_row("pylsl outlet -> reader: hwlink lsl:// reading", np.concatenate(into["hwlink"])))
    errors = np.concatenate(mapped)
    print(f"\nlsl:// mapped time minus true push time (µs): p50 {np.percentile(errors, 50):.0f}, "
          f"p99 {np.percentile(np.abs(errors), 99):.0f} (|error|), max |error| {np.abs(errors).max():.0f}")

    from hwlink.testing.lsl_two_hosts import LATENCY_USEC, run_two_hosts

    print("\nTwo hwlink processes through LSL (sim:// 250 ppm, 20 Hz edges), µs\n")
    print("| run | edges | recorder - true p50 | p99 | max | LSL hop (recorder - publisher) p50 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in range(1 if quick else 3):
        with tempfile.TemporaryDirectory() as folder:
            result = run_two_hosts(Path(folder), publish_s=6 if quick else 12, record_s=4 if quick else 10,
                                   tag=f"bench{run}")
        total, hop = result.recorder_error, result.chain_error
        print(f"| {run + 1} | {total.size} | {np.percentile(total, 50):.0f} | {np.percentile(total, 99):.0f} | "
              f"{total.max():.0f} | {np.percentile(hop, 50):.0f} | {np.percentile(np.abs(hop), 99):.0f} | "
              f"{np.abs(hop).max():.0f} |")
    print(f"\n(the publisher's board link has a constant {LATENCY_USEC} µs latency, which one-sided clock sync "
          "cannot see: recorder - true includes it)")


if __name__ == "__main__":
    main(quick=True)
