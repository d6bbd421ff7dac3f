"""tsync files and offline correction: ``hwlink tsync info|dump|verify|plot|correct`` and ``hwlink align``."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click
import numpy as np

from hwlink.cli.common import DURATION, FiniteFloat, UserError
from hwlink.errors import HwlinkError
from hwlink.sync.align import align_edges
from hwlink.sync.offline import IndexTable, Progress, correct_csv, correct_hdf5, load_mapping
from hwlink.sync.tsync import TSyncFile, TSyncTruncationWarning, read_tsync
from hwlink.units import parse_duration_usec, parse_frequency_hz

_CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
_HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf"}
_UNIT_TO_USEC = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


class SignedDuration(click.ParamType):
    """A duration with a unit that may be negative (a lag), e.g. ``--offset=-2.5s``; integer µs."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return parse_duration_usec(value, allow_negative=True)
        except HwlinkError as error:
            self.fail(str(error), param, ctx)


def _read(path: str, lenient: bool = False) -> TSyncFile:
    """Read with truncation reported on the result instead of as a Python warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TSyncTruncationWarning)
        return read_tsync(path, lenient=lenient)


def _status(file: TSyncFile) -> str:
    if file.intact:
        blocks = -(-len(file) // file.block_size)
        return f"ok ({blocks} block(s) verified)"
    parts = []
    if file.bad_blocks:
        parts.append(f"bad blocks skipped: {', '.join(map(str, file.bad_blocks))}")
    if file.truncation is not None:
        parts.append(file.truncation.describe())
    return "; ".join(parts)


def _range(column: np.ndarray) -> str:
    return f"{int(column.min())} .. {int(column.max())}" if column.size else "(empty)"


@click.group("tsync")
def tsync_group() -> None:
    """Inspect, check, export and apply Syntalos .tsync files."""


@tsync_group.command("info")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def info_command(files: tuple[str, ...]) -> None:
    """Header, units, counts, time range and checksum status of each FILE."""
    failures = 0
    for index, name in enumerate(files):
        if index:
            click.echo()
        try:
            file = _read(name)
        except (HwlinkError, OSError) as error:
            if len(files) == 1:  # one file: its error is the one line
                raise UserError(_named(name, _one_line(error))) from None
            failures += 1
            click.echo(_named(name, _one_line(error)), err=True)
            continue
        units = [unit.label for unit in file.time_units]
        click.echo(f"{name}")
        created = file.created.isoformat() if file.created is not None else f"unknown ({file.creation_time} s)"
        click.echo(f"  format:        {file.variant}, created {created}")
        click.echo(f"  module:        {file.module_name or '-'}; collection {file.collection_id}")
        click.echo(f"  mode:          {file.mode.name}, block size {file.block_size}")
        for column in (0, 1):
            click.echo(f"  time{column + 1}:         {file.time_names[column]} ({units[column]}, "
                       f"{file.data_types[column].name}), range {_range(file.times[:, column])}")
        click.echo(f"  user data:     {json.dumps(file.user_data, ensure_ascii=False, sort_keys=True)}")
        click.echo(f"  entries:       {len(file)}")
        click.echo(f"  checksums:     {_status(file)}")
        if not file.intact:
            failures += 1
    if failures:
        raise UserError(f"{failures} of {len(files)} file(s) unreadable or damaged")


def _named(name: str, message: str) -> str:
    """The message with the file named once (hwlink's errors name their file already)."""
    return message if message.startswith(f"{name}:") or name in message[:len(name) + 40] else f"{name}: {message}"


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error).replace("\n", " ")


@tsync_group.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def verify_command(files: tuple[str, ...]) -> None:
    """Check every checksum of each FILE; exit 1 if any file is damaged or truncated."""
    bad = 0
    for name in files:
        try:
            file = _read(name)
        except (HwlinkError, OSError) as error:
            bad += 1
            message = _one_line(error)
            click.echo(f"{name}: FAILED: {message.removeprefix(f'{name}: ')}")
            continue
        if file.intact:
            click.echo(f"{name}: ok ({len(file)} entries, {file.variant})")
        else:
            bad += 1
            click.echo(f"{name}: FAILED: {_status(file)}")
    if bad:
        click.echo(f"{bad} of {len(files)} file(s) failed verification", err=True)
        sys.exit(1)


