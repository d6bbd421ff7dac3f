"""The script worker process: ``python -m hwlink.runtime.host CHANNEL`` runs one script module of an experiment.

Each script runs in a process of its own, so a script that spins on the CPU, blocks, or crashes cannot stall
driver timestamps in the engine or take the run down with it. The engine talks to it over the socket named by
CHANNEL (``hwlink.platform.start_worker``, ``hwlink.runtime.ipc``); the script's stdout/stderr are pipes the
engine reads, so ``print``, ``println`` and tracebacks reach the terminal and the collection's log.

Lifecycle, as in Syntalos' pyworker: ``load`` (module-level code runs here) -> ``prepare`` (script
``prepare()``) -> ``start`` (clock from the engine's start time, ``start()``, then ``run()`` if defined) ->
``stop`` (``stop()``) -> ``shutdown``. Callbacks run on the main thread while the script is in
``await_data``/``wait``/``wait_sec`` or the host's own loop; delayed calls run in all of them.
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
from typing import Any

from hwlink import platform
from hwlink.clock import MasterClock
from hwlink.errors import HwlinkError
from hwlink.runtime import mlink
from hwlink.runtime.ipc import CONTROL, DATA, Channel, Message, data_message
from hwlink.runtime.types import DataType, decode, parse_data_type

_RUNTIME_DIR = str(Path(__file__).resolve().parent)
OUTBOX_FLUSH_BYTES = 1 << 16
GIL_SWITCH_INTERVAL_SEC = 0.0005  # the flusher thread gets to send within 0.5 ms even while the script computes
_FATAL = (SystemExit, KeyboardInterrupt, GeneratorExit, AssertionError)


def format_user_traceback(error: BaseException) -> str:
    """The traceback without the runtime's own frames in front of the user's code."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_RUNTIME_DIR) and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb)).rstrip()


