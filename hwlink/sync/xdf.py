"""Edge times from XDF files (LabRecorder's format, read with pyxdf, extra ``[lsl]``), for offline alignment.

A stream is picked by name (or by type, or by its numeric id when the name is a number). Marker streams
(strings, or any stream without a nominal rate) give one edge per sample: its timestamp. Sampled streams give
the rising edges of one channel (name or index; the first by default): the timestamp of the first sample at or
above the middle of the channel's range after one below it. Times are seconds, with LSL's clock offsets applied
as pyxdf does (``synchronize_clocks``), no dejittering, so every edge keeps its own stamp.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hwlink.errors import HwlinkError

__all__ = ["XdfError", "xdf_edges", "xdf_streams"]


class XdfError(HwlinkError, ValueError):
    """The XDF file or the stream asked for cannot be used."""


def _pyxdf() -> Any:
    try:
        import pyxdf
    except ImportError:
        raise XdfError("reading XDF needs pyxdf: pip install 'hwlink[lsl]'") from None
    return pyxdf


def _info(stream: dict[str, Any], key: str) -> str:
    value = stream["info"].get(key, [""])
    return str(value[0] if isinstance(value, list) and value else value or "")


def xdf_streams(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    pyxdf = _pyxdf()
    try:
        streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=True, dejitter_timestamps=False, verbose=False)
    except Exception as error:  # noqa: BLE001 - pyxdf raises many kinds on a damaged file
        raise XdfError(f"{path}: cannot read XDF: {error}") from None
    return streams


def _describe(stream: dict[str, Any]) -> str:
    return f"{_info(stream, 'name')} (type {_info(stream, 'type') or '-'}, id {_info(stream, 'stream_id')})"


def _channel_labels(stream: dict[str, Any]) -> list[str]:
    try:
        channels = stream["info"]["desc"][0]["channels"][0]["channel"]
        return [str(channel.get("label", [""])[0]) for channel in channels]
    except (KeyError, IndexError, TypeError):
        return []


def xdf_edges(path: str | os.PathLike[str], stream: str, channel: str | None = None) -> np.ndarray:
    """Edge times (s) of ``stream`` in the XDF file at ``path``; see the module docstring."""
    streams = xdf_streams(path)
    chosen = [s for s in streams if _info(s, "name") == stream] or \
        [s for s in streams if _info(s, "type") == stream] or \
        [s for s in streams if _info(s, "stream_id") == stream]
    if len(chosen) != 1:
        listing = "; ".join(_describe(s) for s in streams) or "none"
        what = "no stream" if not chosen else f"{len(chosen)} streams"
        raise XdfError(f"{Path(path).name}: {what} named {stream!r}; streams: {listing}")
    picked = chosen[0]
    stamps = np.asarray(picked["time_stamps"], dtype=np.float64)
    series = picked["time_series"]
    rate = float(_info(picked, "nominal_srate") or 0)
    if stamps.size == 0:
        raise XdfError(f"{Path(path).name}: stream {stream!r} has no samples (a damaged or empty recording?)")
    if _info(picked, "channel_format") == "string" or rate == 0:
        return stamps
    values = np.asarray(series, dtype=np.float64).reshape(stamps.size, -1)
    labels = _channel_labels(picked)
    if channel is None:
        column = 0
    elif channel in labels:
        column = labels.index(channel)
    elif channel.isdigit() and int(channel) < values.shape[1]:
        column = int(channel)
    else:
        raise XdfError(f"{Path(path).name}: stream {stream!r} has no channel {channel!r} "
                       f"(channels: {', '.join(labels) or values.shape[1]})")
    trace = values[:, column]
    if trace.size < 2 or not np.isfinite(trace).any() or np.nanmax(trace) == np.nanmin(trace):
        raise XdfError(f"{Path(path).name}: channel {column} of {stream!r} never changes: no edges")
    high = trace >= (np.nanmax(trace) + np.nanmin(trace)) / 2
    rises = np.flatnonzero(high[1:] & ~high[:-1]) + 1
    return stamps[rises]