@tsync_group.command("dump")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "npy"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Output file (default: stdout for csv).")
@click.option("--lenient", is_flag=True, help="Skip damaged blocks and keep unverified entries of a crashed file.")
def dump_command(file: str, fmt: str, output: str | None, lenient: bool) -> None:
    """Export the pairs of FILE: csv (a header line, then time1,time2 per row) or npy (an (n, 2) int64 array)."""
    data = _read(file, lenient=lenient)
    if data.truncation is not None or data.bad_blocks:
        click.echo(f"{file}: warning: {_status(data)}", err=True)
    if fmt == "npy":
        if output is None:
            raise UserError("--format npy needs -o/--output")
        np.save(output, data.times)
        return
    with _text_output(output) as stream:
        stream.write(f"{data.time_names[0]},{data.time_names[1]}\n")
        for start in range(0, len(data), 1 << 16):
            block = data.times[start:start + (1 << 16)].tolist()
            stream.write("".join(f"{a},{b}\n" for a, b in block))


@contextmanager
def _text_output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as stream:
        yield stream


@tsync_group.command("plot")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True), help="PNG file.")
def plot_command(file: str, output: str) -> None:
    """Plot the offset and the drift over the run of FILE into a PNG (needs matplotlib: hwlink[plot]).

    Drift is in ppm with hwlink's sign (+ = device clock fast, as ``skew_ppm``), the robust slope of the offset
    over windows of at least 10 s (the whole file if it is shorter): rows a few ms apart say nothing about a rate.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'hwlink[plot]'") from None
    supported = figure_formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    extension = Path(output).suffix.lower().lstrip(".")
    if extension not in supported:
        raise UserError(f"{output}: unknown image type {extension or '(no extension)'!r}; use one of "
                        f"{', '.join(sorted(figure_formats))}")
    data = _read(file)
    if len(data) < 2:
        raise UserError(f"{file}: needs at least 2 entries to plot, has {len(data)}")
    x_label, x_us, offset_us = _offset_series(data)
    centres_us, drift_ppm, window_us = drift_series(x_us, offset_us)
    figure, axes = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    axes[0].plot(x_us / 1e6, offset_us / 1e3, ".-", markersize=3)
    axes[0].set_ylabel("offset (ms)")
    axes[0].set_title(f"{Path(file).name}: {data.time_names[1]} vs {data.time_names[0]} ({data.mode.name})")
    axes[1].plot(centres_us / 1e6, drift_ppm, ".-" if drift_ppm.size > 1 else "o")
    axes[1].set_ylabel("drift (ppm, + = device fast)")
    axes[1].set_title(f"drift over {window_us / 1e6:.3g} s windows", fontsize="small")
    axes[1].set_xlabel(x_label)
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    click.echo(f"wrote {output}")


MIN_DRIFT_WINDOW_US = 10_000_000
_DRIFT_POINTS = 200  # window centres plotted
_POINTS_PER_WINDOW = 48  # rows per window used for the slope (evenly picked)


def drift_series(x_us: np.ndarray, offset_us: np.ndarray, min_window_us: float = MIN_DRIFT_WINDOW_US
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """Drift (ppm, + = device fast) at window centres: (centres µs, drift ppm, window µs).

    ``offset_us`` is master minus device time, so a fast device makes it fall: drift = -d(offset)/dx. The window
    is ``min_window_us`` or a fiftieth of the file, whichever is longer (the whole file if that is shorter); in
    each, the slope is the median of the slopes between rows at least a quarter window apart (Theil-Sen), so
    rows a few ms apart, and a synchronizer's first settling rows, do not pass for a rate.
    """
    x = (np.asarray(x_us, dtype=np.float64) - float(x_us[0])) / 1e6  # seconds, small numbers
    y = np.asarray(offset_us, dtype=np.float64)
    span = float(x[-1] - x[0]) if x.size else 0.0
    window = max(min_window_us / 1e6, span / 50)
    if span <= window:
        centres, window = np.array([0.5 * (x[0] + x[-1])]), span
    else:
        centres = np.linspace(x[0] + window / 2, x[-1] - window / 2, _DRIFT_POINTS)
    lo = np.searchsorted(x, centres - window / 2, side="left")
    hi = np.searchsorted(x, centres + window / 2, side="right")
    drift = np.full(centres.shape, np.nan)
    for k, (start, stop) in enumerate(zip(lo.tolist(), hi.tolist())):
        pick = np.unique(np.linspace(start, stop - 1, min(stop - start, _POINTS_PER_WINDOW)).round().astype(int))
        if pick.size < 2:
            continue
        dx = x[pick][None, :] - x[pick][:, None]
        dy = y[pick][None, :] - y[pick][:, None]
        far = dx >= max(window / 4, 1e-9) if pick.size > 2 else dx > 0
        if far.any():
            drift[k] = -float(np.median(dy[far] / dx[far]))  # µs per s = ppm
    return centres * 1e6 + float(x_us[0]), drift, window * 1e6


def _offset_series(data: TSyncFile) -> tuple[str, np.ndarray, np.ndarray]:
    """x (µs) and the offset to plot: time2 - time1 for two time columns, deviation from a line for an index."""
    scale1, scale2 = (unit.usec_per_unit for unit in data.time_units)
    second = data.time2.astype(np.float64) * (scale2 or 1.0)
    first = data.time1.astype(np.float64)
    if scale1 is None or scale2 is None:
        slope, intercept = np.polyfit(first, second, 1)
        return f"{data.time_names[1]} (s)", second, second - (intercept + slope * first)
    first *= scale1
    return f"{data.time_names[0]} (s)", first, second - first


@tsync_group.command("correct")
@click.argument("input_path", type=click.Path(exists=True))
@click.option("-t", "--tsync", "tsync_file", type=click.Path(dir_okay=False), default=None,
              help="The tsync file to apply (default for an EDL dataset: its aux tsync).")
@click.option("-o", "--output", type=click.Path(writable=True), default=None,
              help="Output file for CSV/npy inputs (default INPUT with a _master suffix); a directory for an "
                   "EDL dataset's CSV parts (default the dataset directory).")
@click.option("--column", default=None, help="CSV column (name or 0-based index) or 2-D HDF5 column index.")
@click.option("--dataset", default=None, help="HDF5 dataset to correct (HDF5 inputs and EDL HDF5 parts).")
@click.option("--rate", "rate", default=None, help="Values are sample indices at this rate, e.g. 30kHz.")
@click.option("--unit", type=click.Choice(sorted(_UNIT_TO_USEC)), default="us", show_default=True,
              help="Unit of time values in the input (ignored with --rate and for index tables).")
@click.option("--new-column", default=None, help="Add the corrected values as this column instead of replacing.")
def correct_command(input_path: str, tsync_file: str | None, output: str | None, column: str | None,
                    dataset: str | None, rate: str | None, unit: str, new_column: str | None) -> None:
    """Map the secondary times in INPUT to master µs.

    SYNCPOINTS files map device times (or sample indices with --rate) by linear interpolation between sync
    points, as edlio does; CONTINUOUS files are index -> time tables. INPUT is a CSV file (one --column), an
    HDF5 file (--dataset; the result is a new dataset <name>_master_us), a .npy array, or an EDL dataset
    directory (its CSV/HDF5 data parts, corrected with its own aux tsync unless --tsync is given).
    """
    rate_hz = parse_frequency_hz(rate) if rate is not None else None
    source = Path(input_path)
    if source.is_dir() and tsync_file is None:
        from hwlink.edl_correction import dataset_mapping, open_dataset

        mapping = dataset_mapping(open_dataset(source), rate_hz=rate_hz)
    elif tsync_file is None:
        raise UserError("give the tsync file to apply with -t/--tsync")
    else:
        mapping = load_mapping(tsync_file, rate_hz=rate_hz)
    scale = 1.0 if rate_hz is not None or isinstance(mapping, IndexTable) else _UNIT_TO_USEC[unit]
    suffix = source.suffix.lower()
    with _progress_bar(source.name) as progress:
        if source.is_dir():
            from hwlink.edl_correction import correct_edl_dataset

            written = correct_edl_dataset(source, mapping=mapping, output_dir=output, column=column,
                                          hdf5_dataset=dataset, scale=scale, progress=progress)
            message = "wrote " + ", ".join(written)
        elif suffix in _HDF5_SUFFIXES:
            if dataset is None:
                raise UserError("an HDF5 input needs --dataset")
            name = correct_hdf5(source, dataset, mapping, out_dataset=new_column,
                                column=int(column) if column is not None else None, scale=scale, progress=progress)
            message = f"wrote dataset {name} in {source}"
        elif suffix == ".npy":
            target = Path(output) if output else source.with_name(f"{source.stem}_master.npy")
            values = _load_npy(source, mmap=True)
            if values.ndim != 1:
                raise UserError(f"{source}: expected a 1-D array, got shape {values.shape}")
            # Both arrays memory-mapped, processed a chunk at a time: memory stays bounded for any size.
            result = np.lib.format.open_memmap(target, mode="w+", dtype=np.float64, shape=values.shape)
            for start in range(0, values.shape[0], 1 << 20):
                piece = np.array(values[start:start + (1 << 20)], dtype=np.float64)
                if scale != 1.0:
                    piece *= scale
                result[start:start + piece.size] = mapping(piece, out=piece)
                progress(start + piece.size, values.shape[0])
            result.flush()
            message = f"wrote {target} ({result.size} values)"
            del result
        elif suffix in _CSV_SUFFIXES:
            if column is None:
                raise UserError("a CSV input needs --column (a name or 0-based index)")
            from hwlink.edl_correction import device_clock_column

            device_clock_column(source, column)  # an hwlink table's master-clock column is refused
            target = Path(output) if output else source.with_name(f"{source.stem}_master{source.suffix}")
            rows = correct_csv(source, target, column, mapping, new_column=new_column, scale=scale,
                               progress=progress)
            message = f"wrote {target} ({rows} rows)"
        else:
            raise UserError(f"{source}: unsupported input (use .csv/.tsv/.txt, .h5/.hdf5, .npy or an EDL dataset)")
    click.echo(message)


@contextmanager
def _progress_bar(label: str) -> Iterator[Progress]:
    """A progress bar on stderr when it is a terminal; silent otherwise (pipes, tests)."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    with click.progressbar(length=1000, label=label, file=sys.stderr) as bar:
        state = {"shown": 0}

        def update(done: int, total: int) -> None:
            position = int(1000 * done / total) if total else 1000
            bar.update(position - state["shown"])
            state["shown"] = position

        yield update


