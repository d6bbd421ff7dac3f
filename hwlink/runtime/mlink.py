"""hwlink's implementation of Syntalos' ``syntalos_mlink`` API, for scripts running in a worker process.

The worker registers this module as ``sys.modules['syntalos_mlink']`` before it runs the user's script, so
``import syntalos_mlink as syl`` resolves here without a top-level package of that name being installed.
Everything the script does goes through the worker's ``Host`` (``hwlink.runtime.host``): ports, timers,
lifecycle state and the message channel to the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from hwlink.sync import SecondaryClockSynchronizer, TimeSyncStrategy
from hwlink.runtime.types import (
    DataType,
    Frame,
    MetaSize,
    SignalBlockF32,
    SignalBlockI32,
    SignalBlockU16,
    check_item,
    encode,
)

if TYPE_CHECKING:
    from hwlink.runtime.host import Host

HwOutputLine = OutputLine
HwInputLine = InputLine

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


class SyntalosPyError(Exception):
    """Raised for misuse of the API (wrong data type submitted, bad port, calls outside a run)."""


_host: Host | None = None


def _bind(host: Host) -> None:
    """Called by the worker before the script runs."""
    global _host
    _host = host


def _the_host() -> Host:
    if _host is None:
        raise SyntalosPyError("This module was not run by hwlink (start it with `hwlink run EXPERIMENT`)")
    return _host


# ----- ports -------------------------------------------------------------------------------------------------

class InputPort:
    """A stream coming into the script; set ``on_data`` to receive its items."""

    def __init__(self, host: Host, name: str, data_type: DataType, index: int) -> None:
        self._host = host
        self.name = name
        self.data_type = data_type
        self.index = index
        self._metadata: dict[str, Any] = {}
        self.on_data: Callable[[Any], object] | None = None
        self.throttle_items_per_sec = 0

    @property
    def metadata(self) -> dict[str, Any]:
        """The upstream output's metadata (a copy: it is read-only for the receiver)."""
        return dict(self._metadata)

    def set_throttle_items_per_sec(self, items_per_sec: int) -> None:
        """Receive at most this many items per second (0 = all); the engine drops the rest before sending."""
        value = int(items_per_sec)
        if value < 0:
            raise SyntalosPyError("throttle must be 0 (off) or a positive number of items per second")
        self.throttle_items_per_sec = value
        self._host.send_control("throttle", port=self.name, items_per_sec=value)

    def __repr__(self) -> str:
        return f"<InputPort {self.name!r} {self.data_type.name}>"


class OutputPort:
    """A stream going out of the script; ``submit`` type-checks each item against the port's type."""

    def __init__(self, host: Host, name: str, data_type: DataType, index: int) -> None:
        self._host = host
        self.name = name
        self.data_type = data_type
        self.index = index
        self._metadata: dict[str, Any] = {}
        self.connected = True

    def submit(self, data: Any) -> None:
        try:
            item = check_item(self.data_type, data)
        except TypeError as error:
            raise SyntalosPyError(f"Data submission failed on port {self.name!r}: {error}") from None
        if self.connected:
            self._host.send_data(self.index, self.data_type, encode(self.data_type, item))

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    def set_metadata_value(self, key: str, value: Any) -> None:
        if not isinstance(value, (int, float, str, MetaSize, list, tuple, bool)) or value is None:
            raise SyntalosPyError(f"metadata {key!r}: unsupported value type {type(value).__name__}")
        self._metadata[str(key)] = list(value) if isinstance(value, tuple) else value
        self._publish()

    def set_metadata_value_size(self, key: str, value: MetaSize | list[int] | tuple[int, int]) -> None:
        if isinstance(value, MetaSize):
            size = MetaSize(value.width, value.height)
        else:
            width, height = value
            size = MetaSize(width, height)
        self._metadata[str(key)] = size
        self._publish()

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self._metadata = dict(metadata)
        self._publish()

    def _publish(self) -> None:
        self._host.send_control("out-metadata", port=self.name, metadata=self._metadata)

    def __repr__(self) -> str:
        return f"<OutputPort {self.name!r} {self.data_type.name}>"


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
    if delay_msec < 0:
        raise SyntalosPyError("delay must not be negative")
    _the_host().call_later(delay_msec / 1e3, callable_fn)


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

