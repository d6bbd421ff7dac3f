"""Firmata: hwlink's driver vs pymata4 1.15, side by side in the same run.

Part 1, the software Firmata board (in a child process, on a pty, so it shares no GIL with either client):
input change -> callback latency (from the board writing the port report to entry into the client's callback),
write -> pin latency (from just before the client's write call to the board applying it), and the client
process's CPU use while a board is open and idle. Goals: p99 <= 1 ms, idle CPU <= 1 % of a core.

Part 2, genuine StandardFirmata 2.4 on simavr (paced to real time): pulse width error as seen on the emulated pin
(hwlink's scheduled pulses vs pymata4 with time.sleep, the way pymata4 users time pulses), and the jitter of the
analog reporting intervals as the timestamps handed to the user show them (10 ms sampling interval).
"""

from __future__ import annotations

import contextlib
import io
import queue
import resource
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from hwlink.drivers import ReadingStream, open_board
from hwlink.drivers.firmata import FirmataBoard
from hwlink.lines import LineModeFlags
from hwlink.testing.firmata_board import BoardProcess
from hwlink.testing.simavr_uno import SimavrUno

IN_PIN, OUT_PIN, PULSE_PIN = 2, 13, 12
EdgeCallback = Callable[[int, int], None]  # (monotonic ns at callback entry, level)


class Client(Protocol):
    name: str

    def watch_input(self, pin: int, on_edge: EdgeCallback) -> None: ...
    def prepare_output(self, pin: int) -> None: ...
    def write(self, pin: int, level: int) -> None: ...
    def close(self) -> None: ...


class HwlinkClient:
    name = "hwlink"

    def __init__(self, url: str) -> None:
        self.board = open_board(url)

    def watch_input(self, pin: int, on_edge: EdgeCallback) -> None:
        self.board.subscribe(lambda reading: on_edge(time.monotonic_ns(), reading.value), lines=[pin])
        self.board.set_mode(pin, LineModeFlags.IS_INPUT)

    def prepare_output(self, pin: int) -> None:
        self.board.set_mode(pin, LineModeFlags.IS_OUTPUT)

    def write(self, pin: int, level: int) -> None:
        self.board.write_digital(pin, level)

    def close(self) -> None:
        self.board.close()