class Host:
    """Ports, lifecycle state, timers and the channel to the engine, for one script."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.inputs: dict[str, mlink.InputPort] = {}
        self.outputs: dict[str, mlink.OutputPort] = {}
        self._input_list: list[mlink.InputPort] = []
        self._output_list: list[mlink.OutputPort] = []
        self.module_name = ""
        self.settings: bytes | None = None
        self.base_dir = Path.cwd()
        self.collection_path: Path | None = None
        self.run_uuid = b""
        self.clock: MasterClock | None = None
        self.running = False
        self.shutdown_requested = False
        self.failed = False
        self.link: mlink.SyntalosLink | None = None
        self.namespace: dict[str, Any] = {}
        self.processor: Any = None  # an OEAdapter for Open Ephys-style modules
        self._timers: list[tuple[float, int, Callable[[], object]]] = []
        self._timer_sequence = itertools.count()
        self._pending: deque[Message] = deque()
        self._loaded_sent = False
        self._run_pending = False
        self._replies: dict[str, dict[str, Any]] = {}
        self.synchronizers: list[Any] = []  # stopped (tsync closed) when the run stops
        self.last_activity = time.monotonic()  # when the main thread last served the channel
        self._outbox = bytearray()
        self._outbox_lock = threading.Lock()
        self._send_order = threading.RLock()
        self._outbox_ready = threading.Event()
        threading.Thread(target=self._flush_soon, name="hwlink-flush", daemon=True).start()

    # ----- ports --------------------------------------------------------------------------------------------
    def register_port(self, direction: str, name: str, data_type: DataType | str | int
                      ) -> mlink.InputPort | mlink.OutputPort:
        try:
            kind = data_type if isinstance(data_type, DataType) else (
                DataType(int(data_type)) if isinstance(data_type, int) else parse_data_type(str(data_type)))
        except (ValueError, HwlinkError) as error:
            raise mlink.SyntalosPyError(str(error)) from None
        registry, ordered, cls = ((self.inputs, self._input_list, mlink.InputPort) if direction == "in"
                                  else (self.outputs, self._output_list, mlink.OutputPort))
        existing = registry.get(name)
        if existing is not None:
            if existing.data_type != kind:
                raise mlink.SyntalosPyError(
                    f"port {name!r} is already registered with type {existing.data_type.name}, not {kind.name}")
            return existing
        port = cls(self, name, kind, len(ordered))
        registry[name] = port
        ordered.append(port)
        if self._loaded_sent:
            self.send_control("port", direction=direction, name=name, data_type=int(kind))
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

    def send_control(self, verb: str, **fields: Any) -> None:
        with self._send_order:
            self.flush()
            self.channel.send_control(verb, **fields)

    def send_loaded(self) -> None:
        """Tell the engine the script is loaded, with every port it has by now."""
        if self._loaded_sent:
            return
        self._loaded_sent = True
        self.send_control(
            "loaded",
            inputs=[(p.name, int(p.data_type)) for p in self._input_list],
            outputs=[(p.name, int(p.data_type)) for p in self._output_list],
        )

    def report_error(self, message: str, explicit: bool = False) -> None:
        """The first error fails the module (``explicit``: raise_error, which always stops the run); later ones
        are only printed."""
        if self.failed:
            print(message, file=sys.stderr, flush=True)
            return
        self.failed = True
        self.send_control("error", message=message, explicit=explicit)

    def guarded(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call user code; an exception fails the run with the user's traceback."""
        try:
            return function(*args)
        except _FATAL as error:
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
                self.guarded(self.namespace["run"])
                continue
            if event_fn is None:
                self.pump(None)
            else:
                self.pump(0.025)
                self.guarded(event_fn)

    def _dispatch(self, message: Message) -> None:
        if message.kind == DATA:
            port = self._input_list[message.port]
            callback = port.on_data
            if callback is not None and not self.failed:
                self.guarded(callback, decode(port.data_type, message.payload))
        elif message.kind == CONTROL:
            verb, fields = message.control()
            getattr(self, "_on_" + verb.replace("-", "_"))(**fields)

    def edl_request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Ask the engine to create or register something in the collection and wait for its answer."""
        self.send_control("edl", op=op, **fields)
        while "edl" not in self._replies:
            try:
                messages = self.channel.receive(None)
            except (EOFError, OSError):
                os._exit(3)
            for message in messages:
                if message.kind == CONTROL and message.control()[0] == "edl-reply":
                    self._replies["edl"] = message.control()[1]
                else:
                    self._pending.append(message)
        reply = self._replies.pop("edl")
        if "error" in reply:
            raise mlink.SyntalosPyError(reply["error"])
        return reply

    # ----- control messages from the engine -----------------------------------------------------------------
    def _on_metadata(self, port: str, metadata: dict[str, Any]) -> None:
        if port in self.inputs:
            self.inputs[port]._metadata = dict(metadata)

    def _on_connected(self, outputs: list[str]) -> None:
        for port in self._output_list:
            port.connected = port.name in outputs

    def _lifecycle(self, name: str) -> Any:
        """The script's hook for a lifecycle step, in whichever form the script uses."""
        if self.processor is not None:
            return getattr(self.processor, name)
        if self.link is not None:
            return getattr(self.link, "on_" + name)
        return self.namespace.get(name)

    def _on_prepare(self, collection_path: str, run_uuid: bytes, module_name: str) -> None:
        self.collection_path = Path(collection_path)
        self.run_uuid = run_uuid
        self.module_name = module_name
        if not self.failed:
            if self.link is not None and self.link.on_load_settings is not None and self.settings is not None:
                if self.guarded(self.link.on_load_settings, self.settings, self.base_dir) is False:
                    self.report_error("Module settings could not be loaded (on_load_settings returned False)")
            hook = self._lifecycle("prepare")
            if hook is not None and not self.failed:
                result = self.guarded(hook)
                if result is not None and not result and not self.failed:
                    self.report_error("Module preparation failed (prepare() returned False)")
        if not self.failed:
            self.send_control("ready")

    def _on_start(self, start_ns: int) -> None:
        self.clock = MasterClock(start_ns)
        self.running = True
        if self.failed:
            self.send_control("started")  # the engine is stopping anyway; do not make it wait
            return
        hook = self._lifecycle("start")
        async_start = self.link is None or self.link.allow_async_start
        if async_start:
            self.send_control("started")
        if hook is not None:
            self.guarded(hook)
        if not async_start:
            self.send_control("started")
        if self.link is None and self.processor is None and callable(self.namespace.get("run")):
            self._run_pending = True

    def _on_stop(self) -> None:
        was_running, self.running = self.running, False
        self._run_pending = False
        if was_running and not self.failed:
            hook = self._lifecycle("stop")
            if hook is not None:
                self.guarded(hook)
        for synchronizer in self.synchronizers:
            self.guarded(synchronizer.stop)
        if self.link is not None and self.link.on_save_settings is not None and self.collection_path:
            data = self.guarded(self.link.on_save_settings, self.base_dir)
            if isinstance(data, (bytes, bytearray)):
                self.send_control("settings", data=bytes(data))
        sys.stdout.flush()
        sys.stderr.flush()
        self.send_control("stopped")

    def _on_shutdown(self) -> None:
        self.running = False
        self.shutdown_requested = True

    # ----- extras -----------------------------------------------------------------------------------------------
    def rename_process(self) -> None:
        platform.set_process_name(self.module_name or "hwlink-script")

    def clock_synchronizer(self, expected_frequency_hz: float, sync_id: str) -> Any:
        from hwlink.runtime.clocksync import worker_synchronizer

        return worker_synchronizer(self, expected_frequency_hz, sync_id)


