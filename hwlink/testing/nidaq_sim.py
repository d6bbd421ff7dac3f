"""A simulated NI-DAQmx system behind nidaqmx's interpreter seam, for tests and hardware-free demos.

nidaqmx (pinned 1.7.0) sends every driver call through an interpreter object
(``nidaqmx._base_interpreter.BaseInterpreter``: one method per DAQmx C function) that
``nidaqmx.utils._select_interpreter`` picks. Replacing that one private function is the outermost seam: the real
``nidaqmx.Task`` code (channel collections, timing, stream readers and writers, event registration, error classes)
runs unchanged against the devices modelled here, in real time on ``CLOCK_MONOTONIC`` (the master clock's base).

What a simulated device does:

* clocked analog input: sample ``k`` is taken at ``t0 + k / (rate * (1 + drift_ppm))``; reads block until the
  samples exist, every-N-samples events fire on a thread of their own, a reader that falls more than the buffer
  behind gets DAQmx error -200279 (buffer size as DAQmx picks it); signals are sines per channel, or the level of a
  wired analog output;
* digital lines with a level history: on-demand DO writes, counter pulses routed to PFI lines, and externally
  driven inputs (``set_digital_input``) all land there; hardware-timed DI samples it, optionally through wires
  (``SimulatedDevice.wiring``, e.g. ``{"port0/line1": "port0/line0"}`` feeds DO line 0 into DI line 1);
* analog output on demand and as a finite hardware-timed waveform (where ``ao_samp_clk_supported``);
* counter output pulse trains (high/low times coerced to the 100 MHz timebase), on the counter's default
  terminal or the PFI line set with ``co_pulse_term``;
* resource conflicts (one AI and one DI timing engine per device, one task per counter: -50103), unknown devices
  (-200220) and channels (-200170), and injected errors (``inject_error``);
* a stalled driver (``stall_events``): an acquisition whose every-N-samples events stop while the task still
  reports running and its samples can still be read, as when a driver hangs or a device drops off the bus without
  an error.

Use ``with SimulatedNidaq() as sim:`` around code that uses nidaqmx, or run the hwlink command line against it:
``python -m hwlink.testing.nidaq_sim read port0/line1 -b nidaq://Dev1 --duration 2s``.
"""

from __future__ import annotations

import abc
import inspect
import itertools
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    import nidaqmx
    import nidaqmx.utils
    from nidaqmx._base_interpreter import BaseEventHandler, BaseInterpreter
    from nidaqmx.constants import AcquisitionType, ChannelType, FillMode, Level, ProductCategory
    from nidaqmx.errors import DaqError, DaqReadError, DaqWriteError
except ImportError as _missing:
    if __name__ == "__main__":  # `python -m hwlink.testing.nidaq_sim ...` without the package: one line, exit 2
        print(f"error: the NI-DAQmx simulation needs NI's nidaqmx package: pip install 'hwlink[nidaq]' "
              f"({_missing})", file=sys.stderr)
        sys.exit(2)
    raise

from hwlink.platform import clock_ns

PINNED_NIDAQMX_VERSION = "1.7.0"
SEAM_MODULE = nidaqmx.utils
SEAM_FUNCTION = "_select_interpreter"

SAMPLES_NO_LONGER_AVAILABLE = -200279
SAMPLES_NOT_YET_AVAILABLE = -200284
WAIT_UNTIL_DONE_TIMEOUT = -200560
INVALID_DEVICE = -200220
PHYSICAL_CHANNEL_DOES_NOT_EXIST = -200170
INVALID_ATTRIBUTE_VALUE = -200077
RESOURCE_RESERVED = -50103
INVALID_TASK = -200088

# DAQmx channel attribute ids (nidaqmx.task.channels.COChannel properties)
CO_PULSE_HIGH_TIME = 0x18BA
CO_PULSE_LOW_TIME = 0x18BB
CO_PULSE_INITIAL_DELAY = 0x18BC
CO_PULSE_IDLE_STATE = 0x1170
CO_PULSE_TERM = 0x18E1

COUNTER_TIMEBASE_HZ = 100e6
_EVENT_ACQUIRED_INTO_BUFFER = 1


def default_ai_signal(channel: int, t_seconds: np.ndarray) -> np.ndarray:
    """Channel N carries a sine of (N + 1) Hz and amplitude 1 + N/10 V: distinct and easy to check."""
    return (1.0 + channel / 10.0) * np.sin(2.0 * np.pi * (channel + 1.0) * t_seconds)


@dataclass
class SimulatedDevice:
    """One simulated device; the defaults resemble an X Series PCIe-6363."""

    name: str = "Dev1"
    product_type: str = "PCIe-6363"
    product_category: ProductCategory = ProductCategory.X_SERIES_DAQ
    serial_number: int = 0x1A2B3C4D
    ai_count: int = 16
    ao_count: int = 4
    port_widths: tuple[int, ...] = (32, 8, 8)
    counter_count: int = 4
    ai_resolution_bits: int = 16
    ao_resolution_bits: int = 16
    ai_max_single_chan_rate_hz: float = 2e6
    ai_max_multi_chan_rate_hz: float = 1e6
    ai_simultaneous_sampling: bool = False
    ao_samp_clk_supported: bool = True
    ao_max_rate_hz: float = 2.86e6
    clock_drift_ppm: float = 0.0
    ai_signal: Callable[[int, np.ndarray], np.ndarray] = default_ai_signal
    wiring: dict[str, str] = field(default_factory=dict)  # input line/channel -> the output that drives it

    @property
    def ai_channels(self) -> list[str]:
        return [f"ai{n}" for n in range(self.ai_count)]

    @property
    def ao_channels(self) -> list[str]:
        return [f"ao{n}" for n in range(self.ao_count)]

    @property
    def digital_lines(self) -> list[str]:
        return [f"port{p}/line{n}" for p, width in enumerate(self.port_widths) for n in range(width)]

    @property
    def counters(self) -> list[str]:
        return [f"ctr{n}" for n in range(self.counter_count)]

    def pfi_line(self, pfi: int) -> str | None:
        """X/M Series: PFI0-7 are port1, PFI8-15 port2."""
        port, line = 1 + pfi // 8, pfi % 8
        if port < len(self.port_widths) and line < self.port_widths[port]:
            return f"port{port}/line{line}"
        return None

    def default_counter_terminal(self, counter: str) -> int:
        """X Series default output terminals: ctr0..3 -> PFI12..15."""
        return 12 + int(counter[3:]) % 4


