"""Engine side of script modules (``script`` and ``oe-processor``): one worker process each.

The engine starts ``python -m hwlink.runtime.host CHANNEL`` with its end of a channel (``hwlink.platform.start_worker``:
an inherited socket, or loopback TCP where there is none to inherit), sends it the script and
its ports, and relays stream items both ways (``hwlink.runtime.ipc``). A reader thread per worker turns its
messages into emits on the module's output ports; items for the worker are encoded on the producer's thread
and sent without blocking it. The worker's stdout and stderr are pipes read line by line into the terminal
and the collection's log.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any

from hwlink import platform
from hwlink.runtime.experiment import ModuleSpec, Settings
from hwlink.runtime.ipc import CONTROL, DATA, Channel, Message, data_message
from hwlink.runtime.module import InPort, Module, RunContext
from hwlink.runtime.types import DataType, decode, encode, parse_data_type

LOAD_TIMEOUT_SEC = 60.0
PREPARE_TIMEOUT_SEC = 60.0
STOP_TIMEOUT_SEC = 5.0
EXIT_TIMEOUT_SEC = 3.0
LOW_PRIORITY_NICE = 19
DEFAULT_MAX_BACKLOG_MB = 256  # queued for a script that does not keep up: then the run stops, rather than run
#                               the machine out of memory and lose everything


class WorkerFailed(Exception):
    """The worker reported an error or died while the engine waited for it."""


class ScriptModule(Module):
    """A Syntalos-style Python script (``syntalos_mlink`` API) in its own process."""

    kind = "script"
    description = "Python script"
    dynamic_ports = True
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
        self._events = {name: threading.Event() for name in ("loaded", "ready", "started", "stopped")}
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
        self._process, engine_end = platform.start_worker(["-m", "hwlink.runtime.host"], env=env, cwd=os.getcwd())
        if self.nice:
            platform.set_nice(self._process.pid, self._base_priority)
        self._channel = Channel(engine_end, blocking_send=False)
        self._spawn(self._read_messages, "messages")
        self._spawn(lambda: self._read_output(self._process.stdout, "stdout"), "stdout")  # type: ignore[union-attr]
        self._spawn(lambda: self._read_output(self._process.stderr, "stderr"), "stderr")  # type: ignore[union-attr]
        self._channel.send_control(
            "load", script=str(self.script), module_name=self.name, base_dir=str(self.spec.file.directory),
            settings=self._settings_bytes, processor_class=self.processor_class, cpu_guard=self.cpu_guard,
            inputs=[(name, int(port.data_type)) for name, port in self.inputs.items()],  # type: ignore[arg-type]
            outputs=[(name, int(port.data_type)) for name, port in self.outputs.items()],  # type: ignore[arg-type]
        )

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
        verb, fields = message.control()
        if verb == "loaded":
            self._adopt_ports(fields["inputs"], fields["outputs"])
            self._events["loaded"].set()
        elif verb == "port":
            self._adopt_port(fields["direction"], fields["name"], DataType(fields["data_type"]))
        elif verb == "out-metadata":
            port = self.outputs.get(fields["port"])
            if port is not None:
                port.set_metadata(fields["metadata"])
        elif verb in ("ready", "started", "stopped"):
            self._events[verb].set()
        elif verb == "error":
            self._fail(fields["message"], explicit=fields.get("explicit", False))
        elif verb == "throttle":
            port = self.inputs.get(fields["port"])
            if port is not None:
                port.set_throttle(int(fields["items_per_sec"]))
        elif verb == "edl":
            self._answer_storage(fields)
        elif verb == "settings":
            self.ctx.save_settings(self.name, fields["data"])
        elif verb == "busy":
            self._set_priority(True, f"script spins outside await_data ({fields['share']:.0%} of a core): "
                                                  "running it at low priority so driver timestamps stay on time")
        elif verb == "serving":
            self._set_priority(False, "script serves data again: normal priority")
        elif verb == "status":
            self.ctx.log(self.name, f"status: {fields['message']}", "status")

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

    def _answer_storage(self, fields: dict[str, Any]) -> None:
        assert self._channel is not None
        try:
            reply = self.ctx.storage_request(self.name, fields)
        except Exception as error:
            reply = {"error": str(error)}
        self._channel.send_control("edl-reply", **reply)

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

    def _wait(self, event: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not self._events[event].wait(0.05):
            if self.ctx.forced or self._failed:
                break
            if time.monotonic() > deadline:
                self._fail(f"script did not {what} within {timeout:.0f} s")
                break
        if self._failed:
            raise WorkerFailed(self.name)

    # ----- lifecycle --------------------------------------------------------------------------------------
    def wait_loaded(self) -> None:
        self._wait("loaded", LOAD_TIMEOUT_SEC, "load")

    def prepare(self) -> None:
        assert self._channel is not None
        self._channel.send_control("connected", outputs=[n for n, p in self.outputs.items() if p.targets])
        for port in self.inputs.values():
            if port.source is not None and port.source.metadata:
                self.input_metadata(port, port.source.metadata)
        collection = self.ctx.collection
        self._channel.send_control("prepare", collection_path=str(collection.path) if collection else "",
                                   run_uuid=self.ctx.run_uuid, module_name=self.name)
        self._wait("ready", PREPARE_TIMEOUT_SEC, "prepare")

    def input_metadata(self, port: InPort, metadata: dict[str, Any]) -> None:
        if self._channel is not None:
            self._channel.send_control("metadata", port=port.name, metadata=metadata)

    def start(self) -> None:
        assert self._channel is not None
        self._channel.send_control("start", start_ns=self.ctx.clock.start_ns)
        self._wait("started", PREPARE_TIMEOUT_SEC, "start")

    def stop(self) -> None:
        if self._channel is None or self._process is None or self._process.poll() is not None:
            return
        try:
            self._channel.send_control("stop")
        except OSError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_SEC
        while not self._events["stopped"].wait(0.05):
            if self.ctx.forced or time.monotonic() > deadline or self._process.poll() is not None:
                if self._process.poll() is None:
                    self.ctx.log(self.name, "script did not stop (busy outside await_data?): ending it", "engine")
                    self._closing = True
                    self._process.kill()
                break

    def close(self) -> None:
        self._closing = True
        if self._process is not None:
            if self._process.poll() is None and self._channel is not None:
                try:
                    self._channel.send_control("shutdown")
                except OSError:
                    pass
                try:
                    self._process.wait(timeout=0 if self.ctx.forced else EXIT_TIMEOUT_SEC)
                except subprocess.TimeoutExpired:
                    self._process.kill()
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

    def _declare_ports(self, settings: Settings) -> None:
        self.processor_class = settings.text("class", "PyProcessor")
        self._add_worker_input("signals-in", DataType.SignalBlockF32)
        self._add_worker_input("events-in", DataType.LineReading)
        self._add_worker_input("spikes-in", DataType.TableRow)
        self.add_output("signals-out", DataType.SignalBlockF32)
        self.add_output("events-out", DataType.LineReading)
