"""The core of a script worker process: ports, lifecycle, timers and the channel to the engine.

Each script runs in a process of its own (started as ``python -m hwlink.runtime.worker CHANNEL``), so a script that
spins on the CPU, blocks, or crashes cannot stall driver timestamps in the engine or take the run down with
it. The engine talks to it over the channel it was started with (``hwlink.runtime.ipc``) in the typed
messages of ``hwlink.runtime.control``; the script's stdout/stderr are pipes the engine reads, so ``print``,
``println`` and tracebacks reach the terminal and the collection's log.

Lifecycle, as in Syntalos' pyworker: ``Load`` (module-level code runs here) -> ``Prepare`` (the script's
``prepare``) -> ``Start`` (clock from the engine's start time, ``start``, then ``run`` if defined) -> ``Stop``
(``stop``; input items arriving afterwards are dropped, as Syntalos drops its subscriptions) -> ``Shutdown``.
Callbacks run on the main thread while the script is in ``await_data``/``wait``/``wait_sec`` or the host's own
loop; delayed calls run in all of them.

Layers on the worker side: ``ports`` (ports, SyntalosPyError) <- ``host`` (this loop) <- ``mlink`` / ``oe`` /
``clocksync`` / ``storage`` (the script-facing APIs, each a ``ScriptForm`` for the host) <- ``worker`` (the
``__main__`` that wires them). Nothing here imports the layers above.
"""

from __future__ import annotations

import heapq
import itertools
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from hwlink import platform
from hwlink.clock import MasterClock
from hwlink.errors import HwlinkError
from hwlink.runtime import control as ctl
from hwlink.runtime.ipc import CONTROL, DATA, Channel, Message, data_message
from hwlink.runtime.ports import InputPort, OutputPort, SyntalosPyError
from hwlink.runtime.datatypes import DataType, decode, parse_data_type

_RUNTIME_DIR = str(Path(__file__).resolve().parent)
OUTBOX_FLUSH_BYTES = 1 << 16
GIL_SWITCH_INTERVAL_SEC = 0.0005  # the flusher thread gets to send within 0.5 ms even while the script computes
FATAL = (SystemExit, KeyboardInterrupt, GeneratorExit, AssertionError)


