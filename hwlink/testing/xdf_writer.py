"""A small XDF writer (the file format of LabRecorder), written from the XDF specification, for tests and
benchmarks that need real XDF files: numeric and string streams, clock offsets, stream footers.

Layout: the magic ``XDF:``, then chunks of [length-byte count (1, 4 or 8)][length][tag (uint16)][content], all
little-endian. Tags: 1 file header (XML), 2 stream header (stream id + XML), 3 samples (stream id, sample count,
per sample an optional float64 timestamp and the values), 4 clock offset (stream id, collection time, offset;
float64 seconds), 6 stream footer (stream id + XML).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

_FORMATS = {"float32": "<f4", "double64": "<f8", "int8": "<i1", "int16": "<i2", "int32": "<i4", "int64": "<i8"}


def _varlen(value: int) -> bytes:
    if value < 256:
        return struct.pack("<BB", 1, value)
    if value < 2**32:
        return struct.pack("<BI", 4, value)
    return struct.pack("<BQ", 8, value)


def _chunk(tag: int, content: bytes) -> bytes:
    return _varlen(len(content) + 2) + struct.pack("<H", tag) + content


@dataclass
class XdfStream:
    name: str
    stream_type: str
    channel_format: str  # float32, double64, int8..int64, string
    timestamps: np.ndarray  # seconds, on the stream's own clock
    values: Any  # samples x channels (numbers), or a list of rows of strings
    nominal_srate: float = 0.0
    labels: Sequence[str] = ()
    clock_offsets: Sequence[tuple[float, float]] = ()  # (collection time, offset) pairs, s
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def channel_count(self) -> int:
        if self.channel_format == "string":
            return len(self.values[0]) if len(self.values) else 1
        return int(np.asarray(self.values).reshape(len(self.timestamps), -1).shape[1])

    def header_xml(self) -> str:
        channels = "".join(f"<channel><label>{escape(label)}</label></channel>" for label in self.labels)
        extra = "".join(f"<{key}>{escape(value)}</{key}>" for key, value in self.extra.items())
        return (f'<?xml version="1.0"?><info><name>{escape(self.name)}</name><type>{escape(self.stream_type)}</type>'
                f"<channel_count>{self.channel_count}</channel_count><nominal_srate>{self.nominal_srate}</nominal_srate>"
                f"<channel_format>{self.channel_format}</channel_format><created_at>0</created_at>{extra}"
                f"<desc><channels>{channels}</channels></desc></info>")

    def sample_bytes(self, rows: slice) -> bytes:
        stamps = np.asarray(self.timestamps, dtype=np.float64)[rows]
        out = [_varlen(len(stamps))]
        if self.channel_format == "string":
            for stamp, row in zip(stamps.tolist(), list(self.values)[rows], strict=True):
                out.append(b"\x08" + struct.pack("<d", stamp))
                for text in row:
                    encoded = str(text).encode("utf-8")
                    out.append(_varlen(len(encoded)) + encoded)
        else:
            data = np.asarray(self.values).reshape(len(self.timestamps), -1)[rows].astype(_FORMATS[self.channel_format])
            for stamp, row in zip(stamps.tolist(), data, strict=True):
                out.append(b"\x08" + struct.pack("<d", stamp) + row.tobytes())
        return b"".join(out)


def write_xdf(path: str | Path, streams: Sequence[XdfStream], *, chunk_samples: int = 512) -> Path:
    """Write ``streams`` to ``path`` as XDF 1.0 (header, samples in chunks, clock offsets, footers)."""
    target = Path(path)
    parts = [b"XDF:", _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')]
    for stream_id, stream in enumerate(streams, start=1):
        parts.append(_chunk(2, struct.pack("<I", stream_id) + stream.header_xml().encode("utf-8")))
    for stream_id, stream in enumerate(streams, start=1):
        for start in range(0, len(stream.timestamps), chunk_samples):
            rows = slice(start, start + chunk_samples)
            parts.append(_chunk(3, struct.pack("<I", stream_id) + stream.sample_bytes(rows)))
        for collected, offset in stream.clock_offsets:
            parts.append(_chunk(4, struct.pack("<Idd", stream_id, collected, offset)))
    for stream_id, stream in enumerate(streams, start=1):
        stamps = np.asarray(stream.timestamps, dtype=np.float64)
        offsets = "".join(f"<offset><time>{t!r}</time><value>{v!r}</value></offset>" for t, v in stream.clock_offsets)
        footer = (f'<?xml version="1.0"?><info><first_timestamp>{stamps[0]!r}</first_timestamp>'
                  f"<last_timestamp>{stamps[-1]!r}</last_timestamp><sample_count>{stamps.size}</sample_count>"
                  f"<clock_offsets>{offsets}</clock_offsets></info>")
        parts.append(_chunk(6, struct.pack("<I", stream_id) + footer.encode("utf-8")))
    target.write_bytes(b"".join(parts))
    return target
