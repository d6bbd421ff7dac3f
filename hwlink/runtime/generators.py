"""Modules that make data on their own: simulated camera, simulated signal source, tone and pulse-train
generators. All are timed on the master clock by a ``PacedThread``; the two generators follow ControlCommands
(START with ``duration`` in ms, 0 = until STOP; PAUSE and STOP end what is running)."""

from __future__ import annotations

import threading
import wave

import numpy as np

from hwlink.errors import ConfigError
from hwlink.lines import ControlCommand, ControlCommandKind, LineCommand, LineCommandKind, LineModeFlags
from hwlink.runtime.experiment import ModuleSpec, Settings
from hwlink.runtime.module import InPort, Module, PacedThread, RunContext
from hwlink.runtime.datatypes import SIGNAL_CLASSES, DataType, Frame, MetaSize, signal_type_for
from hwlink.units import parse_frequency_hz

# Limits checked before anything is allocated (an experiment file is user input).
MAX_FRAME_SIDE = 16384
MAX_CHANNELS = 4096
MAX_BLOCK_BYTES = 64 << 20
SIGNAL_DTYPES = ("float32", "int32", "uint16")


class CameraModule(Module):
    """``kind = "camera"``: a simulated camera (moving gradient with the frame index burnt into row 0)."""

    kind = "camera"
    description = "simulated camera"
    is_source = True

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        settings = Settings(spec)
        self.fps = settings.frequency_hz("fps", "30Hz")
        self.width = settings.integer("width", 320, minimum=8, maximum=MAX_FRAME_SIDE)
        self.height = settings.integer("height", 240, minimum=8, maximum=MAX_FRAME_SIDE)
        settings.finish(self.description)
        self.frames = self.add_output("frames", DataType.Frame)
        self.frames.metadata = {"framerate": self.fps, "size": MetaSize(self.width, self.height)}
        self._index = 0
        self._thread: PacedThread | None = None
        self._ramp = (np.arange(self.width, dtype=np.uint16)[None, :] + np.arange(self.height)[:, None])

    def prepare(self) -> None:
        self.frames.set_metadata(self.frames.metadata)

    def start(self) -> None:
        self._thread = PacedThread(f"hwlink-{self.name}", self.ctx.clock, round(1e6 / self.fps), self._grab,
                                   lambda error: self.ctx.fail(self.name, f"camera failed: {error}"))
        self._thread.start()

    def _grab(self, due_usec: int) -> None:
        image = ((self._ramp + self._index * 4) % 256).astype(np.uint8)
        image[0, :8] = np.frombuffer(np.uint64(self._index).tobytes(), dtype=np.uint8)
        self.frames.emit(Frame(self._index, self.ctx.clock.now_usec(), image))
        self._index += 1

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()