def format_user_traceback(error: BaseException) -> str:
    """The traceback without the runtime's own frames in front of the user's code."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_RUNTIME_DIR) and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb)).rstrip()


class ScriptForm(Protocol):
    """How one kind of script takes part in the lifecycle (PyScript functions, a standalone link, an Open
    Ephys processor class). Hooks return None when the script defines nothing for that step."""

    @property
    def async_start(self) -> bool: ...
    def prepare_hook(self) -> Callable[[], object] | None: ...
    def start_hook(self) -> Callable[[], object] | None: ...
    def run_hook(self) -> Callable[[], object] | None: ...
    def stop_hook(self) -> Callable[[], object] | None: ...
    def load_settings_hook(self) -> Callable[[bytes, Path], object] | None: ...
    def save_settings_hook(self) -> Callable[[Path], object] | None: ...


class Host:
    """Ports, lifecycle state, timers and the channel to the engine, for one script."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.inputs: dict[str, InputPort] = {}
        self.outputs: dict[str, OutputPort] = {}
        self._input_list: list[InputPort] = []
        self._output_list: list[OutputPort] = []
        self.module_name = ""
        self.node_id = 0
        self.settings: bytes | None = None
        self.base_dir = Path.cwd()
        self.collection_path: Path | None = None
        self.run_uuid = b""
        self.clock: MasterClock | None = None
        self.running = False
        self.stopped = False  # the run's Stop was handled: input items are dropped from here on
        self.shutdown_requested = False
        self.failed = False
        self.form: ScriptForm | None = None
        self.link: Any = None  # the scripting API's own state (mlink's SyntalosLink)
        self._timers: list[tuple[float, int, Callable[[], object]]] = []
        self._timer_sequence = itertools.count()
        self._pending: deque[Message] = deque()
        self._loaded_sent = False
        self._run_pending = False
        self._storage_reply: ctl.StorageReply | None = None
        self.on_stopped: list[Callable[[], object]] = []  # hwlink's own clean-up when the run stops (tsync files)
        self.last_activity = time.monotonic()  # when the main thread last served the channel
        self._outbox = bytearray()
        self._outbox_lock = threading.Lock()
        self._send_order = threading.RLock()
        self._outbox_ready = threading.Event()
        self._handlers: dict[type, Callable[[Any], None]] = {
            ctl.InputMetadata: self._on_metadata,
            ctl.Connected: self._on_connected,
            ctl.Prepare: self._on_prepare,
            ctl.Start: self._on_start,
            ctl.Stop: self._on_stop,
            ctl.Shutdown: self._on_shutdown,
            ctl.StorageReply: self._on_storage_reply,
        }
        threading.Thread(target=self._flush_soon, name="hwlink-flush", daemon=True).start()

    # ----- ports --------------------------------------------------------------------------------------------
    def register_port(self, direction: str, name: str, data_type: DataType | str | int) -> InputPort | OutputPort:
        try:
            kind = data_type if isinstance(data_type, DataType) else (
                DataType(int(data_type)) if isinstance(data_type, int) else parse_data_type(str(data_type)))
        except (ValueError, HwlinkError) as error:
            raise SyntalosPyError(str(error)) from None
        registry, ordered, cls = ((self.inputs, self._input_list, InputPort) if direction == "in"
                                  else (self.outputs, self._output_list, OutputPort))
        existing = registry.get(name)
        if existing is not None:
            if existing.data_type != kind:
                what = "input" if direction == "in" else "output"
                raise SyntalosPyError(f"Can not register {what} port. A port with ID '{name}', but different data "
                                      f"type, already exists.")
            return existing
        port = cls(self, name, kind, len(ordered))
        registry[name] = port  # type: ignore[assignment]
        ordered.append(port)  # type: ignore[arg-type]
        if self._loaded_sent:
            self.send_control(ctl.PortAdded(direction, name, int(kind)))
        return port

    # ----- messages -----------------------------------------------------------------------------------------
    def send_data(self, index: int, data_type: DataType, payload: bytes) -> None:
        """Queue an item; it leaves when the script next waits for data, or at once via the flusher thread.

        Why: one socket write per item costs ~10 µs (waking the reader), so a script submitting in a loop would
        be limited to ~100 k items/s; in batches the socket takes several times that. A script that submits from
        ``on_data`` loses nothing: the batch goes out as soon as the callback returns to the loop.
        """
        message = data_message(index, int(data_type), payload)
        with self._outbox_lock:
            self._outbox += message
            size = len(self._outbox)
        if size >= OUTBOX_FLUSH_BYTES:
            self.flush()
        elif size == len(message):
            self._outbox_ready.set()

    def flush(self) -> None:
        """Send what is queued; the order lock keeps data ahead of any control message sent after it."""
        with self._send_order:
            with self._outbox_lock:
                if not self._outbox:
                    return
                data = bytes(self._outbox)
                self._outbox.clear()
            self.channel.send(data)

    def _flush_soon(self) -> None:
        """Flusher thread: sends items a script queued while it runs its own code (e.g. submit, then sleep)."""
        while True:
            self._outbox_ready.wait()
            self._outbox_ready.clear()
            try:
                self.flush()
            except OSError:
                return

    def send_control(self, message: ctl.ControlMessage) -> None:
        with self._send_order:
            self.flush()
            self.channel.send_control(message)

    def send_loaded(self) -> None:
        """Tell the engine the script is loaded, with every port it has by now."""
        if self._loaded_sent:
            return
        self._loaded_sent = True
        self.send_control(ctl.Loaded(
            inputs=[(p.name, int(p.data_type)) for p in self._input_list],
            outputs=[(p.name, int(p.data_type)) for p in self._output_list],
        ))

    def report_error(self, message: str, explicit: bool = False) -> None:
        """The first error fails the module (``explicit``: raise_error, which always stops the run); later ones
        are only printed."""
        if self.failed:
            print(message, file=sys.stderr, flush=True)
            return
        self.failed = True
        self.send_control(ctl.Failed(message, explicit))

    def guarded(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call user code; an exception fails the run with the user's traceback."""
        try:
            return function(*args)
        except FATAL as error:
            self.report_error(format_user_traceback(error))
            self.shutdown_requested = True
            raise
        except Exception as error:
            self.report_error(format_user_traceback(error))
            return None

    # ----- the loop -----------------------------------------------------------------------------------------
    def call_later(self, delay_sec: float, function: Callable[[], object]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay_sec, next(self._timer_sequence), function))

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, function = heapq.heappop(self._timers)
            self.guarded(function)

    def _receive(self, timeout: float | None) -> list[Message]:
        if self._pending:
            messages = list(self._pending)
            self._pending.clear()
            return messages
        try:
            return self.channel.receive(timeout)
        except (EOFError, OSError):
            # The engine is gone: nothing left to serve.
            sys.stdout.flush()
            os._exit(3)

    def pump(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` s (None: until something happens) and handle what arrived and what is due."""
        self.last_activity = time.monotonic()
        self.flush()
        if self._timers:
            until_timer = max(self._timers[0][0] - time.monotonic(), 0.0)
            timeout = until_timer if timeout is None else min(timeout, until_timer)
        for message in self._receive(timeout):
            self.last_activity = time.monotonic()
            self._dispatch(message)
        self._run_due_timers()
        self.flush()  # what the callbacks submitted goes out before the script's own code runs again
        self.last_activity = time.monotonic()

    def pump_until_after(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.shutdown_requested:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.pump(remaining)

    def serve(self, event_fn: Callable[[], object] | None = None) -> None:
        """The worker's own loop: until shutdown, run ``run()`` when started, else serve messages."""
        self.send_loaded()
        while not self.shutdown_requested:
            if self._run_pending:
                self._run_pending = False
                run = self.form.run_hook() if self.form is not None else None
                if run is not None:
                    self.guarded(run)
                continue
            if event_fn is None:
                self.pump(None)
            else:
                self.pump(0.025)
                self.guarded(event_fn)

    def _dispatch(self, message: Message) -> None:
        if message.kind == DATA:
            if self.stopped or self.failed:
                return
            port = self._input_list[message.port]
            callback = port.on_data
            if callback is not None:
                self.guarded(callback, decode(port.data_type, message.payload))
        elif message.kind == CONTROL:
            command = message.control()
            self._handlers[type(command)](command)

    def storage_request(self, op: str, explicit: bool = True, **fields: Any) -> dict[str, Any]:
        """Ask the engine to create or register something in the collection and wait for its answer (other
        messages arriving meanwhile are handled afterwards, in order)."""
        self.send_control(ctl.StorageRequest(op, fields, explicit))
        while self._storage_reply is None:
            try:
                messages = self.channel.receive(None)
            except (EOFError, OSError):
                os._exit(3)
            for message in messages:
                command = message.control() if message.kind == CONTROL else None
                if isinstance(command, ctl.StorageReply):
                    self._storage_reply = command
                else:
                    self._pending.append(message)
        reply, self._storage_reply = self._storage_reply, None
        if reply.error is not None:
            raise SyntalosPyError(reply.error)
        return reply.fields

    # ----- control messages from the engine -----------------------------------------------------------------
    def _on_storage_reply(self, reply: ctl.StorageReply) -> None:
        self._storage_reply = reply

    def _on_metadata(self, message: ctl.InputMetadata) -> None:
        if message.port in self.inputs:
            self.inputs[message.port]._metadata = dict(message.metadata)

    def _on_connected(self, message: ctl.Connected) -> None:
        for port in self._output_list:
            port.connected = port.name in message.outputs
        for name, source in message.sources.items():
            if name in self.inputs:
                self.inputs[name].source = source

    def _on_prepare(self, message: ctl.Prepare) -> None:
        self.collection_path = Path(message.collection_path)
        self.run_uuid = message.run_uuid
        self.module_name = message.module_name
        form = self.form
        if not self.failed and form is not None:
            load_settings = form.load_settings_hook()
            if load_settings is not None and self.settings is not None:
                if self.guarded(load_settings, self.settings, self.base_dir) is False:
                    self.report_error("Module settings could not be loaded (on_load_settings returned False)")
            hook = form.prepare_hook()
            if hook is not None and not self.failed:
                result = self.guarded(hook)
                if result is not None and not result and not self.failed:
                    self.report_error("Module preparation failed (prepare() returned False)")
        if not self.failed:
            self.send_control(ctl.Ready())

    def _on_start(self, message: ctl.Start) -> None:
        self.clock = MasterClock(message.start_ns)
        self.running = True
        if self.failed or self.form is None:
            self.send_control(ctl.Started())  # failed: the engine is stopping anyway; do not make it wait
            return
        hook = self.form.start_hook()
        async_start = self.form.async_start
        if async_start:
            self.send_control(ctl.Started())
        if hook is not None:
            self.guarded(hook)
        if not async_start:
            self.send_control(ctl.Started())
        if self.form.run_hook() is not None:
            self._run_pending = True

    def _on_stop(self, message: ctl.Stop | None = None) -> None:
        was_running, self.running = self.running, False
        self.stopped = True
        self._run_pending = False
        form = self.form
        if was_running and not self.failed and form is not None:
            hook = form.stop_hook()
            if hook is not None:
                self.guarded(hook)
        for clean_up in self.on_stopped:
            self.guarded(clean_up)
        save_settings = form.save_settings_hook() if form is not None else None
        if save_settings is not None and self.collection_path:
            data = self.guarded(save_settings, self.base_dir)
            if isinstance(data, (bytes, bytearray)):
                self.send_control(ctl.SavedSettings(bytes(data)))
        sys.stdout.flush()
        sys.stderr.flush()
        self.send_control(ctl.Stopped())

    def _on_shutdown(self, message: ctl.Shutdown | None = None) -> None:
        self.running = False
        self.shutdown_requested = True

    def set_status(self, message: str) -> None:
        self.send_control(ctl.Status(message))

    # ----- extras -----------------------------------------------------------------------------------------------
    def rename_process(self) -> None:
        platform.set_process_name(self.module_name or "hwlink-script")


WATCH_INTERVAL_SEC = 0.1
STALL_SEC = 0.3  # not serving the channel for this long while running ...
BUSY_SHARE = 0.6  # ... and wanting the CPU this much of the time: the script spins


def watch_for_spinning(host: Host) -> None:
    """Tell the engine when the script spins on the CPU outside ``await_data`` (and when it is back).

    The engine then lowers the worker's CPU priority, so on a machine with few cores a spinning script cannot
    delay the driver threads that stamp readings; a script that is busy serving data is never flagged. Runs on
    a thread of its own, which gets the GIL from a spinning main thread every switch interval.
    """
    flagged = False

    def busy_seconds() -> float:
        runnable = platform.main_thread_runnable_sec()
        return time.process_time() if runnable is None else runnable

    last_time, last_busy = time.monotonic(), busy_seconds()
    while not host.shutdown_requested:
        time.sleep(WATCH_INTERVAL_SEC)
        now, busy = time.monotonic(), busy_seconds()
        share = (busy - last_busy) / max(now - last_time, 1e-6)
        last_time, last_busy = now, busy
        stalled = host.running and now - host.last_activity > STALL_SEC
        try:
            if stalled and share > BUSY_SHARE and not flagged:
                flagged = True
                host.send_control(ctl.Busy(share))
            elif flagged and not stalled:
                flagged = False
                host.send_control(ctl.Serving())
        except OSError:
            return
