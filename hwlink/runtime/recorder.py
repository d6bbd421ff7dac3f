"""``kind = "recorder"``: writes one stream of any type into a dataset of the run's collection.

Items are queued on the producer's thread and written by the recorder's own thread, so a slow disk never
holds up a driver or a script. Formats: LineReadings and signal blocks -> HDF5 (``hwlink.edl`` writers),
TableRows -> CSV with the stream's ``table_header``, Frames -> HDF5 (``frames``, ``timestamps``, ``index``),
LineCommands and ControlCommands -> CSV of arrival time and fields. The dataset name is the ``name`` setting,
else the stream's ``data_name_proposal`` metadata ('group/dataset' allowed), else the module name.
"""

from __future__ import annotations

import queue
import threading
from pathlib import PurePosixPath
from typing import Any

import h5py
import numpy as np

from hwlink.runtime.experiment import ModuleSpec, Settings
from hwlink.runtime.module import InPort, Module, RunContext
from hwlink.runtime.datatypes import SIGNAL_TYPES, DataType

_END = object()
FRAME_FLUSH_EVERY = 30


class _FrameWriter:
    """Frames into resizable HDF5 datasets; flushed regularly so a crash keeps most frames."""

    def __init__(self, path: Any) -> None:
        self._file = h5py.File(path, "w")
        self._frames: h5py.Dataset | None = None
        self._times = self._file.create_dataset("timestamps", (0,), np.int64, maxshape=(None,), chunks=(1024,))
        self._times.attrs["unit"] = "us"
        self._index = self._file.create_dataset("index", (0,), np.uint64, maxshape=(None,), chunks=(1024,))
        self.count = 0

    def append(self, frame: Any) -> None:
        mat = np.asarray(frame.mat)
        if self._frames is None:
            self._frames = self._file.create_dataset("frames", (0, *mat.shape), mat.dtype,
                                                     maxshape=(None, *mat.shape), chunks=(1, *mat.shape))
        for dataset, value in ((self._frames, mat), (self._times, frame.time_usec), (self._index, frame.index)):
            dataset.resize(self.count + 1, axis=0)
            dataset[self.count] = value
        self.count += 1
        if self.count % FRAME_FLUSH_EVERY == 0:
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class RecorderModule(Module):
    kind = "recorder"
    description = "recorder"

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        settings = Settings(spec)
        self.dataset_name = settings.text("name", None)
        settings.finish(self.description)
        self.port = self.add_input("in", None, self._on_item)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._writer: Any = None
        self._frame_writer: _FrameWriter | None = None
        self.count = 0

    def start(self) -> None:
        if self.port.source is None:
            return
        self._thread = threading.Thread(target=self._write_loop, name=f"hwlink-{self.name}", daemon=True)
        self._thread.start()

    def _on_item(self, port: InPort, item: Any) -> None:
        self._queue.put((self.ctx.clock.now_usec(), item))

    def _dataset(self) -> Any:
        metadata = self.port.source.metadata if self.port.source else {}
        name = self.dataset_name or metadata.get("data_name_proposal") or self.name
        path = PurePosixPath(str(name))
        return self.ctx.dataset(path.name, str(path.parent) if str(path.parent) != "." else "", module=self.name)

    def _open(self, first: Any) -> None:
        data_type = self.port.stream_type
        metadata = self.port.source.metadata if self.port.source else {}
        dataset = self._dataset()
        if data_type == DataType.LineReading:
            names = metadata.get("line_names") or {first.line_id: f"line{first.line_id}"}
            self._writer = dataset.line_reading_writer({int(k): str(v) for k, v in names.items()},
                                                       device_clock=bool(metadata.get("device_clock", True)))
        elif data_type in SIGNAL_TYPES:
            names = metadata.get("channel_names") or [f"ch{n}" for n in range(first.cols)]
            self._writer = dataset.signal_writer(list(names), first.data.dtype,
                                                 sample_rate_hz=metadata.get("sample_rate"))
        elif data_type == DataType.TableRow:
            header = metadata.get("table_header") or [f"column{n}" for n in range(len(first))]
            self._writer = dataset.table_writer([str(h) for h in header])
        elif data_type == DataType.Frame:
            path = dataset.set_data_file(f"{dataset.name}.h5", summary="video frames")
            self._frame_writer = _FrameWriter(path)
            if "framerate" in metadata:
                dataset.set_attribute("framerate", float(metadata["framerate"]))
        elif data_type == DataType.LineCommand:
            self._writer = dataset.table_writer(["time_usec", "kind", "line_id", "value", "duration_usec", "flags"])
        elif data_type == DataType.ControlCommand:
            self._writer = dataset.table_writer(["time_usec", "kind", "duration_msec", "command"])

    def _write(self, arrival_usec: int, item: Any) -> None:
        data_type = self.port.stream_type
        if self._writer is None and self._frame_writer is None:
            self._open(item)
        if data_type == DataType.LineReading or data_type == DataType.TableRow:
            self._writer.append(item)
        elif data_type in SIGNAL_TYPES:
            self._writer.append(item.timestamps, item.data)
        elif data_type == DataType.Frame:
            assert self._frame_writer is not None
            self._frame_writer.append(item)
        elif data_type == DataType.LineCommand:
            self._writer.append([arrival_usec, item.kind.name, item.line_id, item.value, item.duration_usec,
                                 int(item.flags)])
        elif data_type == DataType.ControlCommand:
            self._writer.append([arrival_usec, item.kind.name, item.duration, item.command])
        self.count += 1

    def _write_loop(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is _END:
                return
            try:
                self._write(*entry)
            except Exception as error:
                self.ctx.fail(self.name, f"recorder failed: {error}")
                return

    def close(self) -> None:
        """Write everything still queued, then close the file (the dataset closes with the collection)."""
        if self._thread is not None:
            self._queue.put(_END)
            self._thread.join()
        if self._frame_writer is not None:
            self._frame_writer.close()
