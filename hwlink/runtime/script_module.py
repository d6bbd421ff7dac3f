"""Engine side of script modules (``script``, ``python-module`` and ``oe-processor``): one worker process each.

The engine starts ``python -m hwlink.runtime.worker CHANNEL`` with its end of a channel
(``hwlink.platform.start_worker``: an inherited socket, or loopback TCP where there is none to inherit), sends it
the script and its ports, and relays stream items both ways (``hwlink.runtime.ipc``); control messages are the
typed vocabulary of ``hwlink.runtime.control``. A reader thread per worker turns its
messages into emits on the module's output ports; items for the worker are encoded on the producer's thread
and sent without blocking it. The worker's stdout and stderr are pipes read line by line into the terminal
and the collection's log.

A worker never holds the run hostage: ``stop`` only sends Stop (every worker gets it at once), ``wait_stopped``
waits until the run's stop deadline (the experiment's grace period after the stop request) and then kills
the worker, saying which and why; a worker stuck while loading, preparing or starting is given up as soon as
a stop is requested and killed at the same deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any

from hwlink.runtime import control as ctl
from hwlink import platform
from hwlink.runtime.experiment import ModuleSpec, Settings
from hwlink.runtime.ipc import CONTROL, DATA, Channel, Message, data_message
from hwlink.runtime.module import InPort, Module, RunContext
from hwlink.runtime.datatypes import DataType, decode, encode, parse_data_type

LOAD_TIMEOUT_SEC = 60.0
PREPARE_TIMEOUT_SEC = 60.0
LOW_PRIORITY_NICE = 19
DEFAULT_MAX_BACKLOG_MB = 256  # queued for a script that does not keep up: then the run stops, rather than run
#                               the machine out of memory and lose everything


class WorkerFailed(Exception):
    """The worker reported an error or died while the engine waited for it, or the run is stopping."""


class ScriptModule(Module):
    """A Syntalos-style Python script (``syntalos_mlink`` API) in its own process."""

    kind = "script"
    description = "Python script"
    dynamic_ports = True
    form = "script"  # how the worker runs it (hwlink.runtime.worker)
    processor_class: str | None = None  # the Open Ephys kind names its processor class

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        settings = Settings(spec)
        self.script = settings.path("script")
        if not self.script.is_file():
            raise settings.error("script", f"script {self.script} is not a file")
        self._declare_ports(settings)
        self.nice = settings.integer("nice", 0, minimum=0)
        if self.nice > 19:
            raise settings.error("nice", "nice must be 0..19")
        self.cpu_guard = settings.raw("cpu_guard", True)
        if not isinstance(self.cpu_guard, bool):
            raise settings.error("cpu_guard", "cpu_guard must be true or false")
        self.max_backlog_bytes = settings.integer("max_backlog_mb", DEFAULT_MAX_BACKLOG_MB, minimum=1) << 20
        self.on_error = settings.text("on_error", "stop")
        if self.on_error not in ("stop", "continue"):
            raise settings.error("on_error", 'on_error must be "stop" or "continue"')
        raw_settings = settings.raw("settings")
        settings.finish(self.description)
        if raw_settings is None:
            self._settings_bytes: bytes | None = None
        elif isinstance(raw_settings, str):
            self._settings_bytes = raw_settings.encode()
        else:
            self._settings_bytes = json.dumps(raw_settings).encode()
        self._in_index: dict[str, int] = {}
        self._out_order: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
        self._threads: list[threading.Thread] = []
        self._events = {cls: threading.Event() for cls in (ctl.Loaded, ctl.Ready, ctl.Started, ctl.Stopped)}
        self._phase = "loading"  # what the worker is doing, for the log when it has to be killed
        self._killed = False
        self._closing = False
        self._base_priority = platform.own_nice() + self.nice
        self._failed = False
        self.exit_code: int | None = None

    def _declare_ports(self, settings: Settings) -> None:
        for key, add in (("inputs", self._add_worker_input), ("outputs", self.add_output)):
            for port, type_name in settings.table(key, {}).items():
                try:
                    add(port, parse_data_type(type_name))
                except Exception as error:
                    raise settings.error(key, f"port {port!r}: {error}") from None

    def _add_worker_input(self, name: str, data_type: DataType) -> InPort:
        return self.add_input(name, data_type, self._send_item)

    # ----- the worker process ---------------------------------------------------------------------------
    def load(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", SYNTALOS_MODULE_ID=f"{self.kind}_{self.name}")
        self._process, engine_end = platform.start_worker(["-m", "hwlink.runtime.worker"], env=env, cwd=os.getcwd())
        if self.nice:
            platform.set_nice(self._process.pid, self._base_priority)
        self._channel = Channel(engine_end, blocking_send=False)
        self._spawn(self._read_messages, "messages")
        self._spawn(lambda: self._read_output(self._process.stdout, "stdout"), "stdout")  # type: ignore[union-attr]
        self._spawn(lambda: self._read_output(self._process.stderr, "stderr"), "stderr")  # type: ignore[union-attr]
        self._channel.send_control(ctl.Load(
            script=str(self.script), module_name=self.name, base_dir=str(self.spec.file.directory), form=self.form,
            inputs=[(name, int(port.data_type)) for name, port in self.inputs.items()],  # type: ignore[arg-type]
            outputs=[(name, int(port.data_type)) for name, port in self.outputs.items()],  # type: ignore[arg-type]
            settings=self._settings_bytes, processor_class=self.processor_class, cpu_guard=self.cpu_guard,
            node_id=self.ctx.node_id(self.name),
        ))

    def _spawn(self, target: Any, what: str) -> None:
        thread = threading.Thread(target=target, name=f"hwlink-{self.name}-{what}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read_output(self, stream: Any, which: str) -> None:
        for raw in iter(stream.readline, b""):
            self.ctx.log(self.name, raw.decode(errors="replace").rstrip("\n"), which)
        stream.close()

    def _read_messages(self) -> None:
        assert self._channel is not None
        try:
            while True:
                for message in self._channel.receive(None):
                    try:
                        self._handle(message)
                    except Exception as error:  # a bad message must not end the reader (the worker would hang)
                        self._fail(f"cannot handle a message from the script: {error!r}")
        except (EOFError, OSError):
            pass
        if not self._closing and not self._failed:
            try:
                code = self._process.wait(timeout=5) if self._process else None
            except subprocess.TimeoutExpired:
                code = None
            self._fail(f"script process exited unexpectedly (exit code {code})")
        for event in self._events.values():
            event.set()

    def _fail(self, message: str, explicit: bool = False) -> None:
        """Fail the run, or with ``on_error = "continue"`` only this module once the run has started (a script's
        ``raise_error`` always stops the run: it asks for exactly that)."""
        self._failed = True
        if self.on_error == "continue" and not explicit and self.ctx.clock_running:
            self.ctx.log(self.name, f"FAILED, the run continues without it: {message}", "error")
        else:
            self.ctx.fail(self.name, message)
        for event in self._events.values():
            event.set()

    def _handle(self, message: Message) -> None:
        if message.kind == DATA:
            if message.port >= len(self._out_order):
                return  # submitted by module-level code before the ports were known: nothing is connected yet
            port = self.outputs[self._out_order[message.port]]
            if port.targets:
                port.emit(decode(port.data_type, message.payload))  # type: ignore[arg-type]
            return
        if message.kind != CONTROL:
            return
        command = message.control()
        handler = self._HANDLERS.get(type(command))
        if handler is None:
            raise ValueError(f"unexpected control message {command!r}")
        handler(self, command)

    def _on_loaded(self, message: ctl.Loaded) -> None:
        self._adopt_ports(message.inputs, message.outputs)
        self._events[ctl.Loaded].set()

    def _on_port(self, message: ctl.PortAdded) -> None:
        self._adopt_port(message.direction, message.name, DataType(message.data_type))

    def _on_out_metadata(self, message: ctl.OutputMetadata) -> None:
        port = self.outputs.get(message.port)
        if port is not None:
            port.set_metadata(message.metadata)

    def _on_step_done(self, message: ctl.Ready | ctl.Started | ctl.Stopped) -> None:
        self._events[type(message)].set()

    def _on_failed(self, message: ctl.Failed) -> None:
        self._fail(message.message, explicit=message.explicit)

    def _on_throttle(self, message: ctl.Throttle) -> None:
        port = self.inputs.get(message.port)
        if port is not None:
            port.set_throttle(int(message.items_per_sec))

    def _on_settings(self, message: ctl.SavedSettings) -> None:
        self.ctx.save_settings(self.name, message.data)

    def _on_busy(self, message: ctl.Busy) -> None:
        self._set_priority(True, f"script spins outside await_data ({message.share:.0%} of a core): "
                                 "running it at low priority so driver timestamps stay on time")

    def _on_serving(self, message: ctl.Serving) -> None:
        self._set_priority(False, "script serves data again: normal priority")

    def _on_status(self, message: ctl.Status) -> None:
        self.ctx.log(self.name, f"status: {message.message}", "status")

    def _answer_storage(self, message: ctl.StorageRequest) -> None:
        assert self._channel is not None
        try:
            reply = ctl.StorageReply(self.ctx.storage_request(self.name, message.op, message.fields,
                                                              message.explicit))
        except Exception as error:
            reply = ctl.StorageReply({}, str(error))
        self._channel.send_control(reply)

    _HANDLERS: dict[type, Any] = {
        ctl.Loaded: _on_loaded,
        ctl.PortAdded: _on_port,
        ctl.OutputMetadata: _on_out_metadata,
        ctl.Ready: _on_step_done,
        ctl.Started: _on_step_done,
        ctl.Stopped: _on_step_done,
        ctl.Failed: _on_failed,
        ctl.Throttle: _on_throttle,
        ctl.StorageRequest: _answer_storage,
        ctl.SavedSettings: _on_settings,
        ctl.Busy: _on_busy,
        ctl.Serving: _on_serving,
        ctl.Status: _on_status,
    }

    def _adopt_ports(self, inputs: list[tuple[str, int]], outputs: list[tuple[str, int]]) -> None:
        for name, data_type in inputs:
            self._adopt_port("in", name, DataType(data_type))
        for name, data_type in outputs:
            self._adopt_port("out", name, DataType(data_type))

    def _adopt_port(self, direction: str, name: str, data_type: DataType) -> None:
        """Ports the script registered itself; the worker numbers ports in registration order."""
        if direction == "in":
            if name not in self.inputs:
                self._add_worker_input(name, data_type)
            self._in_index.setdefault(name, len(self._in_index))
        else:
            if name not in self.outputs:
                self.add_output(name, data_type)
            if name not in self._out_order:
                self._out_order.append(name)

    def _set_priority(self, low: bool, why: str) -> None:
        """Low: Linux' SCHED_IDLE policy (a waking driver thread preempts the script at once; nice 19 or the idle
        priority class elsewhere, see hwlink.platform.lower_priority). Going back needs privileges a user may
        not have; then the script stays low."""
        if self._process is None:
            return
        pid = self._process.pid
        try:
            if low:
                platform.lower_priority(pid, LOW_PRIORITY_NICE)
            else:
                platform.restore_priority(pid, self._base_priority)
        except OSError:
            return
        self.ctx.log(self.name, why, "engine")

    def _send_item(self, port: InPort, item: Any) -> None:
        if self._channel is None or self._failed:
            return
        data_type = port.data_type
        if self._channel.backlog_bytes > self.max_backlog_bytes:
            self._fail(f"script does not keep up with its input: {self._channel.backlog_bytes >> 20} MB queued for "
                       "it (max_backlog_mb)")
            return
        try:
            self._channel.send(data_message(self._in_index[port.name], int(data_type),  # type: ignore[arg-type]
                                            encode(data_type, item)))  # type: ignore[arg-type]
        except (BrokenPipeError, ConnectionError, ValueError):
            pass  # the reader thread reports the dead worker

    def _wait(self, event: type, timeout: float, what: str) -> None:
        """Wait for the worker to finish a step; give up when the run is stopping (the worker is then killed at
        the stop deadline if it does not end by itself)."""
        deadline = time.monotonic() + timeout
        while not self._events[event].wait(0.05):
            if self._failed:
                break
            if self.ctx.stopping:
                raise WorkerFailed(self.name)
            if time.monotonic() > deadline:
                self._fail(f"script did not {what} within {timeout:.0f} s")
                break
        if self._failed:
            raise WorkerFailed(self.name)

    # ----- lifecycle --------------------------------------------------------------------------------------
    def wait_loaded(self) -> None:
        self._wait(ctl.Loaded, LOAD_TIMEOUT_SEC, "load")

    def prepare(self) -> None:
        assert self._channel is not None
        self._phase = "preparing"
        sources = {name: (self.ctx.node_id(port.source.module.name), str(port.source))
                   for name, port in self.inputs.items() if port.source is not None}
        self._channel.send_control(ctl.Connected([n for n, p in self.outputs.items() if p.targets], sources))
        for port in self.inputs.values():
            if port.source is not None and port.source.metadata:
                self.input_metadata(port, port.source.metadata)
        collection = self.ctx.collection
        self._channel.send_control(ctl.Prepare(str(collection.path) if collection else "", self.ctx.run_uuid,
                                               self.name))
        self._wait(ctl.Ready, PREPARE_TIMEOUT_SEC, "prepare")

    def input_metadata(self, port: InPort, metadata: dict[str, Any]) -> None:
        if self._channel is not None:
            self._channel.send_control(ctl.InputMetadata(port.name, metadata))

    def start(self) -> None:
        assert self._channel is not None
        self._phase = "starting"
        self._channel.send_control(ctl.Start(self.ctx.clock.start_ns))
        self._wait(ctl.Started, PREPARE_TIMEOUT_SEC, "start")
        self._phase = "running"

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Send Stop and return at once: every module gets the stop request together."""
        if self._channel is None or not self._alive():
            return
        self._phase = "stopping"
        try:
            self._channel.send_control(ctl.Stop())
        except OSError:
            pass

    def wait_stopped(self) -> None:
        """Wait for the worker's stop() to finish, until the run's stop deadline; then kill it."""
        if self._phase != "stopping":
            return
        while not self._events[ctl.Stopped].wait(0.02):
            if not self._alive():
                return
            if self.ctx.forced or time.monotonic() >= self.ctx.stop_deadline:
                self._kill("did not stop")
                return

    def _kill(self, what: str) -> None:
        if self._killed or not self._alive() or self._process is None:
            return
        self._closing = True
        self._killed = True
        self._process.kill()
        if self.ctx.forced:
            why = "the stop was forced (second Ctrl-C)"
        else:
            why = f"within the grace period ({self.ctx.grace_period_sec:g} s) after the stop request"
        where = {"stopping": "still in stop() or busy outside await_data",
                 "running": "busy outside await_data"}.get(self._phase, f"still {self._phase}")
        self.ctx.log(self.name, f"killed: the script {what} {why} ({where})", "error")

    def request_close(self) -> None:
        """Ask the worker to exit (it is killed at ``close`` if it has not by then)."""
        self._closing = True
        if self._channel is not None and self._alive():
            try:
                self._channel.send_control(ctl.Shutdown())
            except OSError:
                pass

    def close(self) -> None:
        self._closing = True
        # a worker that stopped cleanly gets a moment to exit; one stuck in a step only the grace period
        deadline = self.ctx.close_deadline if self._events[ctl.Stopped].is_set() else self.ctx.stop_deadline
        if self._process is not None:
            while self._alive():
                if self.ctx.forced or time.monotonic() >= deadline:
                    self._kill("did not end")
                    break
                try:
                    self._process.wait(timeout=0.02)
                except subprocess.TimeoutExpired:
                    pass
            self.exit_code = self._process.wait()
        for thread in self._threads:
            thread.join(timeout=2)
        if self._channel is not None:
            self._channel.close()


class OEProcessorModule(ScriptModule):
    """An Open Ephys Python Processor script: ``process(data)`` on channels x samples blocks."""

    kind = "oe-processor"
    description = "Open Ephys processor"
    dynamic_ports = False
    form = "oe-processor"

    def _declare_ports(self, settings: Settings) -> None:
        self.processor_class = settings.text("class", "PyProcessor")
        self._add_worker_input("signals-in", DataType.SignalBlockF32)
        self._add_worker_input("events-in", DataType.LineReading)
        self._add_worker_input("spikes-in", DataType.TableRow)
        self.add_output("signals-out", DataType.SignalBlockF32)
        self.add_output("events-out", DataType.LineReading)


class PythonModule(ScriptModule):
    """A standalone Python module as Syntalos runs one (``type = "python"``): the script is the main program,
    calls ``syntalos_mlink.init_link()`` itself and serves the run with ``await_data_forever()``."""

    kind = "python-module"
    description = "standalone Python module"
    form = "python-module"
