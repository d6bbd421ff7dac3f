"""hwlink's implementation of Syntalos' ``syntalos_mlink`` API, for scripts running in a worker process.

The worker (``hwlink.runtime.worker``) registers this module as ``sys.modules['syntalos_mlink']`` before it
runs the user's script, so ``import syntalos_mlink as syl`` resolves here without a top-level package of that
name being installed. Everything the script does goes through the worker's ``Host`` (``hwlink.runtime.host``):
ports, timers, lifecycle state and the message channel to the engine.

As in Syntalos, a Python Script module (``kind = "script"``) runs with the link already initialized (so
``init_link()`` raises), while a standalone Python module (``kind = "python-module"``) must call
``init_link()`` before anything else of the API. Every error the API raises is a ``SyntalosPyError``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwlink.errors import HwlinkError
from hwlink.lines import (
    ControlCommand,
    ControlCommandKind,
    InputLine,
    LineCommand,
    LineCommandKind,
    LineModeFlags,
    LineReading,
    OutputLine,
    new_line_command,
)
from hwlink.runtime import clocksync
from hwlink.runtime.ports import InputPort, OutputPort, SyntalosPyError
from hwlink.runtime.storage import EdlDataset, EdlGroup, root_group
from hwlink.runtime.datatypes import (
    DataType,
    Frame,
    MetaSize,
    SignalBlockF32,
    SignalBlockI32,
    SignalBlockU16,
)
from hwlink.sync import SecondaryClockSynchronizer, TimeSyncStrategy

if TYPE_CHECKING:
    from hwlink.runtime.host import Host

__all__ = [
    "ControlCommand", "ControlCommandKind", "DataType", "EdlDataset", "EdlGroup", "Frame", "HwInputLine",
    "HwOutputLine", "InputLine", "InputPort", "LineCommand", "LineCommandKind", "LineModeFlags", "LineReading",
    "MetaSize", "OutputLine", "OutputPort", "SignalBlockF32", "SignalBlockI32", "SignalBlockU16", "SyntalosLink",
    "SyntalosPyError", "TimeSyncStrategy", "await_data", "get_input_port", "get_output_port", "init_link",
    "is_running", "new_line_command", "println", "raise_error", "register_input_port", "register_output_port",
    "schedule_delayed_call", "time_since_start_msec", "time_since_start_usec", "wait", "wait_sec",
    "init_clock_synchronizer", "create_default_dataset", "SecondaryClockSynchronizer", "list_types_synonyms",
    "print_types_synonyms", "create_storage_group", "create_dataset_in_group",
]

NOT_INITIALIZED = "Syntalos Module Link was not initialized. Call `syntalos_mlink.init_link()` first!"
INITIALIZED_TWICE = "Syntalos Module Link was already initialized. It is not allowed to run `init_link()` twice!"

_host: Host | None = None


def _bind(host: Host) -> None:
    """Called by the worker before the script runs."""
    global _host
    _host = host


def _the_host() -> Host:
    """The worker's host, once the link is initialized (by the worker for a Python Script module, by the
    script's ``init_link()`` for a standalone module)."""
    if _host is None:
        raise SyntalosPyError("This module was not run by hwlink (start it with `hwlink run EXPERIMENT`)")
    if _host.link is None:
        raise SyntalosPyError(NOT_INITIALIZED)
    return _host


# ----- hardware line helpers: hwlink.lines' handles, raising SyntalosPyError as Syntalos does -------------

def _check_port(port: object, what: str) -> None:
    if not isinstance(port, OutputPort):
        raise SyntalosPyError(f"{what} needs the OutputPort its commands go out on, not {type(port).__name__}")


class HwOutputLine(OutputLine):
    """Syntalos' ``HwOutputLine``: builds, submits and returns LineCommands for one output line."""

    def __init__(self, port: OutputPort, line_id: int, analog: bool = False) -> None:
        _check_port(port, "HwOutputLine")
        try:
            super().__init__(port, line_id, analog)
        except HwlinkError as error:
            raise SyntalosPyError(str(error)) from None

    def set_value(self, value: bool) -> LineCommand:
        if self.analog:
            raise SyntalosPyError(f"set_value() is only valid for digital OutputLine; line {self.line_id} is "
                                  "analog (use set_analog_value()).")
        return super().set_value(value)

    def pulse(self, duration_usec: int = 2500) -> LineCommand:
        if self.analog:
            raise SyntalosPyError(f"pulse() is only valid for digital OutputLine; line {self.line_id} is analog.")
        return super().pulse(duration_usec)

    def set_analog_value(self, value: int) -> LineCommand:
        if not self.analog:
            raise SyntalosPyError(f"set_analog_value() is only valid for analog OutputLine; line {self.line_id} "
                                  "is digital (use set_value()).")
        try:
            return super().set_analog_value(value)
        except HwlinkError as error:
            raise SyntalosPyError(str(error)) from None


