"""Platform seam: the native paths (Linux) vs the portable fallbacks Windows and macOS take, side by side.

Each measurement runs in a child process per mode, because the clock source is chosen once per process:
``native`` (HWLINK_PORTABLE unset: SCHED_FIFO + 1 µs timer slack where granted, pipe waker, AF_UNIX worker
socket with MSG_DONTWAIT sends, monotonic clock) and ``portable`` (HWLINK_PORTABLE=1: OS default priority,
loopback-socket waker with the spin window widened by the measured wait granularity, loopback TCP worker channel
whose every engine-side send goes through the flusher thread, perf_counter clock), and ``portable, native
priority`` (every fallback but the priority seam: where the OS grants priority, as Windows does for
time-critical threads, this separates the fallbacks' own cost from the priority's). Runs alternate between the
modes, twice, and their samples are pooled per mode.

- pulse width error: 1 ms pulses on the simulated board (the scheduler's wait + spin), floor: a thread that
  writes, spins on the clock for the width and writes again (no waiting at all);
- Firmata input -> callback: the software Firmata board in its own process on a pty drives an input; latency from
  its port report to the driver's subscriber callback; floor: one byte through an os.pipe from another process
  to a blocked reader thread;
- runtime dispatch: a LineReading encoded and sent from a driver-like thread through the engine's channel to a
  worker and echoed back (round trip), and items/s engine -> worker; floor: the same ping-pong over two os.pipes.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

import numpy as np

MODES = {"native": "0", "portable": "1", "portable, native priority": "clock,wakeup,ipc,orphan,files,signals"}
ROUNDS = 2


# ----- measurements, run inside a child process -------------------------------------------------------------------
def measure_pulses(count: int) -> dict[str, list[float]]:
    from hwlink.drivers import open_board
    from hwlink.lines import LineModeFlags
    from hwlink.platform import clock_ns

    width = 1_000
    with open_board("sim://?latency=none") as board:
        board.set_mode(13, LineModeFlags.IS_OUTPUT)
        errors: list[float] = []
        for _ in range(count // 50):
            train = board.pulse(13, width, count=50, period_usec=3_000)
            train.wait(30)
            errors += np.abs(train.width_errors_usec).tolist()
        floor: list[float] = []
        for _ in range(count):
            rise = clock_ns()
            board.write_digital(13, 1)
            while clock_ns() - rise < width * 1000:
                pass
            fall = clock_ns()
            board.write_digital(13, 0)
            floor.append(abs((fall - rise) / 1000 - width))
            time.sleep(0.002)
    return {"errors": errors, "floor": floor}


def measure_firmata(events: int) -> dict[str, list[float]]:
    from hwlink.drivers import open_board
    from hwlink.lines import LineModeFlags
    from hwlink.platform import clock_ns
    from hwlink.testing.firmata_board import BoardProcess

    latencies: list[float] = []
    arrivals: queue.Queue[tuple[int, int]] = queue.Queue()
    with BoardProcess("pty") as soft, open_board(soft.url) as board:
        board.subscribe(lambda reading: arrivals.put((clock_ns(), reading.value)), lines=[2])
        board.set_mode(2, LineModeFlags.IS_INPUT)
        time.sleep(0.2)
        level = 0
        for _ in range(events):
            while not arrivals.empty():
                arrivals.get_nowait()
            level ^= 1
            sent = int(soft.call("set_digital_input", 2, level))  # type: ignore[arg-type]
            try:
                while True:
                    arrived, value = arrivals.get(timeout=1)
                    if value == level:
                        latencies.append((arrived - sent) / 1000)
                        break
            except queue.Empty:
                pass
            time.sleep(0.002)
    return {"latency": latencies, "lost": [float(events - len(latencies))]}


WORKER = """
import sys
from hwlink.platform import connect_to_engine
from hwlink.runtime.ipc import DATA, Channel, data_message
channel = Channel(connect_to_engine(sys.argv[-1]), blocking_send=True)
count = 0
while True:
    for message in channel.receive(None):
        if message.kind != DATA:
            sys.exit(0)
        if message.port == 0:
            channel.send(data_message(0, message.data_type, message.payload))
        else:
            count += 1
            if message.port == 2:
                channel.send(data_message(2, 0, str(count).encode()))
