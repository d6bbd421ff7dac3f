"""Stream data types of the experiment runtime and their compact binary wire encodings.

The types and numeric ids are Syntalos' (``DataType``), so experiment files and scripts name them the same
way. Line types come from ``hwlink.lines``; this module adds the script-facing Frame, MetaSize and
SignalBlockI32/U16/F32 and the codec used between the engine and script worker processes. Every encoding is
fixed-layout little-endian with the line types using the wire formats of ``hwlink.lines`` unchanged.
"""

from __future__ import annotations

import datetime
import enum
import struct
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from hwlink.errors import HwlinkError
from hwlink.lines import (
    ControlCommand,
    LineCommand,
    LineCommandKind,
    LineModeFlags,
    LineReading,
    SignalBlock,
)


class DataType(enum.IntEnum):
    """Stream type ids as Syntalos numbers them (``BaseDataType::TypeId``); ``str()`` gives ``DataType.NAME``."""

    ControlCommand = 1
    TableRow = 2
    Frame = 3
    LineCommand = 4
    LineReading = 5
    SignalBlockI32 = 6
    SignalBlockU16 = 7
    SignalBlockF32 = 8

    def __str__(self) -> str:
        return enum.Enum.__str__(self)

    def __format__(self, spec: str) -> str:
        return format(int(self), spec) if spec and spec[-1] in "bcdoxXn" else format(str(self), spec)


SIGNAL_TYPES = frozenset({DataType.SignalBlockI32, DataType.SignalBlockU16, DataType.SignalBlockF32})


def parse_data_type(name: str) -> DataType:
    """'LineReading' -> DataType.LineReading; a clear error listing the valid names otherwise."""
    try:
        return DataType[str(name)]
    except KeyError:
        raise HwlinkError(f"unknown data type {name!r}; known types: {', '.join(t.name for t in DataType)}") from None


def can_connect(source: DataType, target: DataType) -> bool:
    """Same type, or two signal block types (converted on delivery, as Syntalos does)."""
    return source == target or (source in SIGNAL_TYPES and target in SIGNAL_TYPES)


class MetaSize:
    """Width and height, e.g. of frames (Syntalos' ``MetaSize``)."""

    __slots__ = ("width", "height")

    def __init__(self, width: int = 0, height: int = 0) -> None:
        self.width = int(width)
        self.height = int(height)

    def __iter__(self) -> Iterator[int]:
        return iter((self.width, self.height))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetaSize) and (self.width, self.height) == (other.width, other.height)

    def __hash__(self) -> int:
        return hash((self.width, self.height))

    def __repr__(self) -> str:
        return f"MetaSize(width={self.width}, height={self.height})"


class Frame:
    """One video frame: ``index``, ``time_usec`` on the master clock, ``mat`` (numpy image)."""

    __slots__ = ("index", "time_usec", "mat")

    def __init__(self, index: int = 0, time_usec: int = 0, mat: np.ndarray | None = None) -> None:
        self.index = int(index)
        self.time_usec = int(time_usec)
        self.mat = np.zeros((0, 0), dtype=np.uint8) if mat is None else mat

    @property
    def time(self) -> datetime.timedelta:
        return datetime.timedelta(microseconds=self.time_usec)

    @time.setter
    def time(self, value: datetime.timedelta) -> None:
        self.time_usec = int(value / datetime.timedelta(microseconds=1))

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, time_usec={self.time_usec}, mat={self.mat.shape} {self.mat.dtype})"