class HwInputLine(InputLine):
    """Syntalos' ``HwInputLine``: ``send_mode()`` configures the line; readings arrive on an input port."""

    def __init__(self, port: OutputPort, line_id: int, pullup: bool = False) -> None:
        _check_port(port, "HwInputLine")
        try:
            super().__init__(port, line_id, pullup)
        except HwlinkError as error:
            raise SyntalosPyError(str(error)) from None


# ----- ports -------------------------------------------------------------------------------------------------

def get_input_port(port_id: str) -> InputPort | None:
    return _the_host().inputs.get(port_id)


def get_output_port(port_id: str) -> OutputPort | None:
    return _the_host().outputs.get(port_id)


def register_input_port(port_id: str, title: str = "", data_type: DataType | str | int = DataType.LineReading
                        ) -> InputPort:
    return _the_host().register_port("in", port_id, data_type)  # type: ignore[return-value]


def register_output_port(port_id: str, title: str = "", data_type: DataType | str | int = DataType.LineCommand
                         ) -> OutputPort:
    return _the_host().register_port("out", port_id, data_type)  # type: ignore[return-value]


# ----- run state, time, timers ---------------------------------------------------------------------------

def is_running() -> bool:
    return _the_host().running


def await_data(timeout_usec: int = -1) -> None:
    """Deliver pending data, control messages and due delayed calls; -1 keeps doing so while running."""
    host = _the_host()
    if timeout_usec < 0:
        while host.running and not host.shutdown_requested:
            host.pump(0.25)
    else:
        host.pump(timeout_usec / 1e6)


def wait(msec: float) -> None:
    """Sleep ``msec`` milliseconds while still serving data and control messages."""
    _the_host().pump_until_after(msec / 1e3)


def wait_sec(sec: float) -> None:
    _the_host().pump_until_after(float(sec))


def time_since_start_usec() -> int:
    clock = _the_host().clock
    return 0 if clock is None else clock.now_usec()


def time_since_start_msec() -> int:
    return time_since_start_usec() // 1000


def schedule_delayed_call(delay_msec: int, callable_fn: Callable[[], object]) -> None:
    host = _the_host()
    if not callable(callable_fn):
        raise SyntalosPyError(f"schedule_delayed_call() needs a callable, not {type(callable_fn).__name__}")
    try:
        delay = float(delay_msec)
    except (TypeError, ValueError):
        raise SyntalosPyError(f"delay must be a number of milliseconds, not {delay_msec!r}") from None
    if delay < 0:
        raise SyntalosPyError("Delay must be positive or zero.")
    host.call_later(delay / 1e3, callable_fn)


def println(text: object) -> None:
    print(text, flush=True)


_TYPE_SYNONYMS = (  # OpenCV depth <-> numpy dtype, as Syntalos' cvnp binding lists them for Frame.mat
    ("CV_8U", "uint8"), ("CV_8S", "int8"), ("CV_16U", "uint16"), ("CV_16S", "int16"),
    ("CV_32S", "int32"), ("CV_32F", "float32"), ("CV_64F", "float64"),
)


def list_types_synonyms() -> list[dict[str, str]]:
    return [{"cv_depth": depth, "np_format": dtype} for depth, dtype in _TYPE_SYNONYMS]


def print_types_synonyms() -> None:
    for depth, dtype in _TYPE_SYNONYMS:
        print(f"{depth:8} {dtype}")


def raise_error(message: str) -> None:
    """Fail the run with ``message`` (the engine stops every module and keeps the data recorded so far)."""
    _the_host().report_error(str(message)[:2048], explicit=True)


# ----- EDL storage (the engine owns the collection; these are handles onto its directories) --------------

def create_default_dataset(preferred_name: str = "") -> EdlDataset:
    """A dataset named after the module (or ``preferred_name``) at the collection root; must be new."""
    host = _the_host()
    return root_group(host).create_dataset(preferred_name or host.module_name)


def create_storage_group(name: str) -> EdlGroup:
    return root_group(_the_host()).create_group(name)


def create_dataset_in_group(group: EdlGroup, name: str) -> EdlDataset:
    if not isinstance(group, EdlGroup):
        raise SyntalosPyError(f"create_dataset_in_group() needs an EdlGroup, not {type(group).__name__}")
    return group.create_dataset(name)


def init_clock_synchronizer(expected_frequency_hz: float = 0.0, id: str = "") -> Any:  # noqa: A002
    """A secondary clock synchronizer whose tsync file goes into this module's dataset."""
    try:
        frequency = float(expected_frequency_hz)
    except (TypeError, ValueError):
        raise SyntalosPyError(f"expected_frequency_hz must be a number, not {expected_frequency_hz!r}") from None
    return clocksync.worker_synchronizer(_the_host(), frequency, str(id))