class _History:
    """Levels of one output or line over time: (monotonic ns, value) pairs, value before the first is 0."""

    def __init__(self) -> None:
        self.times = np.zeros(0, dtype=np.int64)
        self.values = np.zeros(0, dtype=np.float64)
        self._lock = threading.Lock()

    def set(self, at_ns: int, value: float) -> None:
        self.set_many(np.array([at_ns], dtype=np.int64), np.array([value], dtype=np.float64))

    def set_many(self, at_ns: np.ndarray, values: np.ndarray) -> None:
        with self._lock:
            keep = self.times < at_ns[0]  # a new schedule replaces what was planned after its start
            self.times = np.concatenate([self.times[keep], at_ns.astype(np.int64)])
            self.values = np.concatenate([self.values[keep], values.astype(np.float64)])

    def at(self, t_ns: np.ndarray) -> np.ndarray:
        with self._lock:
            times, values = self.times, self.values
        if times.size == 0:
            return np.zeros(np.shape(t_ns))
        index = np.searchsorted(times, t_ns, side="right") - 1
        return np.where(index >= 0, values[np.maximum(index, 0)], 0.0)


@dataclass
class _Channel:
    device: SimulatedDevice
    physical: str  # "ai0", "port0/line1", "ao0", "ctr0"
    virtual: str
    kind: ChannelType
    min_val: float = -10.0
    max_val: float = 10.0
    attributes: dict[int, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.device.name}/{self.physical}"


@dataclass
class _Injected:
    code: int
    operation: str
    channel: str | None
    after_samples: int
    message: str