class _SignalBlockBase:
    """Samples x channels of one dtype with one master-clock timestamp (µs since the run started) per sample
    row; timestamps are uint64, Syntalos' type (``VectorXu64``)."""

    __slots__ = ("_timestamps", "_data")
    dtype: ClassVar[np.dtype]
    data_type: ClassVar[DataType]

    def __init__(self, rows: int = 60, cols: int = 1) -> None:
        self._timestamps = np.zeros(rows, dtype=np.uint64)
        self._data = np.zeros((rows, cols), dtype=self.dtype)

    @property
    def timestamps(self) -> np.ndarray:
        return self._timestamps

    @timestamps.setter
    def timestamps(self, value: Any) -> None:
        array = np.asarray(value).reshape(-1)
        if array.dtype.kind not in "iu" and array.size:
            if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
                raise TypeError("SignalBlock timestamps are whole µs")
        if array.dtype.kind != "u" and array.size and array.min() < 0:
            raise ValueError("SignalBlock timestamps are µs since the run started (uint64): none can be negative")
        self._timestamps = np.ascontiguousarray(array, dtype=np.uint64)

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        array = np.asarray(value)
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        self._data = np.ascontiguousarray(_convert_samples(array, self.dtype))

    @property
    def length(self) -> int:
        return int(self._data.shape[0])

    @property
    def rows(self) -> int:
        return int(self._data.shape[0])

    @property
    def cols(self) -> int:
        return int(self._data.shape[1])

    @classmethod
    def of(cls, timestamps: np.ndarray, data: np.ndarray) -> _SignalBlockBase:
        block = cls(0, 0)
        block.timestamps = timestamps
        block.data = data
        return block

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rows={self.rows}, cols={self.cols})"


def _convert_samples(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Type conversion between signal blocks as Syntalos does it: float -> int with NaN -> 0 and clamping."""
    if array.dtype == dtype:
        return array
    if np.issubdtype(dtype, np.integer) and np.issubdtype(array.dtype, np.floating):
        info = np.iinfo(dtype)
        wide = np.nan_to_num(array.astype(np.float64), nan=0.0)  # float32 cannot hold int32's limits exactly
        return np.clip(wide, info.min, info.max).astype(dtype)
    return array.astype(dtype)


class SignalBlockI32(_SignalBlockBase):
    __slots__ = ()
    dtype = np.dtype(np.int32)
    data_type = DataType.SignalBlockI32


class SignalBlockU16(_SignalBlockBase):
    __slots__ = ()
    dtype = np.dtype(np.uint16)
    data_type = DataType.SignalBlockU16


class SignalBlockF32(_SignalBlockBase):
    __slots__ = ()
    dtype = np.dtype(np.float32)
    data_type = DataType.SignalBlockF32


SIGNAL_CLASSES: dict[DataType, type[_SignalBlockBase]] = {
    DataType.SignalBlockI32: SignalBlockI32,
    DataType.SignalBlockU16: SignalBlockU16,
    DataType.SignalBlockF32: SignalBlockF32,
}


def signal_type_for(dtype: np.dtype) -> DataType:
    """The signal block type that holds samples of ``dtype`` without loss where possible."""
    if dtype == np.uint16 or dtype == np.uint8:
        return DataType.SignalBlockU16
    if np.issubdtype(dtype, np.integer):
        return DataType.SignalBlockI32
    return DataType.SignalBlockF32


def from_line_signal_block(block: SignalBlock, data_type: DataType | None = None) -> _SignalBlockBase:
    """A driver's SignalBlock as the stream type the port carries (a sample stamped before time zero, which
    the unsigned stream type cannot hold, gets 0)."""
    cls = SIGNAL_CLASSES[data_type or signal_type_for(block.data.dtype)]
    return cls.of(np.maximum(block.timestamps, 0), block.data)


def convert_signal(block: _SignalBlockBase, target: DataType) -> _SignalBlockBase:
    if block.data_type == target:
        return block
    return SIGNAL_CLASSES[target].of(block.timestamps, block.data)


PYTHON_TYPES: dict[DataType, tuple[type, ...]] = {
    DataType.ControlCommand: (ControlCommand,),
    DataType.TableRow: (list, tuple),
    DataType.Frame: (Frame,),
    DataType.LineCommand: (LineCommand,),
    DataType.LineReading: (LineReading,),
    DataType.SignalBlockI32: (SignalBlockI32,),
    DataType.SignalBlockU16: (SignalBlockU16,),
    DataType.SignalBlockF32: (SignalBlockF32,),
}


def check_item(data_type: DataType, item: object) -> object:
    """Return ``item`` as the port's type or raise TypeError naming both; table rows become lists of str."""
    if data_type == DataType.TableRow:
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence):
            raise TypeError(f"a TableRow port takes a list of values, not {type(item).__name__}")
        return [str(value) for value in item]
    if not isinstance(item, PYTHON_TYPES[data_type]):
        raise TypeError(f"port of type {data_type.name} cannot take a {type(item).__name__}")
    return item


# ----- wire codec --------------------------------------------------------------------------------------------