# ----- the two forms: Python Script functions, and the standalone link -----------------------------------

class ScriptFunctions:
    """A Python Script module's lifecycle: the global ``prepare``/``start``/``run``/``stop`` it defines."""

    async_start = True

    def __init__(self, namespace: dict[str, Any]) -> None:
        self._namespace = namespace

    def _function(self, name: str) -> Callable[[], object] | None:
        function = self._namespace.get(name)
        return function if callable(function) else None

    def prepare_hook(self) -> Callable[[], object] | None:
        return self._function("prepare")

    def start_hook(self) -> Callable[[], object] | None:
        return self._function("start")

    def run_hook(self) -> Callable[[], object] | None:
        return self._function("run")

    def stop_hook(self) -> Callable[[], object] | None:
        return self._function("stop")

    def load_settings_hook(self) -> None:
        return None

    def save_settings_hook(self) -> None:
        return None


class SyntalosLink:
    """What ``init_link()`` returns: lifecycle callbacks, port registration and the event loop."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self.on_prepare: Callable[[], bool] | None = None
        self.on_start: Callable[[], object] | None = None
        self.on_stop: Callable[[], object] | None = None
        self.on_show_settings: Callable[[], object] | None = None
        self.on_show_display: Callable[[], object] | None = None
        self.on_save_settings: Callable[[Path], bytes] | None = None
        self.on_load_settings: Callable[[bytes, Path], bool] | None = None
        self.allow_async_start = True

    # the host's view (ScriptForm)
    @property
    def async_start(self) -> bool:
        return bool(self.allow_async_start)

    def prepare_hook(self) -> Callable[[], object] | None:
        return self.on_prepare

    def start_hook(self) -> Callable[[], object] | None:
        return self.on_start

    def run_hook(self) -> None:
        return None

    def stop_hook(self) -> Callable[[], object] | None:
        return self.on_stop

    def load_settings_hook(self) -> Callable[[bytes, Path], object] | None:
        return self.on_load_settings

    def save_settings_hook(self) -> Callable[[Path], object] | None:
        return self.on_save_settings

    # the script's view
    def register_input_port(self, port_id: str, title: str, data_type: DataType | str | int) -> InputPort:
        return self._host.register_port("in", port_id, data_type)  # type: ignore[return-value]

    def register_output_port(self, port_id: str, title: str, data_type: DataType | str | int) -> OutputPort:
        return self._host.register_port("out", port_id, data_type)  # type: ignore[return-value]

    def await_data(self, timeout_usec: int = -1) -> None:
        await_data(timeout_usec)

    def await_data_forever(self, event_fn: Callable[[], object] | None = None) -> None:
        """Serve the engine until the run is over and the worker is told to shut down."""
        self._host.serve(event_fn)

    def run(self) -> None:
        self.await_data_forever()

    def signal_idle(self) -> None:
        self._host.send_loaded()

    def set_status_message(self, message: str | None = None) -> None:
        self._host.set_status((message or "")[:128])

    @property
    def is_running(self) -> bool:
        return self._host.running

    @property
    def run_uuid(self) -> bytes:
        return self._host.run_uuid

    @property
    def root_group(self) -> EdlGroup:
        return root_group(self._host)

    def create_default_dataset(self, preferred_name: str = "") -> EdlDataset:
        return create_default_dataset(preferred_name)

    def create_storage_group(self, name: str) -> EdlGroup:
        return create_storage_group(name)

    def create_dataset_in_group(self, group: EdlGroup, name: str) -> EdlDataset:
        return create_dataset_in_group(group, name)

    def init_clock_synchronizer(self, expected_frequency_hz: float = 0.0, id: str = "") -> Any:  # noqa: A002
        return init_clock_synchronizer(expected_frequency_hz, id)


def init_link(*, rename_process: bool = False) -> SyntalosLink:
    """The standalone form's entry point; once per process. In a Python Script module the link is already
    initialized by the worker, so this raises, as in Syntalos."""
    if _host is None:
        raise SyntalosPyError("This module was not run by hwlink (start it with `hwlink run EXPERIMENT`)")
    if _host.link is not None:
        raise SyntalosPyError(INITIALIZED_TWICE)
    link = SyntalosLink(_host)
    _host.link = link
    _host.form = link
    if rename_process:
        _host.rename_process()
    return link


def _init_link_for_script(host: Host, namespace: dict[str, Any]) -> None:
    """What the worker does for a Python Script module before running it (Syntalos' pyworker initializes the
    link with its own handle): the link exists, the script's global functions are its lifecycle."""
    host.link = SyntalosLink(host)
    host.form = ScriptFunctions(namespace)
