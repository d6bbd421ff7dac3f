"""A script worker's ports and the error every scripting-API misuse raises.

The bottom of the worker side: ``hwlink.runtime.host`` keeps the ports, ``mlink`` / ``oe`` / ``clocksync``
build the script-facing APIs on top. Ports talk to the worker only through ``PortOwner`` (send an item, send
a control message), so nothing here imports the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hwlink.runtime.control import ControlMessage, OutputMetadata, Throttle
from hwlink.runtime.datatypes import DataType, MetaSize, check_item, encode


class SyntalosPyError(Exception):
    """Raised for misuse of the scripting API (wrong data type submitted, bad port, calls outside a run)."""


class PortOwner(Protocol):
    def send_data(self, index: int, data_type: DataType, payload: bytes) -> None: ...
    def send_control(self, message: ControlMessage) -> None: ...


class InputPort:
    """A stream coming into the script; set ``on_data`` to receive its items."""

    def __init__(self, host: PortOwner, name: str, data_type: DataType, index: int) -> None:
        self._host = host
        self.name = name
        self.data_type = data_type
        self.index = index
        self._metadata: dict[str, Any] = {}
        self.on_data: Callable[[Any], object] | None = None
        self.throttle_items_per_sec = 0
        self.source: tuple[int, str] | None = None  # (node id, "module.port") of what feeds it, once connected

    @property
    def metadata(self) -> dict[str, Any]:
        """The upstream output's metadata (a copy: it is read-only for the receiver)."""
        return dict(self._metadata)

    def set_throttle_items_per_sec(self, items_per_sec: int) -> None:
        """Receive at most this many items per second (0 = all); the engine drops the rest before sending."""
        try:
            value = int(items_per_sec)
        except (TypeError, ValueError):
            raise SyntalosPyError(f"throttle must be a number of items per second, not {items_per_sec!r}") from None
        if value < 0:
            raise SyntalosPyError("throttle must be 0 (off) or a positive number of items per second")
        self.throttle_items_per_sec = value
        self._host.send_control(Throttle(self.name, value))

    def __repr__(self) -> str:
        return f"<InputPort {self.name!r} {self.data_type.name}>"


class OutputPort:
    """A stream going out of the script; ``submit`` type-checks each item against the port's type."""

    def __init__(self, host: PortOwner, name: str, data_type: DataType, index: int) -> None:
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
            try:
                width, height = value
                size = MetaSize(width, height)
            except (TypeError, ValueError):
                raise SyntalosPyError("Expected a MetaSize or a [width, height] sequence.") from None
        self._metadata[str(key)] = size
        self._publish()

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        if not isinstance(metadata, dict):
            raise SyntalosPyError(f"metadata must be a dict, not {type(metadata).__name__}")
        self._metadata = dict(metadata)
        self._publish()

    def _publish(self) -> None:
        self._host.send_control(OutputMetadata(self.name, self._metadata))

    def __repr__(self) -> str:
        return f"<OutputPort {self.name!r} {self.data_type.name}>"