def _read_numbers(path: str, column: str | None) -> np.ndarray:
    """Edge or time values from .npy, or a text/CSV file (one column; a header line is skipped)."""
    source = Path(path)
    if source.suffix.lower() == ".npy":
        values = _load_npy(source, mmap=False)
        if values.ndim == 2 and column is not None:
            if not column.isdigit() or int(column) >= values.shape[1]:
                raise UserError(f"{path}: no column {column!r} (the array has {values.shape[1]} columns)")
            values = values[:, int(column)]
        if values.ndim != 1:
            raise UserError(f"{path}: expected a 1-D array (or --column for 2-D), got shape {values.shape}")
        return _finite(values.astype(np.float64), path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start}); expected numbers, one per line "
                        "(or a CSV column, or .npy)") from None
    if not lines:
        raise UserError(f"{path}: empty file")
    delimiter = ";" if ";" in lines[0] else ("\t" if "\t" in lines[0] else ",")
    first_cells = [cell.strip() for cell in lines[0].split(delimiter)]
    has_header = not all(_numeric(cell) for cell in first_cells if cell)
    if column is None:
        position = 0
    elif column.isdigit():
        position = int(column)
    elif has_header and column in first_cells:
        position = first_cells.index(column)
    else:
        listing = f" (columns: {', '.join(first_cells)})" if has_header else ""
        raise UserError(f"{path}: no column {column!r}{listing}")
    rows = lines[1:] if has_header else lines
    values = []
    for number, line in enumerate(rows, start=len(lines) - len(rows) + 1):
        if not line.strip():
            continue
        cells = line.split(delimiter)
        try:
            values.append(float(cells[position]))
        except (IndexError, ValueError):
            raise UserError(f"{path}: line {number}: not a number in column {position}: {line[:60]!r}") from None
    return _finite(np.array(values, dtype=np.float64), path)


