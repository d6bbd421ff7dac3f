"""The control messages between the engine and a script worker: one typed vocabulary both sides import.

Each message is a frozen dataclass; the channel pickles it (``hwlink.runtime.ipc``), and each side dispatches
on the class through a table (``handlers[type(message)]``), so a verb cannot be misspelt on one side only and a
message with a missing field fails where it is built. Stream items never travel as control messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ControlMessage:
    """Base of every control message."""

    __slots__ = ()


# ----- engine -> worker ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Load(ControlMessage):
    """Run the script. ``form``: "script" (Syntalos Python Script), "python-module" (standalone, calls
    ``init_link()`` itself) or "oe-processor" (Open Ephys Python Processor, imported as a module)."""

    script: str
    module_name: str
    base_dir: str
    form: str
    inputs: list[tuple[str, int]]
    outputs: list[tuple[str, int]]
    settings: bytes | None = None
    processor_class: str | None = None
    cpu_guard: bool = True
    node_id: int = 0


@dataclass(frozen=True, slots=True)
class Connected(ControlMessage):
    """Which outputs have consumers, and where each connected input comes from: (node id, "module.port")."""

    outputs: list[str]
    sources: dict[str, tuple[int, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InputMetadata(ControlMessage):
    port: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Prepare(ControlMessage):
    collection_path: str
    run_uuid: bytes
    module_name: str


@dataclass(frozen=True, slots=True)
class Start(ControlMessage):
    start_ns: int


@dataclass(frozen=True, slots=True)
class Stop(ControlMessage):
    pass


@dataclass(frozen=True, slots=True)
class Shutdown(ControlMessage):
    pass


@dataclass(frozen=True, slots=True)
class StorageReply(ControlMessage):
    """The engine's answer to a StorageRequest: ``error`` set, or the fields asked for."""

    fields: dict[str, Any]
    error: str | None = None


# ----- worker -> engine ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Loaded(ControlMessage):
    """The script's module-level code ran; these are all ports it has by now."""

    inputs: list[tuple[str, int]]
    outputs: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class PortAdded(ControlMessage):
    direction: str  # "in" / "out"
    name: str
    data_type: int


@dataclass(frozen=True, slots=True)
class OutputMetadata(ControlMessage):
    port: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ready(ControlMessage):
    pass


@dataclass(frozen=True, slots=True)
class Started(ControlMessage):
    pass


@dataclass(frozen=True, slots=True)
class Stopped(ControlMessage):
    pass


@dataclass(frozen=True, slots=True)
class Failed(ControlMessage):
    """The script failed (``explicit``: it called raise_error, which always stops the run)."""

    message: str
    explicit: bool = False


@dataclass(frozen=True, slots=True)
class Throttle(ControlMessage):
    port: str
    items_per_sec: int


@dataclass(frozen=True, slots=True)
class StorageRequest(ControlMessage):
    """Create or register something in the collection (the engine owns its manifests). ``explicit``: the
    script asked for it by name (a name already used in the run is refused); else hwlink's own use for this
    module (its tsync file, a processor's recording directory), which reuses the module's dataset."""

    op: str
    fields: dict[str, Any]
    explicit: bool = True


@dataclass(frozen=True, slots=True)
class SavedSettings(ControlMessage):
    data: bytes


@dataclass(frozen=True, slots=True)
class Busy(ControlMessage):
    """The script spins outside await_data, using ``share`` of a core."""

    share: float


@dataclass(frozen=True, slots=True)
class Serving(ControlMessage):
    pass


@dataclass(frozen=True, slots=True)
class Status(ControlMessage):
    message: str