"""


def measure_dispatch(round_trips: int, flood: int) -> dict[str, list[float]]:
    from hwlink.lines import LineReading
    from hwlink.platform import clock_ns, start_worker
    from hwlink.runtime.ipc import Channel, control_message, data_message
    from hwlink.runtime.datatypes import DataType, encode

    process, sock = start_worker(["-c", WORKER], env=dict(os.environ), cwd=os.getcwd())
    channel = Channel(sock, blocking_send=False)
    replies: queue.Queue[int] = queue.Queue()

    def reader() -> None:
        try:
            while True:
                for message in channel.receive(None):
                    replies.put(clock_ns() if message.port == 0 else int(message.payload))
        except (EOFError, OSError):
            pass

    threading.Thread(target=reader, daemon=True).start()
    payload_type = int(DataType.LineReading)
    rtts: list[float] = []

    def driver_thread() -> None:  # items leave from a driver-like thread, as in the engine
        for index in range(round_trips + 20):
            started = clock_ns()
            channel.send(data_message(0, payload_type, encode(DataType.LineReading, LineReading(2, 1, index, None))))
            arrived = replies.get(timeout=30)
            if index >= 20:
                rtts.append((arrived - started) / 1000)
            time.sleep(0.0005)
        message = data_message(1, payload_type, encode(DataType.LineReading, LineReading(2, 1, 0, None)))
        started = time.perf_counter()
        for _ in range(flood - 1):
            channel.send(message)
        channel.send(data_message(2, payload_type, message[8:]))
        count = replies.get(timeout=120)
        rate.append(count / (time.perf_counter() - started))

    rate: list[float] = []
    thread = threading.Thread(target=driver_thread, name="hwlink-driver")
    thread.start()
    thread.join()
    channel.send(control_message("quit"))
    process.wait(timeout=30)
    channel.close()
    return {"rtt": rtts, "rate": rate}


def pipe_floor(round_trips: int) -> dict[str, list[float]]:
    """Ping-pong over two os.pipes with a child process (one-way: half of it)."""
    code = ("import os, sys\nr, w = int(sys.argv[1]), int(sys.argv[2])\n"
            "while True:\n    data = os.read(r, 64)\n    if not data or data == b'q': break\n    os.write(w, data)\n")
    to_child, from_parent = os.pipe()
    to_parent, from_child = os.pipe()
    child = subprocess.Popen([sys.executable, "-c", code, str(to_child), str(from_child)],
                             pass_fds=(to_child, from_child))
    rtts = []
    for index in range(round_trips + 20):
        started = time.perf_counter_ns()
        os.write(from_parent, b"x" * 16)
        os.read(to_parent, 64)
        if index >= 20:
            rtts.append((time.perf_counter_ns() - started) / 1000)
        time.sleep(0.0005)
    os.write(from_parent, b"q")
    child.wait()
    for fd in (to_child, from_parent, to_parent, from_child):
        os.close(fd)
    return {"rtt": rtts}


def child_main(what: str, size: int) -> None:
    from hwlink import platform

    result = {"pulses": lambda: measure_pulses(size), "firmata": lambda: measure_firmata(size),
              "dispatch": lambda: measure_dispatch(size, size * 100)}[what]()
    result["platform"] = platform.describe()  # type: ignore[assignment]
    print(json.dumps(result))


# ----- the parent: alternate modes, pool, print ---------------------------------------------------------------------
def run_child(mode: str, what: str, size: int) -> dict:
    env = dict(os.environ, HWLINK_PORTABLE=MODES[mode])
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_platform", "--child", what, str(size)], env=env,
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{what} ({mode}) failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def pooled(what: str, size: int) -> dict[str, dict[str, list[float]]]:
    pools: dict[str, dict[str, list[float]]] = {mode: {} for mode in MODES}
    for _ in range(ROUNDS):
        for mode in MODES:
            result = run_child(mode, what, size)
            pools[mode]["platform"] = result.pop("platform")
            for key, values in result.items():
                pools[mode].setdefault(key, []).extend(values)
    return pools


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def row(label: str, values: list[float], unit: str = "µs") -> str:
    return (f"| {label} | {len(values)} | {pct(values, 50):.0f} | {pct(values, 90):.0f} | {pct(values, 99):.0f} | "
            f"{max(values):.0f} |" if values else f"| {label} | 0 | | | | |")


def main(quick: bool) -> None:
    size = 100 if quick else 400
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min, "
          f"{os.cpu_count()} cores)\n")
    pulses = pooled("pulses", size)
    firmata = pooled("firmata", size // 2)
    dispatch = pooled("dispatch", size)
    floor_pipe = pipe_floor(size * ROUNDS)
    print("| measurement | samples | p50 (µs) | p90 (µs) | p99 (µs) | max (µs) |")
    print("|---|---|---|---|---|---|")
    for mode in MODES:
        print(row(f"1 ms pulse width error, {mode}", pulses[mode]["errors"]))
    print(row("floor: write, spin on the clock for the width, write (main thread, normal priority)",
              pulses["native"]["floor"]))
    for mode in MODES:
        print(row(f"Firmata input -> callback, {mode}", firmata[mode]["latency"]))
    print(row("floor: one byte through an os.pipe round trip with a child process, halved",
              [value / 2 for value in floor_pipe["rtt"]]))
    for mode in MODES:
        print(row(f"runtime dispatch round trip (driver thread -> worker -> back), {mode}", dispatch[mode]["rtt"]))
    print(row("floor: os.pipe round trip with a child process", floor_pipe["rtt"]))
    print()
    for mode in MODES:
        rates = dispatch[mode]["rate"]
        lost = sum(firmata[mode]["lost"])
        print(f"- {mode}: engine -> worker throughput {np.median(rates):,.0f} items/s (median of {len(rates)} runs); "
              f"Firmata edges lost: {lost:.0f}")
    for mode in MODES:
        report: dict = pulses[mode]["platform"]  # type: ignore[assignment]
        channel = dispatch[mode]["platform"]["worker channel"]  # type: ignore[call-overload]
        threads = "; ".join(f"{key[7:]}: {value}" for key, value in report.items() if key.startswith("thread "))
        print(f"- {mode}: clock {report['clock']}, wait granularity {report['wait granularity']}, waker "
              f"{report['scheduler wake-up']}, worker channel {channel}; {threads}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(sys.argv[2], int(sys.argv[3]))
    else:
        main(quick="--quick" in sys.argv)