_NO_DEVICE_TIME = -(2**63)
_READING = struct.Struct("<HIqq")  # lines.LineReading wire (14 bytes) + device time (hwlink extension)
_U32 = struct.Struct("<I")
_FRAME_HEAD = struct.Struct("<QqcB")
_COMMAND = struct.Struct("<iHIqIQ")  # lines.LineCommand's wire layout
_KINDS = {int(kind): kind for kind in LineCommandKind}
_SIGNAL_HEAD = struct.Struct("<II")


def encode(data_type: DataType, item: Any) -> bytes:
    """Bytes of one stream item (the payload of a data message)."""
    if data_type == DataType.LineReading:
        device = item.device_time_usec
        return _READING.pack(item.line_id, item.value, item.time_usec,
                             _NO_DEVICE_TIME if device is None else device)
    if data_type in (DataType.LineCommand, DataType.ControlCommand):
        return item.to_bytes()
    if data_type == DataType.TableRow:
        parts = [_U32.pack(len(item))]
        for value in item:
            text = value.encode()
            parts += (_U32.pack(len(text)), text)
        return b"".join(parts)
    if data_type == DataType.Frame:
        mat = np.ascontiguousarray(item.mat)
        head = _FRAME_HEAD.pack(item.index, item.time_usec, mat.dtype.char.encode(), mat.ndim)
        return head + struct.pack(f"<{mat.ndim}I", *mat.shape) + mat.tobytes()
    if data_type in SIGNAL_TYPES:
        return (_SIGNAL_HEAD.pack(item.rows, item.cols) + np.ascontiguousarray(item.timestamps).tobytes()
                + np.ascontiguousarray(item.data).tobytes())
    raise HwlinkError(f"cannot encode {data_type!r}")


def decode(data_type: DataType, payload: bytes | memoryview) -> Any:
    """Inverse of ``encode``."""
    if data_type == DataType.LineReading:
        line_id, value, time_usec, device = _READING.unpack_from(payload)
        return LineReading(line_id, value, time_usec, None if device == _NO_DEVICE_TIME else device)
    if data_type == DataType.LineCommand:
        return _decode_command(payload)
    if data_type == DataType.ControlCommand:
        return ControlCommand.from_bytes(bytes(payload))
    if data_type == DataType.TableRow:
        (count,) = _U32.unpack_from(payload)
        offset, row = 4, []
        for _ in range(count):
            (length,) = _U32.unpack_from(payload, offset)
            row.append(bytes(payload[offset + 4: offset + 4 + length]).decode())
            offset += 4 + length
        return row
    if data_type == DataType.Frame:
        index, time_usec, char, ndim = _FRAME_HEAD.unpack_from(payload)
        shape = struct.unpack_from(f"<{ndim}I", payload, _FRAME_HEAD.size)
        start = _FRAME_HEAD.size + 4 * ndim
        mat = np.frombuffer(payload, dtype=np.dtype(char.decode()), offset=start).reshape(shape).copy()
        return Frame(index, time_usec, mat)
    if data_type in SIGNAL_TYPES:
        cls = SIGNAL_CLASSES[data_type]
        rows, cols = _SIGNAL_HEAD.unpack_from(payload)
        stamps_end = _SIGNAL_HEAD.size + 8 * rows
        block = cls(0, 0)
        block._timestamps = np.frombuffer(payload, np.uint64, rows, _SIGNAL_HEAD.size).copy()
        block._data = np.frombuffer(payload, cls.dtype, rows * cols, stamps_end).reshape(rows, cols).copy()
        return block
    raise HwlinkError(f"cannot decode {data_type!r}")


def _decode_command(payload: bytes | memoryview) -> LineCommand:
    """LineCommand.from_bytes without re-running the constructor's checks: the sender built the command
    through them and the fixed-width encoding bounds every field (10 µs -> 1.5 µs per command)."""
    kind, line_id, value, duration, flags, extra_length = _COMMAND.unpack_from(payload)
    if kind not in _KINDS:
        return LineCommand.from_bytes(bytes(payload))  # raises the line layer's error
    command = object.__new__(LineCommand)
    command.kind = _KINDS[kind]
    command.line_id = line_id
    command.value = value
    command.duration_usec = duration
    command.flags = LineModeFlags(flags)
    command.extra = bytes(payload[_COMMAND.size: _COMMAND.size + extra_length])
    return command