WATCH_INTERVAL_SEC = 0.1
STALL_SEC = 0.3  # not serving the channel for this long while running ...
BUSY_SHARE = 0.6  # ... and using this much of a core: the script spins


def watch_for_spinning(host: Host) -> None:
    """Tell the engine when the script spins on the CPU outside ``await_data`` (and when it is back).

    The engine then lowers the worker's CPU priority, so on a machine with few cores a spinning script cannot
    delay the driver threads that stamp readings; a script that is busy serving data is never flagged. Runs on
    a thread of its own, which gets the GIL from a spinning main thread every switch interval.
    """
    flagged = False
    last_time, last_cpu = time.monotonic(), time.process_time()
    while not host.shutdown_requested:
        time.sleep(WATCH_INTERVAL_SEC)
        now, cpu = time.monotonic(), time.process_time()
        share = (cpu - last_cpu) / max(now - last_time, 1e-6)
        last_time, last_cpu = now, cpu
        stalled = host.running and now - host.last_activity > STALL_SEC
        try:
            if stalled and share > BUSY_SHARE and not flagged:
                flagged = True
                host.send_control("busy", share=share)
            elif flagged and not stalled:
                flagged = False
                host.send_control("serving")
        except OSError:
            return


def _load(host: Host, fields: dict[str, Any]) -> None:
    host.module_name = fields["module_name"]
    host.settings = fields.get("settings")
    host.base_dir = Path(fields["base_dir"])
    for name, data_type in fields["inputs"]:
        host.register_port("in", name, DataType(data_type))
    for name, data_type in fields["outputs"]:
        host.register_port("out", name, DataType(data_type))
    path = Path(fields["script"])
    sys.argv = [str(path)]
    sys.path.insert(0, str(path.parent))
    host.namespace.update({"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__})
    try:
        code = compile(path.read_bytes(), str(path), "exec")
        exec(code, host.namespace)  # noqa: S102 - running the user's script is the point
    except _FATAL as error:
        if not host.shutdown_requested:
            host.report_error(format_user_traceback(error))
        return
    except BaseException as error:
        host.report_error(format_user_traceback(error))
        return
    if fields.get("processor_class") and not host.failed and not host.shutdown_requested:
        from hwlink.runtime.oe import OEAdapter

        try:
            host.processor = OEAdapter(host, fields["processor_class"])
        except mlink.SyntalosPyError as error:
            host.report_error(str(error))


def main(argv: list[str]) -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SEC)
    # Ends this worker when the engine dies (a spinning script never reads the socket's EOF); Ctrl-C is the engine's.
    channel = Channel(platform.connect_to_engine(argv[1]), blocking_send=True)
    host = Host(channel)
    mlink._bind(host)
    sys.modules["syntalos_mlink"] = mlink
    while True:
        messages = channel.receive(None)
        load = next((m for m in messages if m.kind == CONTROL and m.control()[0] == "load"), None)
        if load is not None:
            host._pending.extend(m for m in messages if m is not load)
            break
    fields = load.control()[1]
    if fields.get("cpu_guard"):
        threading.Thread(target=watch_for_spinning, args=(host,), name="hwlink-watch", daemon=True).start()
    _load(host, fields)
    try:
        if not host.shutdown_requested:
            host.serve()
    except _FATAL:
        pass
    try:
        host.flush()
    except OSError:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    channel.close()
    return 1 if host.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
