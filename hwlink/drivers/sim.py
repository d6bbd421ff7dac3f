"""``sim://`` — a simulated board with a clock of its own, for work and tests without hardware.

Layout (like an Arduino Uno plus a DAC): lines 0-13 ``D0``..``D13`` digital in/out with pull-up, PWM (0..255)
on 3, 5, 6, 9, 10, 11; lines 14-19 ``A0``..``A5`` analog inputs (10 bit); line 20 ``DAC0`` analog output
(0..4095).

Time in the model (clock steps, generator steps, ``fail_after``) counts from when the board was opened,
as if the device powered up then. The device stamps every reading with its own clock (offset, drift, drift change, steps) and the reading
reaches the host after a one-sided transport latency (FIFO, optional spikes); the host stamps it again
on the master clock at arrival. All randomness comes from ``seed``.

URL query parameters (all optional), e.g. ``sim://?loopback=13:2&drift_ppm=50&latency=usb:1ms&a0=sine:2Hz``:

=================  ==========================================================================================
``seed``           integer seed of every random draw (default 0)
``loopback``       ``OUT:IN[,OUT:IN...]`` wires an output line to an input line
``offset``         device clock offset from the master clock, a duration (``-2s``; default 0)
``drift_ppm``      device clock rate error in ppm (positive: device runs fast; default 0)
``drift_change``   change of the drift in ppm per hour (default 0)
``steps``          clock steps ``AT:STEP[,...]``, e.g. ``30s:+50ms``
``latency``        device-to-host latency: ``none``, ``const:T``, ``exp:MEAN``, ``uniform:LOW-HIGH``,
                   ``usb:FRAME`` (default ``uniform:100us-400us``)
``spikes``         rare extra delays ``P:LOW-HIGH``, e.g. ``0.05:5ms-20ms``
``analog_interval`` sampling interval of analog inputs on the device clock (default ``10ms``)
``aN``             generator of analog input N: ``sine:FREQ[:AMPLITUDE[:MEAN]]``, ``noise[:SD[:MEAN]]``,
                   ``step:AT[:LOW[:HIGH]]``, ``const:VALUE`` (default: sine at 0.5 Hz, amplitude 400 around 512)
``dN``             external signal on digital input N: ``square:FREQ[:DUTY]``
``fail_after``     the board "disconnects" this long after it was opened (to exercise error handling)
``mute_after``     the board stops sending (but stays connected) this long after it was opened (to exercise liveness)
``silence``        with analog inputs on, the board is declared dead after this long without data (default 5s)
=================  ==========================================================================================

Numbers are checked before use: ``drift_ppm`` within ±100000, ``drift_change`` within ±100000 ppm/h, durations
within a year, generator parameters finite.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import numpy as np

from hwlink.clock import MasterClock
from hwlink.drivers import BoardDescription
from hwlink.drivers.base import DEFAULT_SILENCE_LIMIT_USEC, Board
from hwlink.drivers.lineinfo import LineInfo, LineMode
from hwlink.platform import coarse_timeout, make_thread_timely
from hwlink.errors import BoardError, ConfigError
from hwlink.lines import LineReading
from hwlink.sync.clockmodel import DeviceClock, LatencyModel, parse_latency, parse_steps
from hwlink.units import parse_duration_usec, parse_frequency_hz

PWM_LINES = (3, 5, 6, 9, 10, 11)
ANALOG_FIRST = 14
ANALOG_COUNT = 6
DAC_LINE = 20
ADC_MAX = 1023


def sim_lines() -> list[LineInfo]:
    lines = [
        LineInfo(n, f"D{n}", digital_in=True, digital_out=True, pullup=True,
                 analog_out_max=255 if n in PWM_LINES else 0, analog_out_kind="pwm" if n in PWM_LINES else "",
                 aliases=(str(n),))
        for n in range(14)
    ]
    lines += [LineInfo(ANALOG_FIRST + n, f"A{n}", analog_in_bits=10) for n in range(ANALOG_COUNT)]
    lines.append(LineInfo(DAC_LINE, "DAC0", analog_out_max=4095, analog_out_kind="dac"))
    return lines


@dataclass(frozen=True)
class AnalogGenerator:
    """Signal on an analog input, as a function of master time."""

    kind: str
    frequency_hz: float = 0.5
    amplitude: float = 400.0
    mean: float = 512.0
    at_usec: int = 0

    def values(self, t_usec: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "sine":
            signal = self.mean + self.amplitude * np.sin(2 * np.pi * self.frequency_hz * t_usec / 1e6)
        elif self.kind == "noise":
            signal = rng.normal(self.mean, self.amplitude, np.shape(t_usec))
        elif self.kind == "step":
            signal = np.where(t_usec >= self.at_usec, self.amplitude, self.mean)
        else:  # const
            signal = np.full(np.shape(t_usec), self.mean)
        return np.clip(np.rint(signal), 0, ADC_MAX).astype(np.int64)


def parse_analog_generator(spec: str) -> AnalogGenerator:
    kind, *args = spec.split(":")

    def number(index: int, default: float) -> float:
        if len(args) <= index:
            return default
        value = float(args[index])
        if not math.isfinite(value) or abs(value) > 1e9:
            raise ValueError(f"{args[index]!r} is not a finite number within ±1e9")
        return value

    try:
        if kind == "sine" and 1 <= len(args) <= 3:
            freq = parse_frequency_hz(args[0])
            return AnalogGenerator("sine", freq, number(1, 400.0), number(2, 512.0))
        if kind == "noise" and len(args) <= 2:
            amplitude = number(0, 50.0)
            if amplitude < 0:
                raise ValueError("the noise SD must not be negative")
            return AnalogGenerator("noise", amplitude=amplitude, mean=number(1, 512.0))
        if kind == "step" and 1 <= len(args) <= 3:
            return AnalogGenerator("step", at_usec=parse_duration_usec(args[0]), mean=number(1, 0.0),
                                   amplitude=number(2, float(ADC_MAX)))
        if kind == "const" and len(args) == 1:
            return AnalogGenerator("const", mean=number(0, 0.0))
    except ValueError as error:
        raise ConfigError(f"bad analog generator {spec!r}: {error}") from None
    raise ConfigError(
        f"bad analog generator {spec!r}: use sine:FREQ[:AMPL[:MEAN]], noise[:SD[:MEAN]], step:AT[:LOW[:HIGH]], const:V"
    )


@dataclass(frozen=True)
class SquareWave:
    """External digital signal driving an input line."""

    frequency_hz: float
    duty: float = 0.5


@dataclass
class SimConfig:
    seed: int = 0
    loopback: dict[int, list[int]] = field(default_factory=dict)
    device_clock: DeviceClock = DeviceClock()
    latency: LatencyModel = field(default_factory=lambda: parse_latency("uniform:100us-400us"))
    analog_interval_usec: int = 10_000
    analog: dict[int, AnalogGenerator] = field(default_factory=dict)
    digital: dict[int, SquareWave] = field(default_factory=dict)
    fail_after_usec: int | None = None
    mute_after_usec: int | None = None
    silence_usec: int = DEFAULT_SILENCE_LIMIT_USEC

    _KNOWN = ("seed", "loopback", "offset", "drift_ppm", "drift_change", "steps", "latency", "spikes",
              "analog_interval", "fail_after", "mute_after", "silence")

    @classmethod
    def from_url(cls, url: str) -> SimConfig:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "sim":
            raise ConfigError(f"not a sim:// URL: {url!r}")
        if parts.netloc not in ("", "uno") or parts.path not in ("", "/"):
            raise ConfigError(f"bad sim URL {url!r}: options go in the query, e.g. sim://?loopback=13:2")
        try:
            pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise ConfigError(f"bad query in {url!r}: expected key=value&key=value") from None
        config = cls()
        clock_args: dict[str, object] = {}
        spikes = None
        lines = {info.name.lower(): info for info in sim_lines()}
        for key, value in pairs:
            if key == "seed":
                config.seed = _int(key, value)
                if not 0 <= config.seed < 2**63:
                    raise ConfigError(f"sim:// option seed must be within 0..2**63-1, got {value!r}")
            elif key == "loopback":
                config.loopback = _parse_loopback(value)
            elif key == "offset":
                clock_args["offset_usec"] = float(parse_duration_usec(value, allow_negative=True))
            elif key == "drift_ppm":
                clock_args["drift_ppm"] = _float(key, value, 100_000)
            elif key == "drift_change":
                clock_args["drift_change_ppm_per_hour"] = _float(key, value, 100_000)
            elif key == "steps":
                clock_args["steps"] = parse_steps(value)
            elif key == "latency":
                config.latency = parse_latency(value)
            elif key == "spikes":
                spikes = value
            elif key == "analog_interval":
                config.analog_interval_usec = parse_duration_usec(value)
                if config.analog_interval_usec < 100:
                    raise ConfigError("analog_interval must be at least 100us")
            elif key == "fail_after":
                config.fail_after_usec = parse_duration_usec(value)
            elif key == "mute_after":
                config.mute_after_usec = parse_duration_usec(value)
            elif key == "silence":
                config.silence_usec = parse_duration_usec(value)
                if config.silence_usec <= 0:
                    raise ConfigError("sim:// option silence must be positive")
            elif key.startswith("a") and key in lines and lines[key].analog_in_bits:
                config.analog[lines[key].line_id] = parse_analog_generator(value)
            elif key.startswith("d") and key in lines and lines[key].digital_in:
                config.digital[lines[key].line_id] = _parse_square(value)
            else:
                known = ", ".join(cls._KNOWN + ("a0..a5", "d0..d13"))
                raise ConfigError(f"unknown sim:// option {key!r}; known options: {known}")
        config.device_clock = DeviceClock(**clock_args)  # type: ignore[arg-type]
        config.latency = config.latency.with_spikes(spikes)
        for source, targets in config.loopback.items():
            for target in targets:
                if target in config.digital:
                    raise ConfigError(f"line {target} cannot be both a loopback target and driven by d{target}")
        return config


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"sim:// option {key} needs an integer, got {value!r}") from None


def _float(key: str, value: str, limit: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"sim:// option {key} needs a number, got {value!r}") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise ConfigError(f"sim:// option {key} must be a finite number within ±{limit:g}, got {value!r}")
    return number


def _parse_loopback(spec: str) -> dict[int, list[int]]:
    wiring: dict[int, list[int]] = {}
    for pair in filter(None, spec.split(",")):
        out_text, sep, in_text = pair.partition(":")
        if not sep or not out_text.strip().isdigit() or not in_text.strip().isdigit():
            raise ConfigError(f"bad loopback {pair!r}: expected OUT:IN with digital line numbers, e.g. 13:2")
        source, target = int(out_text), int(in_text)
        if not (0 <= source < ANALOG_FIRST and 0 <= target < ANALOG_FIRST) or source == target:
            raise ConfigError(f"bad loopback {pair!r}: both ends must be different digital lines 0..13")
        wiring.setdefault(source, []).append(target)
    return wiring


def _parse_square(spec: str) -> SquareWave:
    kind, *args = spec.split(":")
    if kind != "square" or not 1 <= len(args) <= 2:
        raise ConfigError(f"bad digital generator {spec!r}: use square:FREQ[:DUTY]")
    try:
        duty = float(args[1]) if len(args) > 1 else 0.5
    except ValueError:
        raise ConfigError(f"bad digital generator {spec!r}: duty must be a number between 0 and 1") from None
    if not 0 < duty < 1:
        raise ConfigError(f"bad digital generator {spec!r}: duty must be between 0 and 1")
    return SquareWave(parse_frequency_hz(args[0]), duty)


def discover() -> list[BoardDescription]:
    """The simulated board is always there."""
    return [BoardDescription("sim://", "simulated board (Uno-like lines, device clock, latency model)")]


class SimBoard(Board):
    """The simulated board; see the module docstring for its URL options."""

    scheme = "sim"
    has_device_clock = True

    def __init__(self, config: SimConfig, url: str = "sim://", clock: MasterClock | None = None) -> None:
        super().__init__(url, sim_lines(), clock)
        self.config = config
        self._rng = np.random.default_rng(config.seed)
        self._levels = np.zeros(DAC_LINE + 1, dtype=np.int64)  # what each output drives
        self._external = {line: 0 for line in config.digital}  # what the outside world drives
        self._inputs_seen: dict[int, int] = {}
        self._wired_from = {t: s for s, targets in config.loopback.items() for t in targets}
        self._analog = {n: config.analog.get(n, AnalogGenerator("sine")) for n in range(ANALOG_FIRST, DAC_LINE)}
        self._analog_override: dict[int, int] = {}
        self._last_arrival = float("-inf")
        self._events: list[tuple[float, int, str, object]] = []
        self._sequence = itertools.count()
        self._cond = threading.Condition()
        self._running = True
        # The device's world runs on "board time": µs since the board was opened, on CLOCK_MONOTONIC. It does
        # not move when a run sets its master clock's zero after opening its boards (``hwlink run`` does), so
        # device times start at the clock offset and fail_after counts from the opening, whatever the master.
        self._opened_ns = time.monotonic_ns()
        with self._cond:
            self._push(self._analog_period_master(), "sample", None)
            for line, wave in config.digital.items():
                self._push(1e6 / wave.frequency_hz * (1 - wave.duty), "square", (line, 1))
            if config.fail_after_usec is not None:
                self._push(float(config.fail_after_usec), "fail", None)
            if config.mute_after_usec is not None:
                self._push(float(config.mute_after_usec), "mute", None)
        self.silence_limit_usec = config.silence_usec
        self._muted = False
        self._thread = threading.Thread(target=self._device_loop, name="hwlink-sim", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, url: str, clock: MasterClock | None = None) -> SimBoard:
        return cls(SimConfig.from_url(url), url, clock)

    @property
    def opened_usec(self) -> int:
        """When the board was opened, on its master clock (negative if the clock's zero was set later)."""
        return (self._opened_ns - self.clock.start_ns) // 1000

    @property
    def firmware(self) -> str:
        return "hwlink sim"

    def _board_usec(self) -> int:
        """Now in board time (µs since the board was opened)."""
        return (time.monotonic_ns() - self._opened_ns) // 1000

    # ----- the outside world (test seam) ----------------------------------------------------------------
    def drive_input(self, line: int | str, level: int) -> None:
        """Set the level an external signal puts on a digital input (like a wire from another device)."""
        info = self.line(line)
        if not info.digital_in:
            raise ConfigError(f"line {info.label} is not a digital input")
        with self._cond:
            self._external[info.line_id] = 1 if level else 0
            self._update_inputs(self._board_usec())

    def set_analog_input(self, line: int | str, code: int | None) -> None:
        """Hold an analog input at ``code`` (None returns it to its generator)."""
        info = self.line(line)
        with self._cond:
            if code is None:
                self._analog_override.pop(info.line_id, None)
            else:
                self._analog_override[info.line_id] = int(np.clip(code, 0, ADC_MAX))

    def output_level(self, line: int | str) -> int:
        """What an output line currently drives (observed like a probe on the pin)."""
        return int(self._levels[self.line(line).line_id])

    def disconnect(self, message: str = "simulated board disconnected") -> None:
        """Make the board die as a USB unplug would."""
        with self._cond:
            self._push(float(self._board_usec()), "fail", message)

    # ----- driver hooks ---------------------------------------------------------------------------------
    def _apply_mode(self, info: LineInfo, mode: LineMode) -> None:
        with self._cond:
            if mode is LineMode.DIGITAL_OUT or mode is LineMode.ANALOG_OUT:
                self._levels[info.line_id] = 0
            self._inputs_seen.pop(info.line_id, None)
            self._modes[info.line_id] = mode
            self._update_inputs(self._board_usec())

    def _write_digital(self, line_id: int, level: int) -> None:
        with self._cond:
            self._check_alive()
            self._levels[line_id] = level
            self._update_inputs(self._board_usec())

    def _write_analog(self, line_id: int, value: int) -> None:
        with self._cond:
            self._check_alive()
            self._levels[line_id] = value

    def _close(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _expected_interval_usec(self) -> int | None:
        """Analog inputs are sampled every analog_interval; digital inputs only report changes."""
        if any(mode is LineMode.ANALOG_IN for mode in self._modes.values()):
            return round(self._analog_period_master())
        return None

    # ----- device internals (called with self._cond held) -------------------------------------------------
    def _push(self, due_usec: float, kind: str, payload: object) -> None:
        heapq.heappush(self._events, (due_usec, next(self._sequence), kind, payload))
        self._cond.notify()

    def _analog_period_master(self) -> float:
        """Samples are periodic on the device clock, so a drifting device samples off-period in master time."""
        return self.config.analog_interval_usec / (1.0 + self.config.device_clock.drift_ppm * 1e-6)

    def _input_level(self, line_id: int) -> int:
        source = self._wired_from.get(line_id)
        if source is not None and self._modes.get(source) is LineMode.DIGITAL_OUT:
            return int(self._levels[source])
        if line_id in self._external:
            return self._external[line_id]
        return 1 if self._modes.get(line_id) is LineMode.DIGITAL_IN_PULLUP else 0

    def _update_inputs(self, event_usec: int) -> None:
        """Emit a reading for every digital input whose level changed (device-side edge detection)."""
        for line_id, mode in self._modes.items():
            if mode not in (LineMode.DIGITAL_IN, LineMode.DIGITAL_IN_PULLUP):
                continue
            level = self._input_level(line_id)
            if self._inputs_seen.get(line_id) != level:
                self._inputs_seen[line_id] = level
                self._send(line_id, level, float(event_usec))

    def _send(self, line_id: int, value: int, event_usec: float) -> None:
        """Device stamps the observation, then it travels to the host."""
        if self._muted:
            return
        device_time = int(self.config.device_clock.device_time_int(event_usec))
        arrival = float(self.config.latency.arrival_times(np.array([event_usec]), self._rng)[0])
        arrival = max(arrival, self._last_arrival)
        self._last_arrival = arrival
        self._push(arrival, "deliver", LineReading(line_id, int(value), 0, device_time))

    def _handle(self, due: float, kind: str, payload: object) -> None:
        if kind == "deliver":
            reading: LineReading = payload  # type: ignore[assignment]
            reading.time_usec = self.clock.now_usec()
            self._cond.release()  # callbacks run without the device lock, so they may command the board
            try:
                self._deliver(reading)
            finally:
                self._cond.acquire()
        elif kind == "sample":
            for line_id in range(ANALOG_FIRST, DAC_LINE):
                if self._modes.get(line_id) is LineMode.ANALOG_IN:
                    code = self._analog_override.get(line_id)
                    if code is None:
                        code = int(self._analog[line_id].values(np.array([due]), self._rng)[0])
                    self._send(line_id, code, due)
            self._push(due + self._analog_period_master(), "sample", None)
        elif kind == "square":
            line_id, level = payload  # type: ignore[misc]
            wave = self.config.digital[line_id]
            self._external[line_id] = level
            self._update_inputs(int(due))
            share = wave.duty if level else 1 - wave.duty
            self._push(due + 1e6 / wave.frequency_hz * share, "square", (line_id, 1 - level))
        elif kind == "mute":
            self._muted = True
        elif kind == "fail":
            self._running = False
            self._cond.release()
            try:
                self._fail(BoardError(str(payload or "simulated board disconnected (fail_after)")))
            finally:
                self._cond.acquire()

    def _device_loop(self) -> None:
        make_thread_timely()  # it stamps arrivals, and must not hold the GIL while preempted (pulse thread waits)
        with self._cond:
            while self._running:
                if not self._events:
                    self._cond.wait()
                    continue
                due = self._events[0][0]
                wait_usec = due - self._board_usec()
                if wait_usec > 0:
                    self._cond.wait(coarse_timeout(wait_usec / 1e6))
                    continue
                _, _, kind, payload = heapq.heappop(self._events)
                self._handle(due, kind, payload)
