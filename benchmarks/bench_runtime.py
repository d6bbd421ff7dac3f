"""Experiment runtime: the script <-> driver message path, a closed loop on the software Firmata board, and
driver timestamps while a script spins on the CPU.

Baselines in the same run: the transport alone (hwlink's framed socket channel vs multiprocessing.Pipe with
pickle vs multiprocessing.Queue), the closed loop done in-process on the driver without the runtime, and the
spinning code run as a thread inside the engine process (what an in-process script host would do).
"""

from __future__ import annotations

import io
import multiprocessing
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hwlink.lines import LineModeFlags, LineReading
from hwlink.runtime import Engine
from benchmarks import _harness as harness
from hwlink.runtime.ipc import HEADER, Channel, data_message
from hwlink.runtime.datatypes import DataType, decode, encode

GOAL_P99_MS = 0.5
GOAL_ITEMS_PER_SEC = 100_000
GOAL_ADDED_P99_MS = 1.0


def stats_ms(values_usec: np.ndarray) -> tuple[float, float, float]:
    values = np.asarray(values_usec, dtype=np.float64) / 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99)), float(values.max())


def run_engine(folder: Path, name: str, text: str, during: Callable[[Engine], None] | None = None,
               duration_usec: int | None = None) -> Engine:
    """Run an experiment until ``during`` returns (or for ``duration_usec``); returns the engine to inspect."""
    experiment = folder / f"{name}.toml"
    experiment.write_text(text)
    engine = Engine(experiment, folder / name, duration_usec=duration_usec, out=io.StringIO())

    def act(engine: Engine) -> None:
        try:
            if during is not None:
                during(engine)
        finally:
            if duration_usec is None:
                engine.request_stop("benchmark")

    if during is not None:
        engine.on_started = lambda e: threading.Thread(target=act, args=(e,), daemon=True).start()
    result = engine.run()
    if result.failure:
        raise RuntimeError(f"benchmark run {name} failed: {result.failure}")
    return engine


def script_log(engine: Engine, module: str) -> str:
    return (Path(engine.output) / "hwlink-run" / f"{module}.log").read_text()


# ----- transport alone: ping-pong and one-way throughput between two processes --------------------------------

def _echo_hwlink(fd: int, count: int) -> None:
    channel = Channel(socket.socket(fileno=fd), blocking_send=True)
    seen = 0
    while seen < count:
        for message in channel.receive(None):
            decode(message.data_type, message.payload)
            seen += 1
            if message.port == 1:  # ping: answer at once
                channel.send(data_message(1, message.data_type, message.payload))
    channel.send_control("done")


def _echo_pipe_bytes(connection: Any, count: int) -> None:
    for _ in range(count):
        frame = connection.recv_bytes()
        _, _, data_type, port = HEADER.unpack_from(frame)
        decode(data_type, memoryview(frame)[HEADER.size:])
        if port == 1:
            connection.send_bytes(frame)
    connection.send_bytes(b"done")


def _echo_pipe_pickle(connection: Any, count: int) -> None:
    for _ in range(count):
        item = connection.recv()
        if item[0] == 1:
            connection.send(item)
    connection.send(("done",))


def _echo_queue(inbox: Any, outbox: Any, count: int) -> None:
    for _ in range(count):
        frame = inbox.get()
        _, _, data_type, port = HEADER.unpack_from(frame)
        decode(data_type, memoryview(frame)[HEADER.size:])
        if port == 1:
            outbox.put(frame)
    outbox.put(b"done")


