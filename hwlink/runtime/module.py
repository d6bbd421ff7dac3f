"""What every module of an experiment is made of: typed ports, a lifecycle, and the run it belongs to."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hwlink.clock import MasterClock
from hwlink.platform import clock_ns
from hwlink.runtime.datatypes import SIGNAL_TYPES, DataType, convert_signal

if TYPE_CHECKING:
    from hwlink.edl import Collection, Dataset
    from hwlink.runtime.experiment import ModuleSpec


class RunContext(Protocol):
    """What a module may ask of the engine running it."""

    clock: MasterClock
    collection: Collection | None
    clock_running: bool  # time zero has passed (modules start after it, consumers first)
    grace_period_sec: float  # how long a stopping module may take before it is ended

    run_uuid: bytes

    def fail(self, module: str, message: str) -> None: ...
    def log(self, module: str, text: str, stream: str = "stdout") -> None: ...
    def dataset(self, name: str, group: str = "", module: str = "") -> Dataset: ...
    def storage_request(self, module: str, op: str, fields: dict[str, Any], explicit: bool) -> dict[str, Any]: ...
    def save_settings(self, module: str, data: bytes) -> None: ...
    def node_id(self, module: str) -> int: ...
    @property
    def forced(self) -> bool: ...
    @property
    def stopping(self) -> bool: ...
    @property
    def stop_deadline(self) -> float: ...  # time.monotonic() by which every module must have stopped
    @property
    def close_deadline(self) -> float: ...  # ... and by which every worker must have exited


class OutPort:
    """A stream a module produces; ``emit`` hands each item to every connected input at once."""

    def __init__(self, module: Module, name: str, data_type: DataType | None) -> None:
        self.module = module
        self.name = name
        self.data_type = data_type
        self.targets: list[InPort] = []
        self.metadata: dict[str, Any] = {}

    @property
    def connected(self) -> bool:
        return bool(self.targets)

    def emit(self, item: Any) -> None:
        for target in self.targets:
            target.deliver(item)

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self.metadata = dict(metadata)
        for target in self.targets:
            target.module.input_metadata(target, self.metadata)

    def __str__(self) -> str:
        return f"{self.module.name}.{self.name}"


class InPort:
    """A stream a module consumes; ``data_type`` None accepts any type (recorders)."""

    def __init__(self, module: Module, name: str, data_type: DataType | None,
                 handler: Callable[[InPort, Any], None]) -> None:
        self.module = module
        self.name = name
        self.data_type = data_type
        self.handler = handler
        self.source: OutPort | None = None
        self._convert_to: DataType | None = None
        self._min_interval_ns = 0
        self._last_ns = 0

    def attach(self, source: OutPort) -> None:
        self.source = source
        source.targets.append(self)
        if (self.data_type in SIGNAL_TYPES and source.data_type in SIGNAL_TYPES
                and self.data_type != source.data_type):
            self._convert_to = self.data_type

    @property
    def stream_type(self) -> DataType | None:
        """The type items arrive with (the source's for an any-type port)."""
        return self.data_type or (self.source.data_type if self.source else None)

    def set_throttle(self, items_per_sec: int) -> None:
        self._min_interval_ns = 0 if items_per_sec <= 0 else 1_000_000_000 // min(items_per_sec, 1_000_000)

    def deliver(self, item: Any) -> None:
        """Runs on the producer's thread: the handler must be quick; its failure fails the run."""
        if self._min_interval_ns:
            now = clock_ns()
            if now - self._last_ns < self._min_interval_ns:
                return
            self._last_ns = now
        if self._convert_to is not None:
            item = convert_signal(item, self._convert_to)
        try:
            self.handler(self, item)
        except Exception as error:  # a bad item must stop the run with a clear message, not kill a thread
            self.module.ctx.fail(self.module.name, f"{self.module.name}.{self.name}: {error}")

    def __str__(self) -> str:
        return f"{self.module.name}.{self.name}"


class Module:
    """Base of all module kinds. The engine calls load -> prepare -> start -> stop -> close, each once."""

    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    dynamic_ports: ClassVar[bool] = False  # scripts can register ports when loaded
    is_source: ClassVar[bool] = False  # produces data on its own: started last, stopped first

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        self.spec = spec
        self.name = spec.name
        self.ctx = ctx
        self.inputs: dict[str, InPort] = {}
        self.outputs: dict[str, OutPort] = {}

    def add_input(self, name: str, data_type: DataType | None,
                  handler: Callable[[InPort, Any], None] | None = None) -> InPort:
        port = InPort(self, name, data_type, handler or (lambda port, item: None))
        self.inputs[name] = port
        return port

    def add_output(self, name: str, data_type: DataType | None) -> OutPort:
        port = OutPort(self, name, data_type)
        self.outputs[name] = port
        return port

    def input_metadata(self, port: InPort, metadata: dict[str, Any]) -> None:
        """An upstream output's metadata changed."""

    def load(self) -> None:
        """Acquire what the module needs (open the board, start the worker); may be slow."""

    def wait_loaded(self) -> None:
        """Block until ``load`` has finished (workers load in parallel)."""

    def prepare(self) -> None:
        """Everything is connected; create datasets, set output metadata."""

    def start(self) -> None:
        """The run starts: the clock reads 0 just before the first module starts."""

    def stop(self) -> None:
        """The run ends; stop producing, without blocking for long: every module is stopped one after another
        right away (sources first). Data still in flight may arrive until ``close``."""

    def wait_stopped(self) -> None:
        """After every module got ``stop``: wait until this one has stopped, at most until the run's
        ``stop_deadline`` (then end it)."""

    def request_close(self) -> None:
        """Before any module is closed: start releasing what takes time (workers are asked to exit)."""

    def close(self) -> None:
        """Release everything (idempotent; also called when load or prepare failed)."""


class PacedThread:
    """A daemon thread calling ``step(now_usec)`` at ``interval_usec`` on the master clock until stopped."""

    def __init__(self, name: str, clock: MasterClock, interval_usec: int, step: Callable[[int], None],
                 on_error: Callable[[BaseException], None]) -> None:
        self._clock = clock
        self._interval = interval_usec
        self._step = step
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        due = self._clock.now_usec()
        try:
            while not self._stop.is_set():
                self._step(due)
                due += self._interval
                delay = (due - self._clock.now_usec()) / 1e6
                if delay > 0 and self._stop.wait(delay):
                    break
        except Exception as error:
            self._on_error(error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