class _SimTask:
    def __init__(self, handle: int, name: str) -> None:
        self.handle = handle
        self.name = name
        self.channels: list[_Channel] = []
        self.rate_hz = 0.0
        self.sample_mode: AcquisitionType | None = None
        self.samps_per_chan = 0
        self.running = False
        self.t0_ns = 0
        self.period_ns = 0.0
        self.read_position = 0
        self.every_n: tuple[int, Callable[..., Any]] | None = None
        self.stalled = False  # every-N-samples events no longer fire (see SimulatedNidaq.stall_events)
        self.event_thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.pending_waveform: np.ndarray | None = None
        self.done_at_ns = 0

    @property
    def kind(self) -> ChannelType | None:
        return self.channels[0].kind if self.channels else None

    @property
    def buffer_size(self) -> int:
        """DAQmx's rule: the larger of the requested size and a default that grows with the rate."""
        rate = self.rate_hz
        default = 1_000 if rate <= 100 else 10_000 if rate <= 10_000 else 100_000 if rate <= 1_000_000 else 1_000_000
        return max(self.samps_per_chan, default)

    def available(self, now_ns: int) -> int:
        if not self.running or self.period_ns <= 0:
            return 0
        count = int((now_ns - self.t0_ns) // self.period_ns)
        if self.sample_mode is AcquisitionType.FINITE:
            count = min(count, self.samps_per_chan)
        return max(count, 0)


class _SimEventHandler(BaseEventHandler):
    def close(self) -> None:
        pass


class SimulatedNidaq(BaseInterpreter):
    """The NI-DAQmx "driver" as nidaqmx sees it; also the test's view of the simulated world."""

    def __init__(self, devices: list[SimulatedDevice] | None = None) -> None:
        self.devices = {d.name: d for d in (devices if devices is not None else [SimulatedDevice()])}
        self._tasks: dict[int, _SimTask] = {}
        self._handles = itertools.count(1)
        self._lock = threading.RLock()
        self._digital: dict[tuple[str, str], _History] = {}
        self._analog_out: dict[tuple[str, str], _History] = {}
        self._last_created = ""
        self._injected: list[_Injected] = []
        self.callback_errors: list[BaseException] = []
        self.counter_trains: list[tuple[str, np.ndarray]] = []  # (device/counter, rising/falling edge times ns)
        self._saved_seam: Callable[..., BaseInterpreter] | None = None

    # ----- installing at the seam ----------------------------------------------------------------------
    def install(self) -> SimulatedNidaq:
        """Make every nidaqmx object created from now on talk to this simulated system."""
        check_seam()
        self._saved_seam = getattr(SEAM_MODULE, SEAM_FUNCTION)

        def select_interpreter(grpc_options: object = None,
                               interpreter: BaseInterpreter | None = None) -> BaseInterpreter:
            return interpreter or self

        setattr(SEAM_MODULE, SEAM_FUNCTION, select_interpreter)
        return self

    def uninstall(self) -> None:
        """Stop every task and restore nidaqmx's own interpreter selection."""
        with self._lock:
            tasks = list(self._tasks.values())
        for task in tasks:
            self._stop(task)
        if self._saved_seam is not None:
            setattr(SEAM_MODULE, SEAM_FUNCTION, self._saved_seam)
            self._saved_seam = None

    def __enter__(self) -> SimulatedNidaq:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # ----- the outside world (what a test or demo does to the device) ----------------------------------
    def set_digital_input(self, device: str, line: str, level: int) -> None:
        """Drive a digital line from outside (like a wire from another instrument), from now on."""
        self._history(self._digital, device, line).set(clock_ns(), float(bool(level)))

    def digital_level(self, device: str, line: str, at_ns: int | None = None) -> int:
        """The level on a line now (or at a monotonic time), like a probe on the pin."""
        t = clock_ns() if at_ns is None else at_ns
        return int(self._history(self._digital, device, line).at(np.array([t]))[0])

    def digital_changes(self, device: str, line: str) -> tuple[np.ndarray, np.ndarray]:
        """Every level change a line has seen or has scheduled: (monotonic ns, level)."""
        history = self._history(self._digital, device, line)
        return history.times.copy(), history.values.astype(np.int64)

    def analog_output(self, device: str, channel: str, at_ns: int | None = None) -> float:
        t = clock_ns() if at_ns is None else at_ns
        return float(self._history(self._analog_out, device, channel).at(np.array([t]))[0])

    def analog_output_changes(self, device: str, channel: str) -> tuple[np.ndarray, np.ndarray]:
        history = self._history(self._analog_out, device, channel)
        return history.times.copy(), history.values.copy()

    def inject_error(self, code: int, operation: str = "read", channel: str | None = None, after_samples: int = 0,
                     message: str = "") -> None:
        """Make the next matching ``operation`` (read, start, write, create) fail with DAQmx error ``code``.

        For reads, ``after_samples`` lets that many samples through first; ``channel`` ("Dev1/ai0") narrows it.
        """
        with self._lock:
            self._injected.append(_Injected(code, operation, channel, after_samples, message))

    def stall_events(self, channel: str | None = None, after_samples: int = 0) -> None:
        """Stall the next acquisition that reaches ``after_samples``: its every-N-samples events stop for good.

        The task stays running (``running_tasks`` lists it, reads still return samples, no error is raised), as
        with a hung driver; only stopping the task ends the stall. Events whose block ends at or before
        ``after_samples`` still fire; ``channel`` ("Dev1/ai0") narrows which task stalls.
        """
        with self._lock:
            self._injected.append(_Injected(0, "stall", channel, after_samples, ""))

    def stalled_tasks(self) -> list[str]:
        """Running tasks whose events a stall has stopped."""
        with self._lock:
            return [task.name for task in self._tasks.values() if task.running and task.stalled]

    def sample_time_ns(self, device: str, channel: str, index: int) -> int:
        """When the running acquisition that samples ``channel`` took sample ``index`` (monotonic ns)."""
        with self._lock:
            for task in self._tasks.values():
                if task.running and task.rate_hz and any(
                        c.device.name == device and c.physical == channel for c in task.channels):
                    return int(task.t0_ns + index * task.period_ns)
        raise KeyError(f"no running acquisition samples {device}/{channel}")

    def running_tasks(self) -> list[str]:
        with self._lock:
            return [task.name for task in self._tasks.values() if task.running]

    def task_count(self) -> int:
        with self._lock:
            return len(self._tasks)

    # ----- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _history(store: dict[tuple[str, str], _History], device: str, name: str) -> _History:
        key = (device, name)
        if key not in store:
            store[key] = _History()
        return store[key]

    def _task(self, handle: int) -> _SimTask:
        task = self._tasks.get(handle)
        if task is None:
            raise DaqError("Task specified is invalid or does not exist.", INVALID_TASK)
        return task

    @staticmethod
    def _error(text: str, code: int, task: _SimTask | None = None, channel: _Channel | str | None = None,
               read: int | None = None, written: int | None = None) -> DaqError:
        parts = [text]
        if channel is not None:
            full = channel.full_name if isinstance(channel, _Channel) else channel
            device, _, physical = full.partition("/")
            parts.append(f"\nDevice: {device}\nPhysical Channel: {physical}" if physical else f"\nDevice: {device}")
        message = "\n".join(parts)
        name = task.name if task is not None else ""
        if read is not None:
            return DaqReadError(message, code, read, task_name=name)
        if written is not None:
            return DaqWriteError(message, code, written, task_name=name)
        return DaqError(message, code, task_name=name)

    def _take_injected(self, operation: str, task: _SimTask, end_sample: int = 0,
                       channels: list[_Channel] | None = None) -> _Injected | None:
        names = [c.full_name for c in (task.channels if channels is None else channels)]
        with self._lock:
            for injected in self._injected:
                if injected.operation != operation:
                    continue
                if injected.channel and injected.channel not in names:
                    continue
                if operation in ("read", "stall") and end_sample <= injected.after_samples:
                    continue
                self._injected.remove(injected)
                return injected
        return None

    def _raise_injected(self, injected: _Injected, task: _SimTask, read: int | None = None) -> None:
        text = injected.message or {
            SAMPLES_NO_LONGER_AVAILABLE: "The application is not able to keep up with the hardware acquisition. "
            "Attempted to read samples that are no longer available.",
        }.get(injected.code, "Simulated NI-DAQmx error.")
        channel = injected.channel or (task.channels[0] if task.channels else None)
        raise self._error(text, injected.code, task, channel, read=read)

    def _resolve(self, task: _SimTask, names: str, kind: ChannelType, assigned: str) -> list[_Channel]:
        channels = []
        physical_names = nidaqmx.utils.unflatten_channel_string(names)
        virtual_names = nidaqmx.utils.unflatten_channel_string(assigned) if assigned else []
        for index, full in enumerate(physical_names):
            device_name, sep, physical = full.lstrip("/").partition("/")
            device = self.devices.get(device_name)
            if device is None or not sep:
                raise self._error("Device identifier is invalid.", INVALID_DEVICE, task, device_name)
            known = {
                ChannelType.ANALOG_INPUT: device.ai_channels,
                ChannelType.ANALOG_OUTPUT: device.ao_channels,
                ChannelType.DIGITAL_INPUT: device.digital_lines,
                ChannelType.DIGITAL_OUTPUT: device.digital_lines,
                ChannelType.COUNTER_OUTPUT: device.counters,
            }[kind]
            if physical not in known:
                raise self._error("Physical channel specified does not exist on this device.",
                                  PHYSICAL_CHANNEL_DOES_NOT_EXIST, task, full)
            virtual = virtual_names[index] if index < len(virtual_names) else full
            channels.append(_Channel(device, physical, virtual, kind))
        return channels

    def _add_channels(self, handle: int, names: str, kind: ChannelType, assigned: str, min_val: float = -10.0,
                      max_val: float = 10.0, attributes: dict[int, Any] | None = None) -> None:
        with self._lock:
            task = self._task(handle)
            if task.kind is not None and task.kind is not kind:
                raise self._error("Cannot mix channel types in one task.", -200559, task)
            channels = self._resolve(task, names, kind, assigned)
            injected = self._take_injected("create", task, channels=channels)
            if injected is not None:
                self._raise_injected(injected, task)
            for channel in channels:
                channel.min_val, channel.max_val = min_val, max_val
                channel.attributes.update(attributes or {})
            task.channels.extend(channels)
            self._last_created = ", ".join(c.virtual for c in channels)

    def _source_of(self, channel: _Channel) -> tuple[str, str]:
        """The output feeding an input (a wire), or the input itself."""
        return channel.device.name, channel.device.wiring.get(channel.physical, channel.physical)

    def _sample_times(self, task: _SimTask, first: int, count: int) -> np.ndarray:
        return task.t0_ns + (np.arange(first, first + count, dtype=np.float64) * task.period_ns).astype(np.int64)

    def _acquire(self, task: _SimTask, first: int, count: int) -> np.ndarray:
        """Samples ``first..first+count`` of every channel: channels x samples."""
        times = self._sample_times(task, first, count)
        rows = []
        for channel in task.channels:
            device_name, source = self._source_of(channel)
            if task.kind is ChannelType.ANALOG_INPUT:
                if source.startswith("ao"):
                    values = self._history(self._analog_out, device_name, source).at(times)
                else:
                    seconds = (np.arange(first, first + count, dtype=np.float64)) / task.rate_hz
                    values = channel.device.ai_signal(int(channel.physical[2:]), seconds)
                rows.append(np.clip(values, channel.min_val, channel.max_val))
            else:
                rows.append(self._history(self._digital, device_name, source).at(times) > 0.5)
        return np.array(rows)

    def _reserve(self, task: _SimTask) -> None:
        """One AI and one DI timing engine per device, one task per counter, like X Series hardware."""
        for other in self._tasks.values():
            if other is task or not other.running:
                continue
            for mine in task.channels:
                for theirs in other.channels:
                    if mine.device is not theirs.device:
                        continue
                    same_engine = (mine.kind is theirs.kind and mine.kind in (ChannelType.ANALOG_INPUT,)) or (
                        mine.kind is theirs.kind is ChannelType.DIGITAL_INPUT and task.rate_hz and other.rate_hz)
                    same_counter = mine.kind is theirs.kind is ChannelType.COUNTER_OUTPUT and \
                        mine.physical == theirs.physical
                    if same_engine or same_counter:
                        raise self._error(f"The specified resource is reserved. Reserved by task {other.name}.",
                                          RESOURCE_RESERVED, task, mine)

    # ----- tasks -----------------------------------------------------------------------------------------
    def create_task(self, session_name: str) -> tuple[int, bool]:
        with self._lock:
            handle = next(self._handles)
            name = session_name or f"_unnamedTask<{handle - 1}>"
            if any(task.name == name for task in self._tasks.values()):
                raise DaqError(f"Task name is already in use: {name}", -200089)
            self._tasks[handle] = _SimTask(handle, name)
            return handle, True

    def hash_task_handle(self, task_handle: int) -> int:
        return hash(task_handle)

    def clear_task(self, task: int) -> None:
        with self._lock:
            sim_task = self._tasks.pop(task, None)
        if sim_task is not None:
            self._stop(sim_task)

    def start_task(self, task: int) -> None:
        with self._lock:
            sim_task = self._task(task)
            if sim_task.running:
                return
            injected = self._take_injected("start", sim_task)
            if injected is not None:
                self._raise_injected(injected, sim_task)
            self._reserve(sim_task)
            sim_task.running = True
            sim_task.stop_event.clear()
            sim_task.stalled = False
            sim_task.read_position = 0
            sim_task.t0_ns = clock_ns()
            if sim_task.rate_hz:
                drift = 1.0 + sim_task.channels[0].device.clock_drift_ppm * 1e-6
                sim_task.period_ns = 1e9 / (sim_task.rate_hz * drift)
            kind = sim_task.kind
            if kind is ChannelType.COUNTER_OUTPUT:
                self._start_counter(sim_task)
            elif kind in (ChannelType.ANALOG_OUTPUT, ChannelType.DIGITAL_OUTPUT) and \
                    sim_task.pending_waveform is not None:
                self._start_waveform(sim_task)
            if sim_task.every_n is not None:
                self._start_event_thread(sim_task)

    def stop_task(self, task: int) -> None:
        self._stop(self._task(task))

    def _stop(self, task: _SimTask) -> None:
        now = clock_ns()
        if task.running and now < task.done_at_ns:
            self._cut_generation(task, now)
        task.running = False
        task.stop_event.set()
        thread = task.event_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        task.event_thread = None

    def _cut_generation(self, task: _SimTask, now: int) -> None:
        """A generation stopped early: planned edges and samples never happen; a counter returns to idle."""
        for channel in task.channels:
            if task.kind is ChannelType.COUNTER_OUTPUT:
                line = self._counter_line(channel)
                if line is not None:
                    idle = 1.0 if channel.attributes[CO_PULSE_IDLE_STATE] == Level.HIGH.value else 0.0
                    self._history(self._digital, channel.device.name, line).set(now, idle)
            else:
                store = self._analog_out if task.kind is ChannelType.ANALOG_OUTPUT else self._digital
                history = self._history(store, channel.device.name, channel.physical)
                history.set(now, float(history.at(np.array([now]))[0]))

    def task_control(self, task: int, action: int) -> None:
        self._task(task)

    def is_task_done(self, task: int) -> bool:
        sim_task = self._task(task)
        return not sim_task.running or clock_ns() >= sim_task.done_at_ns

    def wait_until_task_done(self, task: int, time_to_wait: float) -> None:
        sim_task = self._task(task)
        remaining = (sim_task.done_at_ns - clock_ns()) / 1e9
        if time_to_wait >= 0 and remaining > time_to_wait:
            sim_task.stop_event.wait(time_to_wait)
            raise self._error("Wait Until Done did not indicate all samples were acquired or generated.",
                              WAIT_UNTIL_DONE_TIMEOUT, sim_task)
        if remaining > 0:
            sim_task.stop_event.wait(remaining)

    # ----- channels --------------------------------------------------------------------------------------
    def create_ai_voltage_chan(self, task: int, physical_channel: str, name_to_assign_to_channel: str,
                               terminal_config: int, min_val: float, max_val: float, units: int,
                               custom_scale_name: str) -> None:
        self._add_channels(task, physical_channel, ChannelType.ANALOG_INPUT, name_to_assign_to_channel,
                           min_val=min_val, max_val=max_val)

    def create_ao_voltage_chan(self, task: int, physical_channel: str, name_to_assign_to_channel: str,
                               min_val: float, max_val: float, units: int, custom_scale_name: str) -> None:
        self._add_channels(task, physical_channel, ChannelType.ANALOG_OUTPUT, name_to_assign_to_channel,
                           min_val=min_val, max_val=max_val)

    def create_di_chan(self, task: int, lines: str, name_to_assign_to_lines: str, line_grouping: int) -> None:
        self._add_channels(task, lines, ChannelType.DIGITAL_INPUT, name_to_assign_to_lines)

    def create_do_chan(self, task: int, lines: str, name_to_assign_to_lines: str, line_grouping: int) -> None:
        self._add_channels(task, lines, ChannelType.DIGITAL_OUTPUT, name_to_assign_to_lines)

    def create_co_pulse_chan_time(self, task: int, counter: str, name_to_assign_to_channel: str, units: int,
                                  idle_state: int, initial_delay: float, low_time: float, high_time: float) -> None:
        def ticks(seconds: float) -> float:
            return max(2, round(seconds * COUNTER_TIMEBASE_HZ)) / COUNTER_TIMEBASE_HZ

        self._add_channels(task, counter, ChannelType.COUNTER_OUTPUT, name_to_assign_to_channel,
                           attributes={CO_PULSE_HIGH_TIME: ticks(high_time), CO_PULSE_LOW_TIME: ticks(low_time),
                                       CO_PULSE_INITIAL_DELAY: ticks(initial_delay), CO_PULSE_IDLE_STATE: idle_state})

    def internal_get_last_created_chan(self) -> str:
        return self._last_created

    # ----- timing ----------------------------------------------------------------------------------------
    def cfg_samp_clk_timing(self, task: int, rate: float, source: str, active_edge: int, sample_mode: int,
                            samps_per_chan: int) -> None:
        sim_task = self._task(task)
        device = sim_task.channels[0].device if sim_task.channels else None
        if device is not None and sim_task.kind is ChannelType.ANALOG_INPUT:
            count = len(sim_task.channels)
            limit = device.ai_max_single_chan_rate_hz if count == 1 or device.ai_simultaneous_sampling \
                else device.ai_max_multi_chan_rate_hz / count
            if rate > limit:
                raise self._error(f"Requested value is not a supported value for this property. "
                                  f"Property: SampClk.Rate, Requested: {rate:g}, Maximum: {limit:g}",
                                  INVALID_ATTRIBUTE_VALUE, sim_task, sim_task.channels[0])
        if device is not None and sim_task.kind is ChannelType.ANALOG_OUTPUT and not device.ao_samp_clk_supported:
            raise self._error("Requested value is not a supported value for this property. Property: "
                              "SampTimingType, Requested: Sample Clock, Possible: On Demand",
                              INVALID_ATTRIBUTE_VALUE, sim_task, sim_task.channels[0])
        sim_task.rate_hz = float(rate)
        sim_task.sample_mode = AcquisitionType(sample_mode)
        sim_task.samps_per_chan = int(samps_per_chan)

    def cfg_implicit_timing(self, task: int, sample_mode: int, samps_per_chan: int) -> None:
        sim_task = self._task(task)
        sim_task.sample_mode = AcquisitionType(sample_mode)
        sim_task.samps_per_chan = int(samps_per_chan)

    # ----- events ----------------------------------------------------------------------------------------
    def register_every_n_samples_event(self, task: int, every_n_samples_event_type: int, n_samples: int,
                                       options: int, callback_function: Callable[..., int],
                                       callback_data: object) -> BaseEventHandler:
        sim_task = self._task(task)
        if every_n_samples_event_type != _EVENT_ACQUIRED_INTO_BUFFER or sim_task.kind not in (
                ChannelType.ANALOG_INPUT, ChannelType.DIGITAL_INPUT):
            raise self._error("Every N Samples event type is not supported by this task.", -200980, sim_task)
        if sim_task.every_n is not None:
            raise self._error("Every N Samples Acquired Into Buffer event is already registered.", -200960,
                              sim_task)
        sim_task.every_n = (int(n_samples), callback_function)
        return _SimEventHandler()

    def unregister_every_n_samples_event(self, task: int, every_n_samples_event_type: int) -> None:
        self._task(task).every_n = None

    def _start_event_thread(self, task: _SimTask) -> None:
        def run() -> None:
            assert task.every_n is not None
            n, callback = task.every_n
            events = 0
            while True:
                due_ns = task.t0_ns + (events + 1) * n * task.period_ns
                if task.stop_event.wait(max(0.0, (due_ns - clock_ns()) / 1e9)):
                    return
                events += 1
                if not task.stalled and self._take_injected("stall", task, events * n) is not None:
                    task.stalled = True
                if task.stalled:
                    continue  # the hardware goes on acquiring; the driver just never says so
                try:
                    callback(task.handle, _EVENT_ACQUIRED_INTO_BUFFER, n, None)
                except BaseException as error:  # noqa: BLE001 - DAQmx swallows callback failures too
                    self.callback_errors.append(error)

        task.event_thread = threading.Thread(target=run, name=f"nidaq-sim-{task.name}", daemon=True)
        task.event_thread.start()

    # ----- reading ---------------------------------------------------------------------------------------
    def _read(self, handle: int, num_samps_per_chan: int, timeout: float) -> tuple[_SimTask, np.ndarray]:
        task = self._task(handle)
        if not task.running:
            raise self._error("The task is not running.", -200473, task, task.channels[0], read=0)
        now = clock_ns()
        if task.available(now) - task.read_position > task.buffer_size:
            raise self._error("The application is not able to keep up with the hardware acquisition. Attempted "
                              "to read samples that are no longer available.", SAMPLES_NO_LONGER_AVAILABLE, task,
                              task.channels[0], read=0)
        count = task.available(now) - task.read_position if num_samps_per_chan == -1 else int(num_samps_per_chan)
        injected = self._take_injected("read", task, task.read_position + count)
        if injected is not None:
            self._raise_injected(injected, task, read=0)
        ready_ns = task.t0_ns + (task.read_position + count) * task.period_ns
        wait = (ready_ns - now) / 1e9
        if wait > 0:
            if timeout >= 0 and wait > timeout:
                task.stop_event.wait(timeout)
                raise self._error("Some or all of the samples requested have not yet been acquired.",
                                  SAMPLES_NOT_YET_AVAILABLE, task, task.channels[0], read=0)
            if task.stop_event.wait(wait) and not task.running:
                raise self._error("The task stopped while reading.", -200473, task, task.channels[0], read=0)
        data = self._acquire(task, task.read_position, count)
        task.read_position += count
        return task, data

    @staticmethod
    def _fill(read_array: np.ndarray, data: np.ndarray, fill_mode: int) -> None:
        flat = read_array.reshape(-1)
        values = data if fill_mode == FillMode.GROUP_BY_CHANNEL.value else data.T
        flat[: values.size] = values.reshape(-1)

    def read_analog_f64(self, task: int, num_samps_per_chan: int, timeout: float, fill_mode: int,
                        read_array: np.ndarray) -> tuple[np.ndarray, int]:
        _, data = self._read(task, num_samps_per_chan, timeout)
        self._fill(read_array, data, fill_mode)
        return read_array, data.shape[1]

    def read_digital_lines(self, task: int, num_samps_per_chan: int, timeout: float, fill_mode: int,
                           read_array: np.ndarray) -> tuple[np.ndarray, int, int]:
        _, data = self._read(task, num_samps_per_chan, timeout)
        self._fill(read_array, data, fill_mode)
        return read_array, data.shape[1], 1

    # ----- writing ---------------------------------------------------------------------------------------
    def _check_write(self, task: _SimTask) -> None:
        injected = self._take_injected("write", task)
        if injected is not None:
            raise self._error(injected.message or "Simulated NI-DAQmx error.", injected.code, task,
                              injected.channel or task.channels[0], written=0)

    def write_digital_lines(self, task: int, num_samps_per_chan: int, auto_start: bool, timeout: float,
                            data_layout: int, write_array: np.ndarray) -> int:
        sim_task = self._task(task)
        self._check_write(sim_task)
        values = np.asarray(write_array, dtype=np.float64).reshape(len(sim_task.channels), -1)
        if sim_task.rate_hz and not auto_start:
            sim_task.pending_waveform = values
            return int(num_samps_per_chan)
        now = clock_ns()
        for channel, row in zip(sim_task.channels, values, strict=True):
            self._history(self._digital, channel.device.name, channel.physical).set(now, float(row[-1]))
        return int(num_samps_per_chan)

    def write_analog_scalar_f64(self, task: int, auto_start: bool, timeout: float, value: float) -> None:
        sim_task = self._task(task)
        self._check_write(sim_task)
        channel = sim_task.channels[0]
        if not channel.min_val <= value <= channel.max_val:
            raise self._error(f"Requested value {value:g} V is outside the channel range "
                              f"{channel.min_val:g}..{channel.max_val:g} V.", -200561, sim_task, channel, written=0)
        self._history(self._analog_out, channel.device.name, channel.physical).set(clock_ns(), value)

    def write_analog_f64(self, task: int, num_samps_per_chan: int, auto_start: bool, timeout: float,
                         data_layout: int, write_array: np.ndarray) -> int:
        sim_task = self._task(task)
        self._check_write(sim_task)
        values = np.asarray(write_array, dtype=np.float64).reshape(len(sim_task.channels), -1)
        if not sim_task.rate_hz:
            now = clock_ns()
            for channel, row in zip(sim_task.channels, values, strict=True):
                self._history(self._analog_out, channel.device.name, channel.physical).set(now, float(row[-1]))
            return int(num_samps_per_chan)
        sim_task.pending_waveform = values
        if auto_start:
            self.start_task(task)
        return int(num_samps_per_chan)

    def _start_waveform(self, task: _SimTask) -> None:
        values = task.pending_waveform
        assert values is not None
        times = self._sample_times(task, 0, values.shape[1])
        store = self._analog_out if task.kind is ChannelType.ANALOG_OUTPUT else self._digital
        for channel, row in zip(task.channels, values, strict=True):
            self._history(store, channel.device.name, channel.physical).set_many(times, row)
        task.done_at_ns = int(times[-1] + task.period_ns)

    # ----- counters --------------------------------------------------------------------------------------
    def _counter_line(self, channel: _Channel) -> str | None:
        terminal = channel.attributes.get(CO_PULSE_TERM)
        if terminal:
            text = str(terminal).rsplit("/", 1)[-1].upper()
            return channel.device.pfi_line(int(text[3:])) if text.startswith("PFI") and text[3:].isdigit() else None
        return channel.device.pfi_line(channel.device.default_counter_terminal(channel.physical))

    def _start_counter(self, task: _SimTask) -> None:
        channel = task.channels[0]
        high, low = channel.attributes[CO_PULSE_HIGH_TIME], channel.attributes[CO_PULSE_LOW_TIME]
        delay = channel.attributes[CO_PULSE_INITIAL_DELAY]
        idle_high = channel.attributes[CO_PULSE_IDLE_STATE] == Level.HIGH.value
        count = task.samps_per_chan if task.sample_mode is AcquisitionType.FINITE else 1
        starts = task.t0_ns + np.rint((delay + np.arange(count) * (high + low)) * 1e9).astype(np.int64)
        edges = np.empty(2 * count, dtype=np.int64)
        edges[0::2] = starts
        edges[1::2] = starts + round(high * 1e9)
        levels = np.tile([0.0, 1.0] if idle_high else [1.0, 0.0], count)
        line = self._counter_line(channel)
        if line is not None:
            self._history(self._digital, channel.device.name, line).set_many(edges, levels)
        self.counter_trains.append((channel.full_name, edges))
        task.done_at_ns = int(edges[-1])

    # ----- attributes ------------------------------------------------------------------------------------
    def get_task_attribute_string(self, task: int, attribute: int) -> str:
        sim_task = self._task(task)
        if attribute == 0x1276:
            return sim_task.name
        if attribute == 0x1273:
            return ", ".join(c.virtual for c in sim_task.channels)
        if attribute == 0x230E:
            return ", ".join(dict.fromkeys(c.device.name for c in sim_task.channels))
        raise NotImplementedError(f"task attribute {attribute:#x}")

    def get_task_attribute_uint32(self, task: int, attribute: int) -> int:
        if attribute == 0x2181:
            return len(self._task(task).channels)
        raise NotImplementedError(f"task attribute {attribute:#x}")

    def _channel(self, task: int, channel: str) -> _Channel:
        sim_task = self._task(task)
        wanted = nidaqmx.utils.unflatten_channel_string(channel)
        for candidate in sim_task.channels:
            if candidate.virtual in wanted or candidate.full_name in wanted:
                return candidate
        if not channel and sim_task.channels:
            return sim_task.channels[0]
        raise self._error(f"Channel {channel!r} is not in the task.", -200486, sim_task)

    def get_chan_attribute_int32(self, task: int, channel: str, attribute: int) -> int:
        found = self._channel(task, channel)
        if attribute == 0x187F:
            return found.kind.value
        if attribute in found.attributes:
            return int(found.attributes[attribute])
        raise NotImplementedError(f"channel attribute {attribute:#x}")

    def get_chan_attribute_double(self, task: int, channel: str, attribute: int) -> float:
        found = self._channel(task, channel)
        if attribute == 0x17DD:
            return found.max_val
        if attribute == 0x17DE:
            return found.min_val
        if attribute == 0x1765:
            return float(found.device.ai_resolution_bits)
        if attribute == 0x182C:
            return float(found.device.ao_resolution_bits)
        if attribute in found.attributes:
            return float(found.attributes[attribute])
        raise NotImplementedError(f"channel attribute {attribute:#x}")

    def get_chan_attribute_string(self, task: int, channel: str, attribute: int) -> str:
        found = self._channel(task, channel)
        if attribute == CO_PULSE_TERM:
            line = self._counter_line(found)
            if line is None:
                return ""
            port, line_number = (int(part[4:]) for part in line.split("/"))
            return f"/{found.device.name}/PFI{(port - 1) * 8 + line_number}"
        raise NotImplementedError(f"channel attribute {attribute:#x}")

    def set_chan_attribute_string(self, task: int, channel: str, attribute: int, value: str) -> None:
        found = self._channel(task, channel)
        if attribute != CO_PULSE_TERM:
            raise NotImplementedError(f"channel attribute {attribute:#x}")
        text = value.rsplit("/", 1)[-1].upper()
        if not (text.startswith("PFI") and text[3:].isdigit() and found.device.pfi_line(int(text[3:]))):
            raise self._error(f"Source terminal to be routed could not be found on the device: {value}",
                              -89120, self._task(task), found)
        found.attributes[CO_PULSE_TERM] = value

    def get_read_attribute_string(self, task: int, attribute: int, size_hint: int = 0) -> str:
        if attribute == 0x1823:
            return self.get_task_attribute_string(task, 0x1273)
        raise NotImplementedError(f"read attribute {attribute:#x}")

    def get_read_attribute_uint32(self, task: int, attribute: int) -> int:
        sim_task = self._task(task)
        if attribute == 0x217C:
            return 1
        if attribute == 0x217B:
            return len(sim_task.channels)
        if attribute in (0x1223, 0x31E8):
            return sim_task.available(clock_ns()) - sim_task.read_position
        raise NotImplementedError(f"read attribute {attribute:#x}")

    def get_write_attribute_uint32(self, task: int, attribute: int) -> int:
        if attribute == 0x217E:
            return len(self._task(task).channels)
        if attribute == 0x217F:
            return 1
        raise NotImplementedError(f"write attribute {attribute:#x}")

    @property
    def driver_version(self) -> tuple[int, int, int]:
        return (26, 8, 0)

    # ----- system and devices ----------------------------------------------------------------------------
    def get_system_info_attribute_string(self, attribute: int) -> str:
        if attribute == 0x193B:
            return ", ".join(self.devices)
        raise NotImplementedError(f"system attribute {attribute:#x}")

    def get_system_info_attribute_uint32(self, attribute: int) -> int:
        versions = {0x1272: 26, 0x1923: 8, 0x2F22: 0}
        if attribute in versions:
            return versions[attribute]
        raise NotImplementedError(f"system attribute {attribute:#x}")

    def _device(self, device_name: str) -> SimulatedDevice:
        device = self.devices.get(device_name)
        if device is None:
            raise self._error("Device identifier is invalid.", INVALID_DEVICE, None, device_name)
        return device

    def get_device_attribute_string(self, device_name: str, attribute: int) -> str:
        device = self._device(device_name)
        lists = {
            0x231E: device.ai_channels, 0x231F: device.ao_channels, 0x2320: device.digital_lines,
            0x2322: device.digital_lines, 0x2324: [], 0x2325: device.counters,
            0x2321: [f"port{p}" for p in range(len(device.port_widths))],
            0x2323: [f"port{p}" for p in range(len(device.port_widths))],
        }
        if attribute == 0x631:
            return device.product_type
        if attribute in lists:
            return ", ".join(f"{device.name}/{name}" for name in lists[attribute])
        raise NotImplementedError(f"device attribute {attribute:#x}")

    def get_device_attribute_uint32(self, device_name: str, attribute: int) -> int:
        device = self._device(device_name)
        if attribute == 0x632:
            return device.serial_number
        raise NotImplementedError(f"device attribute {attribute:#x}")

    def get_device_attribute_int32(self, device_name: str, attribute: int) -> int:
        device = self._device(device_name)
        if attribute == 0x29A9:
            return device.product_category.value
        raise NotImplementedError(f"device attribute {attribute:#x}")

    def get_device_attribute_bool(self, device_name: str, attribute: int) -> bool:
        device = self._device(device_name)
        values = {0x22CA: True, 0x2996: device.ao_samp_clk_supported, 0x298F: device.ai_simultaneous_sampling}
        if attribute in values:
            return values[attribute]
        raise NotImplementedError(f"device attribute {attribute:#x}")

    def get_device_attribute_double(self, device_name: str, attribute: int) -> float:
        device = self._device(device_name)
        values = {0x298C: device.ai_max_single_chan_rate_hz, 0x298D: device.ai_max_multi_chan_rate_hz,
                  0x2997: device.ao_max_rate_hz, 0x298E: 0.1}
        if attribute in values:
            return values[attribute]
        raise NotImplementedError(f"device attribute {attribute:#x}")

    def get_device_attribute_double_array(self, device_name: str, attribute: int) -> list[float]:
        self._device(device_name)
        if attribute in (0x2990, 0x299B):
            return [-10.0, 10.0] if attribute == 0x299B else [-0.1, 0.1, -0.2, 0.2, -0.5, 0.5, -1.0, 1.0, -2.0,
                                                                2.0, -5.0, 5.0, -10.0, 10.0]
        raise NotImplementedError(f"device attribute {attribute:#x}")


def _not_modelled(name: str) -> Callable[..., Any]:
    def method(self: SimulatedNidaq, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"the simulated NI-DAQmx system does not model {name}()")

    method.__name__ = name
    return method


MODELLED_METHODS = frozenset(BaseInterpreter.__abstractmethods__ & set(vars(SimulatedNidaq)))
for _name in sorted(BaseInterpreter.__abstractmethods__ - MODELLED_METHODS):
    setattr(SimulatedNidaq, _name, _not_modelled(_name))
abc.update_abstractmethods(SimulatedNidaq)


def check_seam() -> None:
    """Fail loudly if the private seam this simulation relies on is not what it was written against."""
    problems = []
    if nidaqmx.__version__ != PINNED_NIDAQMX_VERSION:
        problems.append(f"nidaqmx is {nidaqmx.__version__}, the simulation was written against "
                        f"{PINNED_NIDAQMX_VERSION}")
    select = getattr(SEAM_MODULE, SEAM_FUNCTION, None)
    if select is None:
        problems.append(f"{SEAM_MODULE.__name__}.{SEAM_FUNCTION} is gone")
    elif list(inspect.signature(select).parameters) != ["grpc_options", "interpreter"]:
        problems.append(f"{SEAM_FUNCTION} takes {list(inspect.signature(select).parameters)}")
    for name in sorted(MODELLED_METHODS):
        ours_attr, theirs_attr = getattr(SimulatedNidaq, name), getattr(BaseInterpreter, name, None)
        if theirs_attr is None:
            problems.append(f"BaseInterpreter.{name} is gone")
            continue
        if isinstance(ours_attr, property) or isinstance(theirs_attr, property):
            if not (isinstance(ours_attr, property) and isinstance(theirs_attr, property)):
                problems.append(f"BaseInterpreter.{name} changed between property and method")
            continue
        ours = list(inspect.signature(ours_attr).parameters)
        theirs = list(inspect.signature(theirs_attr).parameters)
        if ours != theirs:
            problems.append(f"BaseInterpreter.{name}{tuple(theirs)} differs from the simulation's {tuple(ours)}")
    if problems:
        raise RuntimeError("nidaqmx's interpreter seam moved: " + "; ".join(problems))


def main(argv: list[str] | None = None) -> None:
    """``python -m hwlink.testing.nidaq_sim HWLINK-ARGS``: the hwlink CLI against a simulated Dev1 (PCIe-6363)
    whose port0/line0 is wired to port0/line1 and ao0 to ai0."""
    from hwlink.cli.main import cli  # the CLI sits on top of everything; only the demo entry point needs it

    device = SimulatedDevice(wiring={"port0/line1": "port0/line0", "ai0": "ao0"})
    with SimulatedNidaq([device]):
        cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="hwlink")


if __name__ == "__main__":
    main()