class SignalSourceModule(Module):
    """``kind = "signal-source"``: a simulated acquisition of ``channels`` sines (+ noise) in sample blocks."""

    kind = "signal-source"
    description = "simulated signal source"
    is_source = True

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        settings = Settings(spec)
        self.sample_rate = settings.frequency_hz("sample_rate", "1kHz")
        self.block_size = settings.integer("block_size", 50, minimum=1, maximum=1_000_000)
        self.channels = settings.integer("channels", 4, minimum=1, maximum=MAX_CHANNELS)
        frequencies = settings.strings("frequencies", ["10Hz"])
        self.frequencies = [_frequency(settings, text) for text in frequencies]
        self.amplitude = settings.number("amplitude", 1000.0)
        self.noise = settings.number("noise", 0.0, minimum=0.0)
        dtype_name = settings.text("dtype", "float32")
        if dtype_name not in SIGNAL_DTYPES:
            raise settings.error("dtype", f"unknown dtype {dtype_name!r}; use float32, int32 or uint16")
        self.dtype = np.dtype(dtype_name)
        if self.block_size * self.channels * self.dtype.itemsize > MAX_BLOCK_BYTES:
            raise settings.error("block_size", f"a block of {self.block_size} x {self.channels} {dtype_name} "
                                               f"exceeds {MAX_BLOCK_BYTES >> 20} MiB")
        self.seed = settings.integer("seed", 0, minimum=0, maximum=2**63 - 1)
        if self.block_size / self.sample_rate < 1e-4:
            raise settings.error("block_size", f"blocks of {self.block_size} samples at {self.sample_rate:g} Hz "
                                               "would come faster than every 100 µs; use bigger blocks")
        settings.finish(self.description)
        self.data_type = signal_type_for(self.dtype)
        self.signals = self.add_output("signals", self.data_type)
        self.signals.metadata = {"sample_rate": self.sample_rate, "channel_count": self.channels,
                                 "channel_names": [f"ch{n}" for n in range(self.channels)],
                                 "frequencies_hz": self.frequencies}
        self._rng = np.random.default_rng(self.seed)
        self._next_sample = 0
        self._thread: PacedThread | None = None

    def prepare(self) -> None:
        self.signals.set_metadata(self.signals.metadata)

    def start(self) -> None:
        interval = round(self.block_size * 1e6 / self.sample_rate)
        self._thread = PacedThread(f"hwlink-{self.name}", self.ctx.clock, interval, self._acquire,
                                   lambda error: self.ctx.fail(self.name, f"signal source failed: {error}"))
        self._thread.start()

    def _acquire(self, due_usec: int) -> None:
        """Emit every block whose last sample time has passed (catches up after a stall)."""
        now = self.ctx.clock.now_usec()
        while (self._next_sample + self.block_size) * 1e6 / self.sample_rate <= now:
            index = self._next_sample + np.arange(self.block_size)
            seconds = index / self.sample_rate
            wave_sum = sum(np.sin(2 * np.pi * f * seconds) for f in self.frequencies)
            values = self.amplitude * np.repeat(np.asarray(wave_sum)[:, None], self.channels, axis=1)
            if self.noise:
                values = values + self._rng.normal(0, self.noise, values.shape)
            if self.data_type == DataType.SignalBlockU16:
                values = values + 32768
            stamps = np.round(seconds * 1e6).astype(np.int64)
            self.signals.emit(SIGNAL_CLASSES[self.data_type].of(stamps, values))
            self._next_sample += self.block_size

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()


def _frequency(settings: Settings, text: str) -> float:
    try:
        return parse_frequency_hz(text)
    except ConfigError as error:
        raise settings.error("frequencies", str(error)) from None


class _Timeline:
    """On/off intervals (master µs) set by ControlCommands at their arrival time."""

    def __init__(self) -> None:
        self.intervals: list[list[float]] = []  # [on, off]; off = inf while open

    def apply(self, command: ControlCommand, now_usec: int) -> None:
        self.close(now_usec)
        if command.kind == ControlCommandKind.START:
            end = now_usec + command.duration * 1000 if command.duration > 0 else float("inf")
            self.intervals.append([now_usec, end])

    def close(self, now_usec: int) -> None:
        if self.intervals and self.intervals[-1][1] > now_usec:
            self.intervals[-1][1] = now_usec

    def active(self, t_usec: np.ndarray) -> np.ndarray:
        on = np.zeros(t_usec.shape, dtype=bool)
        for start, end in self.intervals[-8:]:
            on |= (t_usec >= start) & (t_usec < end)
        return on