def transport_rows(pings: int, flood: int) -> list[tuple[str, float, float, float]]:
    """(name, ping-pong p50 ms, p99 ms, one-way items/s) for each transport.

    Same work for every peer (issue 19): each item is the same 30-byte frame (hwlink's 8-byte header + the
    LineReading encoding), encoded per item by the sender, sent with one call per item (no batching), and
    decoded into a LineReading per item by the receiver. The pickle row is how Pipe users usually send objects.
    """
    context = multiprocessing.get_context("fork")  # the child inherits the socket by its descriptor
    reading = LineReading(2, 1, 123456, 123000)

    def frame(port: int) -> bytes:
        return data_message(port, DataType.LineReading, encode(DataType.LineReading, reading))

    rows = []

    # hwlink channel, one blocking send per item (the worker side's policy; no backlog batching)
    mine, theirs = socket.socketpair()
    process = context.Process(target=_echo_hwlink, args=(theirs.fileno(), pings + flood))
    process.start()
    theirs.close()
    channel = Channel(mine, blocking_send=True)
    rtts = []
    for _ in range(pings):
        start = time.perf_counter_ns()
        channel.send(frame(1))
        for message in channel.receive(None):
            decode(message.data_type, message.payload)
        rtts.append((time.perf_counter_ns() - start) / 1000)
    start = time.perf_counter()
    for _ in range(flood):
        channel.send(frame(0))
    while not any(m.kind == 2 for m in channel.receive(None)):
        pass
    rate = flood / (time.perf_counter() - start)
    process.join()
    channel.close()
    rows.append(("hwlink socket channel", *stats_ms(np.array(rtts[pings // 10:]))[:2], rate))

    # multiprocessing.Pipe, the same frames as bytes
    mine_pipe, theirs_pipe = context.Pipe()
    process = context.Process(target=_echo_pipe_bytes, args=(theirs_pipe, pings + flood))
    process.start()
    rtts = []
    for _ in range(pings):
        start = time.perf_counter_ns()
        mine_pipe.send_bytes(frame(1))
        answer = mine_pipe.recv_bytes()
        decode(DataType.LineReading, memoryview(answer)[HEADER.size:])
        rtts.append((time.perf_counter_ns() - start) / 1000)
    start = time.perf_counter()
    for _ in range(flood):
        mine_pipe.send_bytes(frame(0))
    mine_pipe.recv_bytes()
    rate = flood / (time.perf_counter() - start)
    process.join()
    rows.append(("multiprocessing.Pipe, same frames (send_bytes)", *stats_ms(np.array(rtts[pings // 10:]))[:2],
                 rate))

    # multiprocessing.Pipe with pickled readings (its usual use)
    mine_pipe, theirs_pipe = context.Pipe()
    process = context.Process(target=_echo_pipe_pickle, args=(theirs_pipe, pings + flood))
    process.start()
    rtts = []
    for _ in range(pings):
        start = time.perf_counter_ns()
        mine_pipe.send((1, reading))
        mine_pipe.recv()
        rtts.append((time.perf_counter_ns() - start) / 1000)
    start = time.perf_counter()
    for _ in range(flood):
        mine_pipe.send((0, reading))
    mine_pipe.recv()
    rate = flood / (time.perf_counter() - start)
    process.join()
    rows.append(("multiprocessing.Pipe, pickled LineReading objects", *stats_ms(np.array(rtts[pings // 10:]))[:2],
                 rate))

    # multiprocessing.Queue, the same frames
    inbox, outbox = context.Queue(), context.Queue()
    process = context.Process(target=_echo_queue, args=(inbox, outbox, pings + flood))
    process.start()
    rtts = []
    for _ in range(pings):
        start = time.perf_counter_ns()
        inbox.put(frame(1))
        answer = outbox.get()
        decode(DataType.LineReading, memoryview(answer)[HEADER.size:])
        rtts.append((time.perf_counter_ns() - start) / 1000)
    start = time.perf_counter()
    for _ in range(flood):
        inbox.put(frame(0))
    outbox.get()
    rate = flood / (time.perf_counter() - start)
    process.join()
    rows.append(("multiprocessing.Queue, same frames", *stats_ms(np.array(rtts[pings // 10:]))[:2], rate))

    # floors: the kernel's
    round_trips = np.array(harness.pipe_round_trip(pings, 30)) * 1e6
    rows.append(("floor: `os.pipe` pair, 30-byte write/read, no encoding", *stats_ms(round_trips)[:2],
                 harness.pipe_one_way_items(flood, 30)))
    return rows


# ----- the runtime's script <-> driver path ----------------------------------------------------------------------

LATENCY_SCRIPT = '''
import numpy as np
import syntalos_mlink as syl

readings = syl.get_input_port("readings")
commands = syl.get_output_port("commands")
led = syl.HwOutputLine(commands, 13)
inbound = []
state = {"level": 0}


def prepare():
    readings.on_data = on_reading


def start():
    syl.HwInputLine(commands, 2).send_mode()
    led.send_mode()


def on_reading(reading):
    if reading.line_id == 2:
        inbound.append(syl.time_since_start_usec() - reading.time_usec)
        state["level"] ^= 1
        led.set_value(state["level"])


def stop():
    syl.println("INBOUND " + " ".join(map(str, inbound[1:])))
'''


def loop_experiment(url: str, script: Path | str, board_settings: str = "", name: str = "loop") -> str:
    """An experiment whose script module reads the board's readings and sends commands back to it."""
    return f"""
[modules.board]
kind = "board"
url = "{url}"
{board_settings}

[modules.{name}]
kind = "script"
script = "{script}"
inputs = {{ readings = "LineReading" }}
outputs = {{ commands = "LineCommand" }}

[[connect]]
from = "board.readings"
to = "{name}.readings"

[[connect]]
from = "{name}.commands"
to = "board.commands"
"""


def latency_rows(folder: Path, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Driver -> script (one way) and driver -> script -> driver (round trip) on sim:// with no transport delay."""
    text = loop_experiment("sim://?d2=square:100Hz&loopback=13:7&latency=none", folder / "latency.py",
                           'inputs = ["7"]\ntimestamps = "arrival"')
    (folder / "latency.py").write_text(LATENCY_SCRIPT)
    received: list[LineReading] = []

    def collect(engine: Engine) -> None:
        board = engine.modules["board"].board
        subscription = board.subscribe(received.append, lines=[2, 7])
        time.sleep(seconds)
        subscription.cancel()

    engine = run_engine(folder, "latency", text, collect)
    inbound = np.array([int(v) for v in script_log(engine, "loop").split("INBOUND", 1)[1].split()], dtype=np.int64)
    edges_2 = [r.time_usec for r in received if r.line_id == 2]
    edges_7 = [r.time_usec for r in received if r.line_id == 7]
    round_trips = []
    for t in edges_2:
        later = [u for u in edges_7 if u >= t]
        if later and later[0] - t < 50_000:
            round_trips.append(later[0] - t)
    return inbound, np.array(round_trips[1:], dtype=np.int64)


THROUGHPUT_SCRIPT = '''
import syntalos_mlink as syl

readings = syl.get_input_port("readings")
commands = syl.get_output_port("commands")
count = {"n": 0, "first": 0, "last": 0}
N, MODE = open(__file__.replace(".py", ".n")).read().split()
N = int(N)


def on_reading(reading):
    if count["n"] == 0:
        count["first"] = syl.time_since_start_usec()
    count["n"] += 1
    count["last"] = syl.time_since_start_usec()


def prepare():
    readings.on_data = on_reading


def run():
    syl.wait(300)
    if MODE == "out":
        command = syl.new_line_command(syl.LineCommandKind.WRITE_DIGITAL, 13, 1)
        started = syl.time_since_start_usec()
        for _ in range(N):
            commands.submit(command)
        syl.println(f"SENT {started} {syl.time_since_start_usec()}")
    while syl.is_running():
        syl.await_data()


def stop():
    syl.println(f"RECEIVED {count['n']} {count['first']} {count['last']}")
'''


def throughput(folder: Path, items: int, direction: str, execute_commands: bool = True) -> float:
    """Items/s one way, the other way idle (issue 19: inbound was measured while the script flooded outbound).

    ``in``: readings emitted on the board module's port as a driver thread does, counted in the script's
    ``on_data`` (first to last). ``out``: LineCommands submitted in a loop by the script, counted where they reach
    the board module's port (first to last), executed on sim:// or only counted.
    """
    (folder / "throughput.py").write_text(THROUGHPUT_SCRIPT)
    (folder / "throughput.n").write_text(f"{items} {direction}")
    text = loop_experiment("sim://?latency=none", folder / "throughput.py", 'outputs = ["13"]', name="flood")
    arrivals: list[int] = []

    def flood(engine: Engine) -> None:
        board_module = engine.modules["board"]
        port = board_module.inputs["commands"]
        execute = port.handler

        def counting(port_: Any, command: Any) -> None:
            if execute_commands:
                execute(port_, command)
            arrivals.append(time.perf_counter_ns())

        port.handler = counting
        if direction == "in":
            time.sleep(0.5)  # the script's run() is waiting; nothing flows the other way
            reading = LineReading(2, 1, 0, None)
            emit = board_module.readings.emit
            for index in range(items):
                reading.time_usec = index
                emit(reading)
        deadline = time.monotonic() + 60
        while direction == "out" and len(arrivals) < items and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)

    runs = len(list(folder.glob(f"throughput-{direction}-{execute_commands}-*.toml")))
    engine = run_engine(folder, f"throughput-{direction}-{execute_commands}-{runs}", text, flood)
    if direction == "in":
        log = script_log(engine, "flood")
        received, first, last = (int(v) for v in log.split("RECEIVED", 1)[1].split()[:3])
        if received < items:
            raise RuntimeError(f"lost items: {received}/{items} in")
        return received / max((last - first) / 1e6, 1e-9)
    if len(arrivals) < items:
        raise RuntimeError(f"lost items: {len(arrivals)}/{items} out")
    return len(arrivals) / max((arrivals[-1] - arrivals[0]) / 1e9, 1e-9)


# ----- closed loop on the software Firmata board -------------------------------------------------------------

def closed_loop(folder: Path, edges: int) -> tuple[np.ndarray, np.ndarray]:
    """Input edge -> output pulse latency through the runtime, and through the driver in-process (baseline)."""
    from hwlink.drivers import open_board
    from hwlink.testing.firmata_board import SoftFirmataBoard

    script = Path(__file__).resolve().parents[1] / "examples" / "scripts" / "pulse_on_rise.py"
    results = []
    for via_runtime in (True, False):
        with SoftFirmataBoard() as firmata:
            url = firmata.start_pty()
            latencies: list[int] = []

            def drive() -> None:
                assert firmata.wait_for(lambda: firmata.pin_mode(13) == 1 and firmata.pin_mode(2) == 0, 10)
                time.sleep(0.2)
                for _ in range(edges):
                    firmata.clear_events()
                    sent = firmata.set_digital_input(2, 1)
                    if firmata.wait_for(lambda: len(firmata.output_events(13)) >= 1, 1):
                        latencies.append((firmata.output_events(13)[0][2] - sent) // 1000)
                    time.sleep(0.012)
                    firmata.set_digital_input(2, 0)
                    time.sleep(0.008)

            if via_runtime:
                text = loop_experiment(url, script)
                run_engine(folder, "firmata", text, lambda engine: drive())
            else:
                with open_board(url) as board:
                    board.set_mode(2, LineModeFlags.IS_INPUT)
                    board.set_mode(13, LineModeFlags.IS_OUTPUT)
                    board.subscribe(lambda r: board.pulse(13, 5000) if r.value else None, lines=[2])
                    drive()
            results.append(np.array(latencies, dtype=np.int64))
    return results[0], results[1]


# ----- driver timestamps while a script spins --------------------------------------------------------------------

SPIN_SCRIPT = '''
import syntalos_mlink as syl


def run():
    while True:
        pass
'''


def timestamp_error(folder: Path, seconds: float, spin: str) -> np.ndarray:
    """Arrival stamp minus the simulated edge time (µs, minus the best case) of 200 edges/s on sim://."""
    (folder / "spin.py").write_text(SPIN_SCRIPT)
    modules = ""
    if spin.startswith("script"):
        modules = f'\n[modules.spin]\nkind = "script"\nscript = "{folder / "spin.py"}"\n'
        if spin == "script-unguarded":
            modules += "cpu_guard = false\n"
    text = f"""
[modules.board]
kind = "board"
url = "sim://?d2=square:100Hz&latency=none"
inputs = ["2"]
timestamps = "arrival"
{modules}"""
    received: list[LineReading] = []
    stop = threading.Event()

    def spin_here() -> None:
        while not stop.is_set():
            pass

    def collect(engine: Engine) -> None:
        spinner = threading.Thread(target=spin_here, daemon=True) if spin == "thread" else None
        if spinner is not None:
            spinner.start()
        subscription = engine.modules["board"].board.subscribe(received.append, lines=[2])
        time.sleep(seconds)
        subscription.cancel()
        stop.set()

    run_engine(folder, f"spin-{spin}", text, collect)
    error = np.array([r.time_usec - r.device_time_usec for r in received[1:]], dtype=np.int64)
    return error - error.min()


def main(quick: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hwlink-bench-runtime-"))
    pings, flood = (300, 20_000) if quick else (2000, 200_000)
    rounds = 1 if quick else 3
    per_round = [transport_rows(pings, flood) for _ in range(rounds)]
    print(f"### Transport alone (two processes, LineReading items; {rounds} rounds, every transport once per "
          f"round; {harness.load()})\n")
    print("Same bytes per item for every peer (a 30-byte frame), one send call per item, every item decoded by the "
          "receiver. Ping-pong: first tenth dropped as warm-up. Best round (min p50 / min p99 / max rate), median "
          "round in brackets.\n")
    print("| transport | ping-pong p50 (ms) | p99 (ms) | one-way items/s | items/s vs Pipe (same frames) | "
          "items/s of the floor |")
    print("|---|---|---|---|---|---|")
    names = [row[0] for row in per_round[0]]
    best = {}
    for index, name in enumerate(names):
        p50s = [rows[index][1] for rows in per_round]
        p99s = [rows[index][2] for rows in per_round]
        rates = [rows[index][3] for rows in per_round]
        best[name] = (min(p50s), min(p99s), max(rates), float(np.median(rates)))
    pipe_rate = best[names[1]][2]
    floor_rate = best[names[-1]][2]
    for index, name in enumerate(names):
        row = best[name]
        p50s = [rows[index][1] for rows in per_round]
        p99s = [rows[index][2] for rows in per_round]
        print(f"| {name} | {row[0]:.3f} ({np.median(p50s):.3f}) | {row[1]:.3f} ({np.median(p99s):.3f}) | "
              f"{row[2]:,.0f} ({row[3]:,.0f}) | {row[2] / pipe_rate:.2f}x | {row[2] / floor_rate:.2f}x |")

    seconds = 3.0 if quick else 10.0
    inbound, round_trip = latency_rows(folder, seconds)
    floor_rtt = np.array(harness.pipe_round_trip(pings, 30)) * 1e6
    print(f"\n### Script <-> driver message path through the runtime (sim://, no transport delay; {harness.load()})\n")
    print("| path | n | p50 (ms) | p99 (ms) | max (ms) | goal |")
    print("|---|---|---|---|---|---|")
    for name, values, limit in (("driver -> script on_data", inbound, GOAL_P99_MS),
                                ("driver -> script -> driver (round trip)", round_trip, 2 * GOAL_P99_MS)):
        p50, p99, worst = stats_ms(values)
        goal = f"p99 <= {limit} ms: {'met' if p99 <= limit else 'missed'}"
        if name.startswith("driver -> script on_data"):
            goal += f"; p50 <= 0.05 ms: {'met' if p50 <= 0.05 else 'missed'}; p99 <= 0.3 ms (quiet): " \
                    f"{'met' if p99 <= 0.3 else 'missed'}"
        print(f"| {name} | {len(values)} | {p50:.3f} | {p99:.3f} | {worst:.3f} | {goal} |")
    p50, p99, worst = stats_ms(floor_rtt)
    print(f"| floor: `os.pipe` round trip between two processes (30 bytes, back to back) | {len(floor_rtt)} | "
          f"{p50:.3f} | {p99:.3f} | {worst:.3f} | |")
    wakeup = np.array(harness.pipe_wakeup_latency(int(seconds * 100), 0.01)) * 1e6
    p50, p99, worst = stats_ms(wakeup)
    print(f"| floor: `os.pipe` one way to a process blocked in `read`, 100 messages/s like the edges | {len(wakeup)} | "
          f"{p50:.3f} | {p99:.3f} | {worst:.3f} | |")

    items = 50_000 if quick else 300_000
    rates = {label: [] for label in ("in", "out", "port")}
    for _ in range(1 if quick else 2):  # alternated
        rates["in"].append(throughput(folder, items, "in"))
        rates["out"].append(throughput(folder, items, "out"))
        rates["port"].append(throughput(folder, items, "out", execute_commands=False))
    floor_items = harness.pipe_one_way_items(items, 30)
    print(f"\n### Small-item throughput through the runtime ({items:,} items, one direction at a time; best of "
          f"{len(rates['in'])} alternated runs, worst in brackets; {harness.load()})\n")
    print(f"| direction | items/s | of the floor | goal >= {GOAL_ITEMS_PER_SEC:,}/s | goal >= 1,000,000/s |")
    print("|---|---|---|---|---|")
    for name, key in (("driver -> script on_data (LineReading)", "in"),
                      ("script submit -> board module's port (LineCommand)", "port"),
                      ("script submit -> executed on sim:// (LineCommand)", "out")):
        rate = max(rates[key])
        print(f"| {name} | {rate:,.0f} ({min(rates[key]):,.0f}) | {rate / floor_items:.2f}x | "
              f"{'met' if rate >= GOAL_ITEMS_PER_SEC else 'missed'} | {'met' if rate >= 1e6 else 'missed'} |")
    print(f"| floor: one `os.write` of 30 bytes per item into an `os.pipe` another process drains | "
          f"{floor_items:,.0f} | 1.00x | | |")

    edges = 40 if quick else 200
    runtime_loop, direct_loop = closed_loop(folder, edges)
    print("\n### Closed loop on the software Firmata board: input edge -> script -> output pulse\n")
    print("| path | n | p50 (ms) | p99 (ms) | max (ms) |")
    print("|---|---|---|---|---|")
    for name, values in (("hwlink run (script worker)", runtime_loop), ("driver callback in-process (baseline)",
                                                                      direct_loop)):
        print(f"| {name} | {len(values)} | " + " | ".join(f"{v:.3f}" for v in stats_ms(values)) + " |")
    print(f"\nruntime / in-process p50: {np.median(runtime_loop) / np.median(direct_loop):.2f}x\n")

    seconds = 3.0 if quick else 15.0
    print("### Driver timestamp error while code spins on the CPU (sim:// 200 edges/s, over the best case)\n")
    print(f"| spinning code | n | p50 (ms) | p99 (ms) | max (ms) | goal p99 added <= {GOAL_ADDED_P99_MS} ms |")
    print("|---|---|---|---|---|---|")
    quiet = timestamp_error(folder, seconds, "none")
    for label, spin in (("none", "none"), ("script worker spinning (hwlink)", "script"),
                        ("script worker spinning, cpu_guard = false", "script-unguarded"),
                        ("thread in the engine process (in-process host)", "thread")):
        values = quiet if spin == "none" else timestamp_error(folder, seconds, spin)
        p50, p99, worst = stats_ms(values)
        added = p99 - stats_ms(quiet)[1]
        verdict = "" if spin == "none" else ("met" if added <= GOAL_ADDED_P99_MS else "missed") + f" ({added:+.3f})"
        print(f"| {label} | {len(values)} | {p50:.3f} | {p99:.3f} | {worst:.3f} | {verdict} |")


if __name__ == "__main__":
    main(quick=True)