def _finite(values: np.ndarray, path: str) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise UserError(f"{path}: value {bad[0] + 1} is {values[bad[0]]} (times must be finite numbers)")
    return values


def _load_npy(source: Path, *, mmap: bool) -> np.ndarray:
    """A numeric .npy array; a damaged file or one holding Python objects is a one-line error naming it."""
    try:
        values = np.load(source, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError, TypeError) as error:
        raise UserError(f"{source}: not a readable numeric .npy file ({str(error).splitlines()[0]})") from None
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "iuf":
        kind = getattr(values, "dtype", type(values).__name__)
        raise UserError(f"{source}: expected a numeric array, got {kind}")
    return values


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@click.command("align")
@click.argument("master_edges", type=click.Path(dir_okay=False, exists=True))
@click.argument("secondary_edges", type=click.Path(dir_okay=False, exists=True))
@click.option("--rate", required=True, help="Sample rate of the streams (sets tolerances and QC), e.g. 30kHz.")
@click.option("--unit", type=click.Choice(["samples", *sorted(_UNIT_TO_USEC)]), default="s", show_default=True,
              help="Unit of the edge and --times values (samples: indices at --rate).")
@click.option("--column", default=None, help="Column (name or index) in CSV/2-D inputs.")
@click.option("--offset", "offset_usec", type=SignedDuration(), default=None,
              help="Expected secondary-minus-master lag, e.g. --offset=-2s (needed for periodic pulses more than "
                   "half a period apart).")