class Pymata4Client:
    name = "pymata4"

    def __init__(self, path: str, pin_write: bool = True) -> None:
        from pymata4.pymata4 import Pymata4  # bench extra only

        with contextlib.redirect_stdout(io.StringIO()):  # pymata4 prints banners
            self.board = Pymata4(com_port=path, baud_rate=57600, arduino_wait=0)
        self._write = self.board.digital_pin_write if pin_write else self.board.digital_write

    def watch_input(self, pin: int, on_edge: EdgeCallback) -> None:
        self.board.set_pin_mode_digital_input(pin, callback=lambda data: on_edge(time.monotonic_ns(), data[2]))

    def prepare_output(self, pin: int) -> None:
        self.board.set_pin_mode_digital_output(pin)

    def write(self, pin: int, level: int) -> None:
        self._write(pin, level)

    def close(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            self.board.shutdown()
        time.sleep(0.05)  # its threads end on their next loop; they are not joined


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_software(client: Client, board: BoardProcess, events: int, idle_s: float) -> dict[str, np.ndarray | float]:
    arrivals: queue.Queue[tuple[int, int]] = queue.Queue()
    client.watch_input(IN_PIN, lambda ns, level: arrivals.put((ns, level)))
    time.sleep(0.1)
    while not arrivals.empty():
        arrivals.get_nowait()
    input_latency, lost, level = [], 0, int(board.call("_input_level", IN_PIN))  # type: ignore[arg-type]
    for _ in range(events):
        level ^= 1
        sent_ns = int(board.call("set_digital_input", IN_PIN, level))  # type: ignore[arg-type]
        deadline = time.monotonic() + 1
        try:
            while True:
                arrived_ns, value = arrivals.get(timeout=max(0.0, deadline - time.monotonic()))
                if value == level:
                    input_latency.append((arrived_ns - sent_ns) / 1000)
                    break
        except queue.Empty:
            lost += 1
        time.sleep(0.002)

    client.prepare_output(OUT_PIN)
    client.write(OUT_PIN, 0)
    time.sleep(0.05)
    board.call("clear_events")
    sent = []
    for index in range(events):
        sent.append(time.monotonic_ns())
        client.write(OUT_PIN, (index + 1) % 2)
        time.sleep(0.002)
    time.sleep(0.1)
    applied = [ns for _, _, ns in board.call("output_events", OUT_PIN)]  # type: ignore[union-attr]
    write_latency = (np.array(applied[:events]) - np.array(sent[: len(applied)])) / 1000

    time.sleep(0.2)
    before, started = cpu_seconds(), time.monotonic()
    time.sleep(idle_s)
    idle = (cpu_seconds() - before) / (time.monotonic() - started) * 100
    return {"input": np.array(input_latency), "lost": lost, "write": write_latency,
            "write_missing": events - len(applied), "idle": idle}


def _p(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


@contextlib.contextmanager
def real_time(enabled: bool):
    """Both clients' reader threads at the same priority. hwlink's reader asks for SCHED_FIFO itself
    (``make_thread_timely``); without real time it gets only the 1 µs timer slack. pymata4's threads inherit the
    policy of the thread that creates them, so with real time the board is opened from a SCHED_FIFO thread."""
    import hwlink.drivers.firmata as firmata_driver
    from hwlink.platform import _threads as realtime

    original = firmata_driver.make_thread_timely
    if not enabled:
        def slack_only() -> bool:
            with contextlib.suppress(OSError, AttributeError):
                realtime._libc().prctl(realtime.PR_SET_TIMERSLACK, 1, 0, 0, 0)
            return False

        firmata_driver.make_thread_timely = slack_only
    try:
        yield
    finally:
        firmata_driver.make_thread_timely = original


def _open_pymata4(path: str, rt: bool) -> Pymata4Client:
    if not rt:
        return Pymata4Client(path)
    import os

    previous = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except OSError:
        raise RuntimeError("real-time priority not permitted here (run as root or with an rtprio limit)") from None
    try:
        return Pymata4Client(path)
    finally:
        os.sched_setscheduler(0, previous[0], previous[1])


def _rt_permitted() -> bool:
    import os

    try:
        previous = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        os.sched_setscheduler(0, previous[0], previous[1])
        return True
    except (OSError, AttributeError):
        return False


def software_board(events: int, idle_s: float, rounds: int) -> None:
    """Every client in both priority settings, alternated round by round; percentiles pooled over rounds."""
    from benchmarks import _harness as harness

    settings = [True, False] if _rt_permitted() else [False]
    configs = [(name, rt) for rt in settings for name in ("hwlink", "pymata4")]
    results: dict[tuple[str, bool], list[dict[str, np.ndarray | float]]] = {config: [] for config in configs}
    with BoardProcess("pty") as board:
        for round_index in range(rounds):
            for name, rt in configs:
                if name == "pymata4" and rt and round_index:
                    continue  # its polling threads spin at 100 % of a core at SCHED_FIFO: one round only
                with real_time(rt):
                    client: Client = HwlinkClient(board.url) if name == "hwlink" else _open_pymata4(board.path, rt)
                    try:
                        results[(name, rt)].append(measure_software(client, board, events, idle_s))
                    finally:
                        client.close()
                board.call("reboot", 0.0)
    print(f"### Software Firmata board (pty, board in a child process; {events} events per client and round, "
          f"{rounds} rounds alternated (pymata4 with RT: one), percentiles over all rounds; idle {idle_s:.0f} s; "
          f"{harness.load()})\n")
    print("The board stamps each port report just before writing it (so no callback can precede its stamp), and the "
          "client stamps each write just before calling it. 'RT': the client's reader thread(s) at SCHED_FIFO.\n")
    print("| client | RT | input -> callback p50 / p99 / max (µs) | callbacks before the stamp | "
          "write -> pin p50 / p99 (µs) | idle CPU (% of a core) | edges lost / writes missing |")
    print("|---|---|---|---|---|---|---|")
    pooled = {}
    for (name, rt), runs in results.items():
        inputs = np.concatenate([np.asarray(run["input"]) for run in runs])
        writes = np.concatenate([np.asarray(run["write"]) for run in runs])
        idle = min(float(run["idle"]) for run in runs)
        pooled[(name, rt)] = (inputs, writes, idle)
        print(f"| {name} | {'yes' if rt else 'no'} | {_p(inputs, 50):.0f} / {_p(inputs, 99):.0f} / "
              f"{np.max(inputs):.0f} | {int((inputs < 0).sum())} | {_p(writes, 50):.0f} / {_p(writes, 99):.0f} | "
              f"{idle:.2f} | {sum(int(run['lost']) for run in runs)} / "
              f"{sum(int(run['write_missing']) for run in runs)} |")
    for rt in settings:  # floor: the same bytes through a pty to a reader blocked in read, no Firmata parsing
        floor = np.array(harness.pty_wakeup_latency(events, 0.002, real_time=rt)) * 1e6
        print(f"| floor: 3 bytes through a pty to a thread blocked in `read` | {'yes' if rt else 'no'} | "
              f"{_p(floor, 50):.0f} / {_p(floor, 99):.0f} / {np.max(floor):.0f} | 0 | | | |")
    for rt in settings:
        ours, theirs = pooled[("hwlink", rt)], pooled[("pymata4", rt)]
        print(f"\n{'With' if rt else 'Without'} real time: p99 input pymata4/hwlink "
              f"{_p(theirs[0], 99) / _p(ours[0], 99):.1f}x, write {_p(theirs[1], 99) / _p(ours[1], 99):.1f}x; "
              f"hwlink goals p99 <= 1 ms "
              f"{'met' if _p(ours[0], 99) <= 1000 and _p(ours[1], 99) <= 1000 else 'NOT met'}, idle CPU <= 1 % "
              f"{'met' if ours[2] <= 1 else 'NOT met'}.")
    print()


def hwlink_on_genuine(uno: SimavrUno, pulses: int, width: int, period: int, window_s: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with open_board(uno.url) as board:
        assert isinstance(board, FirmataBoard)
        board.set_mode(PULSE_PIN, LineModeFlags.IS_OUTPUT)
        time.sleep(0.05)
        uno.clear_events()
        train = board.pulse(PULSE_PIN, width, count=pulses, period_usec=period)
        train.wait(timeout=pulses * period / 1e6 + 5)
        time.sleep(0.1)
        widths = uno.pulse_widths_usec(PULSE_PIN)
        board.set_analog_interval(10_000)
        with board.readings(lines=["A0"]) as stream:
            board.set_mode("A0", LineModeFlags.IS_INPUT)
            stamps = _collect(stream, window_s)
    return widths - width, train.width_errors_usec, np.diff(stamps)


def _collect(stream: ReadingStream, window_s: float) -> np.ndarray:
    time.sleep(0.3)  # the firmware's catch-up burst right after reporting is enabled
    while stream.get(timeout=0) is not None:
        pass
    stamps = []
    end = time.monotonic() + window_s
    while time.monotonic() < end:
        reading = stream.get(timeout=1)
        if reading is not None:
            stamps.append(reading.time_usec)
    return np.array(stamps, dtype=np.float64)


def pymata4_on_genuine(uno: SimavrUno, pulses: int, width: int, period: int, window_s: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    client = Pymata4Client(uno.pty, pin_write=False)  # Firmata 2.4: no SET_DIGITAL_PIN_VALUE
    try:
        client.prepare_output(PULSE_PIN)
        client.write(PULSE_PIN, 0)
        time.sleep(0.05)
        uno.clear_events()
        start = time.monotonic()
        host_widths = []
        for index in range(pulses):
            time.sleep(max(0.0, start + index * period / 1e6 - time.monotonic()))
            rising = time.monotonic_ns()
            client.write(PULSE_PIN, 1)
            time.sleep(width / 1e6)
            host_widths.append((time.monotonic_ns() - rising) // 1000)
            client.write(PULSE_PIN, 0)
        time.sleep(0.1)
        widths = uno.pulse_widths_usec(PULSE_PIN)
        stamps: queue.Queue[float] = queue.Queue()
        client.board.set_sampling_interval(10)
        client.board.set_pin_mode_analog_input(0, callback=lambda data: stamps.put(data[3]), differential=0)
        time.sleep(0.3)
        while not stamps.empty():
            stamps.get_nowait()
        time.sleep(window_s)
        seen = []
        while not stamps.empty():
            seen.append(stamps.get_nowait() * 1e6)  # time.time() at decoding, in µs
    finally:
        client.close()
    return widths - width, np.array(host_widths) - width, np.diff(np.array(seen))


def genuine_firmware(pulses: int, window_s: float) -> None:
    width, period = 5_000, 20_000
    with SimavrUno.start() as uno:
        uno.set_adc(0, 2500)
        ours = hwlink_on_genuine(uno, pulses, width, period, window_s)
        theirs = pymata4_on_genuine(uno, pulses, width, period, window_s)
    print("### Genuine StandardFirmata 2.4 on simavr (real-time paced)\n")
    print(f"Pulse width error on the emulated pin ({pulses} pulses of {width / 1000:.0f} ms, every "
          f"{period / 1000:.0f} ms; µs, simulated clock):\n")
    print("| client | seen at | pulses | mean | p50 abs | p90 abs | p99 abs | max abs |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (pin_errors, host_errors, _) in (("hwlink (scheduled pulse train)", ours),
                                               ("pymata4 + time.sleep", theirs)):
        for where, errors in (("emulated pin", pin_errors), ("host (between the writes)", host_errors)):
            magnitude = np.abs(errors)
            print(f"| {name} | {where} | {len(errors)} | {errors.mean():+.0f} | {_p(magnitude, 50):.0f} | "
                  f"{_p(magnitude, 90):.0f} | {_p(magnitude, 99):.0f} | {magnitude.max():.0f} |")
    print(f"\nAnalog reporting at 10 ms, intervals between the timestamps handed to the user ({window_s:.0f} s; ms):\n")
    print("| client | readings/s | median | sd | p99 abs dev from median | max |")
    print("|---|---|---|---|---|---|")
    for name, (_, _, intervals) in (("hwlink (arrival on the master clock)", ours),
                                 ("pymata4 (time.time() at decoding)", theirs)):
        ms = intervals / 1000
        deviation = np.abs(ms - np.median(ms))
        print(f"| {name} | {len(ms) / window_s:.1f} | {np.median(ms):.2f} | {ms.std():.2f} | "
              f"{_p(deviation, 99):.2f} | {ms.max():.2f} |")
    print("\nThe firmware itself reports every 10.24 or 9.22 ms (millis() ticks of 1.024 ms), so ~0.5 ms of the "
          "spread is the firmware's, not the host's.")


def main(quick: bool) -> None:
    software_board(events=150 if quick else 500, idle_s=1.0 if quick else 5.0, rounds=1 if quick else 2)
    genuine_firmware(pulses=20 if quick else 100, window_s=2.0 if quick else 10.0)