class ToneModule(Module):
    """``kind = "tone"``: a tone generator; what it plays (tone or silence) is written to a WAV file."""

    kind = "tone"
    description = "tone generator"

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        settings = Settings(spec)
        self.frequency = settings.frequency_hz("frequency", "1kHz")
        self.sample_rate = settings.integer("sample_rate", 16000, minimum=1000, maximum=384_000)
        self.volume = settings.number("volume", 0.5)
        if not 0 < self.volume <= 1:
            raise settings.error("volume", "volume must be in (0, 1]")
        settings.finish(self.description)
        if self.frequency >= self.sample_rate / 2:
            raise settings.error("frequency", "frequency must be below half the sample rate")
        self.add_input("control", DataType.ControlCommand, self._on_control)
        self._timeline = _Timeline()
        self._lock = threading.Lock()
        self._written = 0
        self._wav: wave.Wave_write | None = None
        self._thread: PacedThread | None = None

    def prepare(self) -> None:
        dataset = self.ctx.dataset(self.name, module=self.name)
        path = dataset.set_data_file(f"{self.name}.wav", summary=f"tone {self.frequency:g} Hz as played")
        self._wav = wave.open(str(path), "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(self.sample_rate)

    def start(self) -> None:
        self._thread = PacedThread(f"hwlink-{self.name}", self.ctx.clock, 20_000, self._render,
                                   lambda error: self.ctx.fail(self.name, f"tone generator failed: {error}"))
        self._thread.start()

    def _on_control(self, port: InPort, command: ControlCommand) -> None:
        with self._lock:
            self._timeline.apply(command, self.ctx.clock.now_usec())

    def _render(self, due_usec: int = 0) -> None:
        """Write the samples up to now; commands take the lock, so none lands in the past of the file."""
        with self._lock:
            end = self.ctx.clock.now_usec() * self.sample_rate // 1_000_000
            index = np.arange(self._written, end, dtype=np.int64)
            if not len(index) or self._wav is None:
                return
            t_usec = index * 1_000_000 / self.sample_rate
            tone = np.sin(2 * np.pi * self.frequency * index / self.sample_rate)
            samples = np.where(self._timeline.active(t_usec), tone * self.volume * 32767, 0).astype("<i2")
            self._wav.writeframes(samples.tobytes())
            self._written = int(end)

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
        self._render()

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None


class PulseTrainModule(Module):
    """``kind = "pulse-train"``: LineCommand pulses on ``line`` every ``period`` while started.

    Its thread sleeps until the next pulse is due (or a ControlCommand changes the plan), so an idle or slow
    train costs the engine nothing between pulses.
    """

    kind = "pulse-train"
    description = "pulse-train generator"

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        settings = Settings(spec)
        self.line = settings.integer("line", minimum=0, maximum=65535)
        self.width_usec = settings.duration_usec("width", "10ms")
        self.period_usec = settings.duration_usec("period", "1s")
        self.autostart = bool(settings.raw("autostart", False))
        settings.finish(self.description)
        if self.period_usec <= self.width_usec:
            raise settings.error("period", "period must be longer than width")
        self.add_input("control", DataType.ControlCommand, self._on_control)
        self.commands = self.add_output("commands", DataType.LineCommand)
        self._changed = threading.Condition()
        self._next_pulse: int | None = None
        self._end_usec = float("inf")
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"hwlink-{self.name}", daemon=True)

    def start(self) -> None:
        self.commands.emit(LineCommand(LineCommandKind.SET_MODE, self.line, flags=LineModeFlags.IS_OUTPUT))
        if self.autostart:
            self._on_control(None, ControlCommand(ControlCommandKind.START))
        self._thread.start()

    def _on_control(self, port: InPort | None, command: ControlCommand) -> None:
        with self._changed:
            now = self.ctx.clock.now_usec()
            if command.kind == ControlCommandKind.START:
                self._next_pulse = now
                self._end_usec = now + command.duration * 1000 if command.duration > 0 else float("inf")
            elif command.kind in (ControlCommandKind.PAUSE, ControlCommandKind.STOP):
                self._next_pulse = None
            self._changed.notify()

    def _loop(self) -> None:
        try:
            while True:
                with self._changed:
                    while not self._stopping:
                        due = self._next_pulse
                        wait = None if due is None else (due - self.ctx.clock.now_usec()) / 1e6
                        if wait is not None and wait <= 0:
                            break
                        self._changed.wait(wait)
                    if self._stopping:
                        return
                    assert self._next_pulse is not None
                    if self._next_pulse >= self._end_usec:
                        self._next_pulse = None
                        continue
                    self._next_pulse += self.period_usec
                self.commands.emit(LineCommand(LineCommandKind.WRITE_DIGITAL_PULSE, self.line, 1,
                                               duration_usec=self.width_usec))
        except Exception as error:
            self.ctx.fail(self.name, f"pulse train failed: {error}")

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