@click.option("--max-lag", "max_lag_usec", type=DURATION, default=None,
              help="Largest deviation from --offset searched (default: half the edge interval).")
@click.option("--min-segment-edges", "segment_edges", default=8, show_default=True, type=click.IntRange(min=2),
              help="Fewest matched edges per piece of the piecewise correction.")
@click.option("--tsync", "tsync_out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the map as a SYNCPOINTS tsync (device-time -> master-time, µs).")
@click.option("--times", "times_in", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Secondary-clock timestamps to correct (same unit as the edges).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Where the corrected --times go (.npy, or text with one value per line), in master µs.")
@click.option("--json", "as_json", is_flag=True, help="Print the QC as JSON.")
@click.option("--max-residual", type=FiniteFloat(0, 1e12), default=None,
              help="Exit 1 if any edge residual exceeds this many samples.")
@click.option("--master-stream", default=None,
              help="With an XDF (LabRecorder) MASTER_EDGES: the stream whose edges to use (name, type or id).")
@click.option("--secondary-stream", default=None,
              help="With an XDF SECONDARY_EDGES: the stream whose edges to use (name, type or id).")
def align_command(master_edges: str, secondary_edges: str, rate: str, unit: str, column: str | None,
                  offset_usec: int | None, max_lag_usec: int | None, segment_edges: int, tsync_out: str | None,
                  times_in: str | None, output: str | None, as_json: bool, max_residual: float | None,
                  master_stream: str | None, secondary_stream: str | None) -> None:
    """Align SECONDARY_EDGES to MASTER_EDGES (the same sync pulses seen by two devices) and report QC.

    Edges are matched despite dropped or extra edges, offset and drift are fitted robustly, and a piecewise
    correction keeps every edge within the sample quantization where the clocks allow it.
    """
    rate_hz = parse_frequency_hz(rate)
    if (times_in is None) != (output is None):
        raise UserError("--times and -o/--output go together")
    # Work in seconds internally; convert everything once.
    to_seconds = 1.0 / rate_hz if unit == "samples" else _UNIT_TO_USEC[unit] / 1e6
    master = _edge_seconds(master_edges, master_stream, "--master-stream", column, to_seconds)
    secondary = _edge_seconds(secondary_edges, secondary_stream, "--secondary-stream", column, to_seconds)
    result = align_edges(master, secondary, sample_period=1.0 / rate_hz,
                         initial_offset=(offset_usec or 0) / 1e6,
                         max_lag=None if max_lag_usec is None else max_lag_usec / 1e6,
                         min_edges_per_segment=segment_edges)
    qc = result.qc
    if as_json:
        click.echo(json.dumps({**qc.__dict__, "knots": int(len(result.mapping))}, sort_keys=True))
    else:
        for line in qc.lines():
            click.echo(line)
    if tsync_out:
        result.write_tsync(tsync_out, usec_per_unit=1e6)
        if not as_json:
            click.echo(f"wrote {tsync_out}")
    if times_in and output:
        corrected = result.to_master(_read_numbers(times_in, column) * to_seconds) * 1e6
        _write_values(output, corrected)
        if not as_json:
            click.echo(f"wrote {output} ({corrected.size} timestamps, master µs)")
    if max_residual is not None and qc.max_residual_samples > max_residual:
        click.echo(f"QC failed: max residual {qc.max_residual_samples:.3f} > {max_residual} samples", err=True)
        sys.exit(1)


def _edge_seconds(path: str, stream: str | None, option: str, column: str | None, to_seconds: float) -> np.ndarray:
    """Edges in seconds: from a stream of an XDF file (marker times or a channel's rising edges; XDF times are
    seconds whatever --unit says), else from a numbers file in --unit."""
    if not path.lower().endswith(".xdf"):
        if stream is not None:
            raise UserError(f"{option} applies to XDF files; {path} is not one")
        return _read_numbers(path, column) * to_seconds
    from hwlink.sync.xdf import XdfError, xdf_edges

    if stream is None:
        raise UserError(f"{path} is an XDF file: say which stream's edges to use with {option} NAME")
    try:
        return xdf_edges(path, stream, column)
    except XdfError as error:
        raise UserError(str(error)) from None


def _write_values(path: str, values: np.ndarray) -> None:
    if path.lower().endswith(".npy"):
        np.save(path, values)
        return
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("".join(f"{value:.3f}\n" for value in values.tolist()))


def register(group: click.Group) -> None:
    group.add_command(tsync_group)
    group.add_command(align_command)