class EdlDataset:
    """A dataset directory in the run's collection; files written here are registered with the engine."""

    def __init__(self, host: Host, path: Path, name: str, unit: str) -> None:
        self._host = host
        self.path = Path(path)
        self.name = name
        self._unit = unit

    @property
    def is_empty(self) -> bool:
        return not any(self.path.iterdir())

    def set_data_file(self, file_name: str, summary: str = "", scan: bool = False) -> Path:
        self._host.edl_request("set-data-file", unit=self._unit, file_name=file_name, summary=summary, scan=scan)
        return self.path / file_name

    def add_aux_file(self, file_name: str, key: str = "", summary: str = "", scan: bool = False) -> Path:
        self._host.edl_request("add-aux-file", unit=self._unit, file_name=file_name, key=key, summary=summary,
                               scan=scan)
        return self.path / file_name

    def path_for_basename(self, basename: str) -> Path:
        return self.path / basename

    def set_attribute(self, key: str, value: Any) -> None:
        self._host.edl_request("set-attribute", unit=self._unit, key=key, value=value)

    def __repr__(self) -> str:
        return f"<EdlDataset {self._unit}>"


class EdlGroup:
    """A group directory in the run's collection."""

    def __init__(self, host: Host, path: Path, name: str, unit: str) -> None:
        self._host = host
        self.path = Path(path)
        self.name = name
        self._unit = unit

    def create_group(self, name: str) -> EdlGroup:
        reply = self._host.edl_request("group", parent=self._unit, name=name)
        return EdlGroup(self._host, Path(reply["path"]), reply["name"], reply["unit"])

    def create_dataset(self, name: str) -> EdlDataset:
        reply = self._host.edl_request("dataset", parent=self._unit, name=name)
        return EdlDataset(self._host, Path(reply["path"]), reply["name"], reply["unit"])

    def set_attribute(self, key: str, value: Any) -> None:
        self._host.edl_request("set-attribute", unit=self._unit, key=key, value=value)

    def __repr__(self) -> str:
        return f"<EdlGroup {self._unit or '/'}>"


def _root_group(host: Host) -> EdlGroup:
    if host.collection_path is None:
        raise SyntalosPyError("storage is available from prepare() on")
    return EdlGroup(host, host.collection_path, host.collection_path.name, "")


def create_default_dataset(preferred_name: str = "") -> EdlDataset:
    """A dataset named after the module (or ``preferred_name``) at the collection root."""
    host = _the_host()
    return _root_group(host).create_dataset(preferred_name or host.module_name)


def create_storage_group(name: str) -> EdlGroup:
    return _root_group(_the_host()).create_group(name)


def create_dataset_in_group(group: EdlGroup, name: str) -> EdlDataset:
    return group.create_dataset(name)


def init_clock_synchronizer(expected_frequency_hz: float = 0.0, id: str = "") -> Any:  # noqa: A002
    """A secondary clock synchronizer whose tsync file goes into this module's dataset."""
    return _the_host().clock_synchronizer(float(expected_frequency_hz), id)




# ----- the standalone form -------------------------------------------------------------------------------

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
        self._host.send_control("status", message=(message or "")[:128])

    @property
    def is_running(self) -> bool:
        return self._host.running

    @property
    def run_uuid(self) -> bytes:
        return self._host.run_uuid

    @property
    def root_group(self) -> EdlGroup:
        return _root_group(self._host)

    def create_default_dataset(self, preferred_name: str = "") -> EdlDataset:
        return create_default_dataset(preferred_name)

    def create_storage_group(self, name: str) -> EdlGroup:
        return create_storage_group(name)

    def create_dataset_in_group(self, group: EdlGroup, name: str) -> EdlDataset:
        return group.create_dataset(name)

    def init_clock_synchronizer(self, expected_frequency_hz: float = 0.0, id: str = "") -> Any:  # noqa: A002
        return init_clock_synchronizer(expected_frequency_hz, id)


def init_link(*, rename_process: bool = False) -> SyntalosLink:
    """The standalone form's entry point; once per process."""
    host = _the_host()
    if host.link is not None:
        raise SyntalosPyError("init_link() was already called: the link is already initialized")
    host.link = SyntalosLink(host)
    if rename_process:
        host.rename_process()
    return host.link
