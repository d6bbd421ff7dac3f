"""``hwlink record`` (board lines into an EDL collection) and ``hwlink edl ls|verify``."""

from __future__ import annotations

import datetime
import queue
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from hwlink import __version__
from hwlink.cli.common import DURATION, UserError, board_option, check_unused, collection_path, opened_board
from hwlink.drivers import Board, LineInfo, LineMode, Subscription
from hwlink.drivers.info import analog_units, board_attributes, clock_start_attributes, host_attributes
from hwlink.edl import Collection, Dataset, EdlError, LineReadingWriter, SignalWriter, TableWriter
from hwlink.edl.inspect import FileReader, Finding, describe_tree, verify_tree
from hwlink.errors import BoardError, HwlinkError, LineError
from hwlink.lines import LineModeFlags, LineReading, SignalBlock
from hwlink.platform import stop_signals
from hwlink.sync.secondary import SecondaryClockSynchronizer
from hwlink.sync.tsync import TSyncTruncationWarning, read_tsync

EVENT_HEADER = ["time_usec", "value", "device_time_usec"]
PROGRESS_INTERVAL_S = 0.5


def _split_lines(values: tuple[str, ...], option: str) -> list[str]:
    refs = [piece.strip() for value in values for piece in value.split(",")]
    if any(not ref for ref in refs):
        raise UserError(f"bad {option} {','.join(values)!r}: give line names or numbers separated by commas")
    return refs


def _synchronizer(path: Path, name: str, collection_id: object) -> SecondaryClockSynchronizer:
    """A clock synchronizer that writes its sync points to the tsync file at ``path`` (header: the collection)."""
    sync = SecondaryClockSynchronizer(id=name)
    sync.set_tsync_file_path(path)
    sync.set_collection_id(collection_id)
    sync.start()
    return sync


@dataclass
class LineStream:
    """One recorded input line: its dataset, writer and (with a device clock) clock synchronizer."""

    info: LineInfo
    dataset: Dataset
    writer: LineReadingWriter | TableWriter
    sync: SecondaryClockSynchronizer | None = None
    count: int = 0

    def record(self, reading: LineReading) -> int:
        """Write one reading; with a synchronizer its time is the device time mapped onto the master clock."""
        time_usec = reading.time_usec
        if self.sync is not None and reading.device_time_usec is not None:
            time_usec = self.sync.process_timestamp(reading.time_usec, reading.device_time_usec)
        if isinstance(self.writer, TableWriter):
            device = "" if reading.device_time_usec is None else reading.device_time_usec
            arrival = [reading.time_usec] if self.sync is not None else []
            self.writer.append([time_usec, reading.value, device, *arrival])
        else:
            self.writer.append(reading, time_usec if self.sync is not None else None)
        self.count += 1
        return time_usec

    def close(self) -> None:
        if self.sync is not None:
            self.sync.stop()


@dataclass
class SignalStream:
    dataset: Dataset
    writer: SignalWriter
    count: int = 0


@dataclass
class Recorder:
    """Turns a board's readings and signal blocks into datasets of one collection.

    Digital lines get a CSV event table each, from the start. An analog line is decided on its first reading:
    if a SignalBlock covering it came first (drivers such as nidaq:// deliver each block before the per-sample
    readings made from it), the line is recorded in that block's HDF5 signal dataset and its readings are
    dropped (and unsubscribed); otherwise it gets an HDF5 line-reading dataset of its own.
    """

    board: Board
    collection: Collection
    modes: dict[int, LineMode]
    inbox: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    lines: dict[int, LineStream] = field(default_factory=dict)
    signals: dict[tuple[int, ...], SignalStream] = field(default_factory=dict)
    pending: dict[int, LineInfo] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)
    line_subscriptions: dict[int, Subscription] = field(default_factory=dict)
    publisher: Any = None  # --lsl: hwlink.cli.lsl_publish.RecordPublisher

    def start(self, infos: list[LineInfo]) -> None:
        """Subscribe (readings and signal blocks go to ``inbox``) and create the digital lines' datasets."""
        put = self.inbox.put
        self.subscriptions.append(self.board.subscribe_signals(put, on_error=put))
        digital = [info for info in infos if self.modes[info.line_id] is not LineMode.ANALOG_IN]
        for info in digital:
            self._add_line(info)
        if digital:
            self.subscriptions.append(self.board.subscribe(put, on_error=put,
                                                           lines=[info.line_id for info in digital]))
        for info in infos:
            if info not in digital:
                self.pending[info.line_id] = info
                self.line_subscriptions[info.line_id] = self.board.subscribe(put, lines=[info.line_id])

    def stop(self) -> None:
        for subscription in [*self.subscriptions, *self.line_subscriptions.values()]:
            subscription.cancel()

    def flush_clock_sync(self) -> None:
        """Sync points reach the disk as often as the data does, so a crash keeps the mapping of what was kept."""
        for stream in self.lines.values():
            if stream.sync is not None:
                stream.sync.flush()

    def _add_line(self, info: LineInfo) -> LineStream:
        mode = self.modes[info.line_id]
        dataset = self.collection.create_dataset(info.name)
        dataset.update_attributes({"line_id": info.line_id, "line_name": info.name, "board": self.board.url,
                                   "mode": mode.value, "time_unit": "us"})
        device_clock = self.board.has_device_clock
        if mode is LineMode.ANALOG_IN:
            units = analog_units(self.board, info.line_id)
            dataset.update_attributes(units)
            writer: LineReadingWriter | TableWriter = dataset.line_reading_writer(
                {info.line_id: info.name}, device_clock=device_clock, synced=device_clock,
                value_unit=units["units"], attrs=units, summary=f"Analog readings of line {info.name}")
        else:
            header = EVENT_HEADER + (["arrival_time_usec"] if device_clock else [])
            writer = dataset.table_writer(header, summary=f"Level changes of line {info.name}")
        sync = None
        if device_clock:
            tsync_path = dataset.add_aux_file(f"{dataset.name}_clocksync.tsync", key="clocksync",
                                              summary=f"Clock sync of {self.board.url} (device -> master µs)")
            sync = _synchronizer(tsync_path, f"{dataset.name}", self.collection.collection_id)
            dataset.set_attribute("timestamps", "clock-synchronized master time (device time mapped through "
                                                "the clock sync in the tsync aux file)")
        stream = self.lines[info.line_id] = LineStream(info, dataset, writer, sync)
        return stream

    def add_reading(self, reading: LineReading) -> None:
        stream = self.lines.get(reading.line_id)
        if stream is None:
            info = self.pending.pop(reading.line_id, None)
            if info is None:
                return  # a sampled line's readings still in the queue, or a line not recorded
            stream = self._add_line(info)
        time_usec = stream.record(reading)
        if self.publisher is not None:
            self.publisher.reading(reading, time_usec)

    def add_signal_block(self, block: SignalBlock) -> None:
        key = tuple(block.line_ids)
        stream = self.signals.get(key)
        if stream is None:
            name = "signals" if not self.signals else f"signals-{len(self.signals) + 1}"
            dataset = self.collection.create_dataset(name)
            names = [self._line_name(line_id) for line_id in key]
            # blocks carry physical values where the device knows them (nidaq://: volts)
            units = analog_units(self.board, key[0])
            physical = units["units"] if np.issubdtype(block.data.dtype, np.floating) else "code"
            writer = dataset.signal_writer(names, block.data.dtype, line_ids=key,
                                           sample_rate_hz=units.get("sample_rate_hz"), units=physical,
                                           summary=f"Sampled signals: {', '.join(names)}")
            dataset.update_attributes({"board": self.board.url, "channel_names": names, "time_unit": "us",
                                       "units": physical, "sample_rate_hz": units.get("sample_rate_hz")})
            stream = self.signals[key] = SignalStream(dataset, writer)
            for line_id in key:
                if self.pending.pop(line_id, None) is not None:
                    self.line_subscriptions.pop(line_id).cancel()
        stream.writer.append_block(block)
        stream.count += block.length
        if self.publisher is not None:
            self.publisher.block(block, stream.dataset.name, self._line_name)

    def _line_name(self, line_id: int) -> str:
        try:
            return self.board.line(line_id).name
        except LineError:
            return str(line_id)

    def progress(self, elapsed_s: float) -> str:
        parts = [f"{stream.info.name} {stream.count}" for stream in self.lines.values()]
        parts += [f"{stream.dataset.name} {stream.count} samples" for stream in self.signals.values()]
        return f"recording {elapsed_s:7.1f} s: " + (", ".join(parts) or "waiting for data")

    def close(self) -> list[BaseException]:
        errors: list[BaseException] = []
        for stream in self.lines.values():
            try:
                stream.close()
            except Exception as error:
                errors.append(error)
        try:
            self.collection.close()
        except Exception as error:
            errors.append(error)
        return errors


class StopFlag:
    """Set by Ctrl-C or SIGTERM. A flag rather than an exception, so no write is ever interrupted halfway."""

    def __init__(self) -> None:
        self.requested = False

    def request(self, signum: int, frame: object) -> None:
        self.requested = True


@contextmanager
def _signals_stop(flag: StopFlag) -> Iterator[None]:
    with stop_signals(flag.request):  # Ctrl-C, SIGTERM, SIGHUP; Ctrl-Break and console close on Windows
        yield


def _default_name() -> str:
    return "hwlink-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


@click.command("record")
@click.option("--lines", "line_refs", multiple=True,
              help="Lines to record, comma-separated names or numbers (e.g. 2,A0,A1): digital input where the "
                   "line has one, analog input otherwise.")
@click.option("--analog", "analog_refs", multiple=True,
              help="Lines to record as analog inputs, on lines that can be digital too (e.g. A0 of an Arduino).")
@click.option("--duration", type=DURATION, default=None, help="Stop after this long (default: until Ctrl-C).")
@click.option("-o", "--output", "output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The collection directory to create, e.g. recordings/mouse01 (as in `hwlink run -o`).")
@click.option("--name", default=None,
              help="Without -o: create the collection NAME in the current directory (default hwlink-YYYYMMDD-HHMMSS).")
@click.option("--pullup", is_flag=True, help="Enable pull-ups on digital input lines.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--lsl", "lsl", is_flag=True,
              help="Also publish what is recorded as Lab Streaming Layer streams named after the collection.")
@click.option("--lsl-wait", type=DURATION, default=None,
              help="With --lsl: wait this long for a consumer (e.g. LabRecorder) before recording starts.")
@board_option
def record_command(line_refs: tuple[str, ...], analog_refs: tuple[str, ...], duration: int | None, output: Path | None,
                   name: str | None, pullup: bool, quiet: bool, lsl: bool, lsl_wait: int | None,
                   board_url: str) -> None:
    """Record the --lines of a board into a new EDL collection (HDF5, CSV events, tsync clock sync).

    Ctrl-C (or SIGTERM) stops cleanly with everything saved; data is flushed at least twice a second.
    """
    refs = _split_lines(line_refs, "--lines")
    analog = _split_lines(analog_refs, "--analog")
    if not refs and not analog:
        raise UserError("nothing to record: give --lines and/or --analog")
    target = collection_path(output, name, _default_name())
    with opened_board(board_url) as board:
        wanted = [(board.line(ref), False) for ref in refs] + [(board.line(ref), True) for ref in analog]
        infos = [info for info, _ in wanted]
        if len({info.line_id for info in infos}) != len(infos):
            raise UserError(f"a line is named twice in {','.join(refs + analog)}")
        # Resolve (and so validate) every mode before anything is created; modes are applied after subscribing,
        # so the first readings (a digital line's initial level) are not missed.
        flags = {info.line_id: _input_flags(info, pullup, as_analog) for info, as_analog in wanted}
        modes = {info.line_id: info.resolve_mode(flags[info.line_id]) for info in infos}
        check_unused(target)  # again: the board may have taken a while to open
        collection = Collection.create(target, generator=f"hwlink {__version__}",
                                       attributes={"board": board.url, "lines": [info.name for info in infos],
                                                   **host_attributes(), **clock_start_attributes(board.clock),
                                                   "boards": [board_attributes(board)]})
        recorder = Recorder(board, collection, modes)
        if lsl:
            from hwlink.cli.lsl_publish import RecordPublisher

            recorder.publisher = RecordPublisher(board, collection, infos, wait_usec=lsl_wait)
        try:
            outcome, failure, storage = _record(recorder, infos, flags, duration, quiet)
        finally:
            errors = recorder.close()  # whatever happened, what was recorded is saved
            if recorder.publisher is not None:
                recorder.publisher.close()
                if recorder.publisher.out_of_order:
                    click.echo(f"LSL: {recorder.publisher.out_of_order} reading(s) arrived later than the reorder "
                               "window and were published behind a later timestamp", err=True)
    click.echo(f"{outcome}: {collection.path}", err=True)
    for stream in recorder.lines.values():
        click.echo(f"  {stream.dataset.name}: {stream.count} reading(s)", err=True)
    for signal_stream in recorder.signals.values():
        click.echo(f"  {signal_stream.dataset.name}: {signal_stream.count} sample(s)", err=True)
    if storage is not None:
        raise UserError(f"writing the recording failed, stopped; what was flushed before is in "
                        f"{collection.path}: {storage}")
    if errors:
        raise UserError(f"saving the recording failed: {errors[0]}")
    if failure is not None:
        raise UserError(f"board failed, recording saved in {collection.path}: {failure}")


def _input_flags(info: LineInfo, pullup: bool, analog: bool) -> LineModeFlags:
    """SET_MODE flags as ``hwlink read`` sends them, or analog input when asked for."""
    if analog:
        return LineModeFlags.IS_INPUT | LineModeFlags.ANALOG
    return LineModeFlags.IS_INPUT | (LineModeFlags.PULL_UP if pullup and info.digital_in else LineModeFlags.NONE)


def _record(recorder: Recorder, infos: list[LineInfo], flags: dict[int, LineModeFlags], duration: int | None,
            quiet: bool) -> tuple[str, BoardError | None, HwlinkError | None]:
    """The recording loop: drivers' threads only enqueue, this thread writes.

    Returns (outcome, board error, storage error): a write that fails (disk full, I/O error) stops the
    recording like Ctrl-C does, so every other file is closed with what it holds."""
    inbox = recorder.inbox
    started_wall = datetime.datetime.now().astimezone()
    started = time.monotonic()
    deadline = None if duration is None else started + duration / 1e6
    progress_due = started + PROGRESS_INTERVAL_S
    tty = sys.stderr.isatty()
    outcome, failure, storage = "recorded", None, None
    stop = StopFlag()
    with _signals_stop(stop):
        recorder.start(infos)
        try:
            for info in infos:
                recorder.board.set_mode(info.line_id, flags[info.line_id])
            wait_s = 0.05
            while deadline is None or time.monotonic() < deadline:
                failure = drain_inbox(inbox, recorder, timeout=wait_s)
                if recorder.publisher is not None:  # --lsl: push what is due, once the queue is taken in
                    due_s = recorder.publisher.release()
                    wait_s = 0.05 if due_s is None else min(0.05, due_s)
                if failure is not None:
                    outcome = "board failed"
                    break
                if stop.requested:
                    outcome = "stopped"
                    break
                now = time.monotonic()
                if now >= progress_due:
                    progress_due = now + PROGRESS_INTERVAL_S
                    recorder.flush_clock_sync()
                    if not quiet:
                        line = recorder.progress(now - started)
                        click.echo(f"\r{line}" if tty else line, err=True, nl=not tty)
        except (HwlinkError, OSError) as error:
            if isinstance(error, (BoardError, LineError)) or (isinstance(error, OSError) and not error.errno):
                raise
            outcome, storage = "write failed", error if isinstance(error, HwlinkError) else HwlinkError(str(error))
        finally:
            recorder.stop()
            if tty and not quiet:
                click.echo("", err=True)
        if storage is None:
            try:
                failure = failure or drain_inbox(inbox, recorder, timeout=None, limit=None)
            except (HwlinkError, OSError) as error:
                if isinstance(error, (BoardError, LineError)):
                    raise
                outcome, storage = "write failed", error if isinstance(error, HwlinkError) else HwlinkError(str(error))
    elapsed_ms = round((time.monotonic() - started) * 1000)
    board = recorder.board
    reason = failure if failure is not None else storage
    try:
        recorder.collection.update_attributes({
            "recording_length_msec": elapsed_ms, "recording_start": started_wall.isoformat(timespec="seconds"),
            "success": reason is None, "stopped_early": outcome == "stopped",
            "end_reason": {"recorded": "duration", "stopped": "interrupted"}.get(outcome, "failed"),
            "failure_reason": None if reason is None else str(reason),
            "device_silences": board.silences,
            "dropped_values": sum(board.dropped_values.values()),
            "dropped_values_by_line": {_safe_line_name(board, line_id): count
                                       for line_id, count in board.dropped_values.items()},
            "callback_errors": len(board.callback_errors),
        })
    except HwlinkError as error:  # a full disk may refuse even the attributes: the data files are closed anyway
        storage = storage or error
    return outcome, failure, storage


def _safe_line_name(board: Board, line_id: int) -> str:
    try:
        return board.line(line_id).name
    except LineError:
        return str(line_id)


def drain_inbox(inbox: queue.SimpleQueue[Any], recorder: Recorder, timeout: float | None,
           limit: int | None = 20_000) -> BoardError | None:
    """Write what is queued, at most ``limit`` items so the caller keeps control (waiting up to ``timeout`` for
    the first item; None: don't wait)."""
    try:
        item = inbox.get(timeout=timeout) if timeout is not None else inbox.get_nowait()
    except queue.Empty:
        return None
    handled = 0
    while True:
        handled += 1
        if isinstance(item, LineReading):
            recorder.add_reading(item)
        elif isinstance(item, SignalBlock):
            recorder.add_signal_block(item)
        elif isinstance(item, BoardError):
            drain_inbox(inbox, recorder, timeout=None, limit=None)
            return item
        if limit is not None and handled >= limit:
            return None
        try:
            item = inbox.get_nowait()
        except queue.Empty:
            return None


# ----- hwlink edl ------------------------------------------------------------------------------------------
def _tsync_reader() -> dict[str, FileReader]:
    """tsync files are read by hwlink.sync (a peer layer of hwlink.edl), so the CLI plugs it in."""

    def read(path: Path) -> tuple[int, tuple[int, int] | None, list[str]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TSyncTruncationWarning)  # reported below as a problem instead
            tsync = read_tsync(path, lenient=True)
        problems = []
        if tsync.truncation is not None:
            problems.append(tsync.truncation.describe())
        if tsync.bad_blocks:
            problems.append(f"corrupt block(s) {tsync.bad_blocks}")
        usec_per_unit = tsync.time_units[1].usec_per_unit or 1.0  # time2 is the master side (µs or ms)
        span = (round(tsync.time2.min() * usec_per_unit), round(tsync.time2.max() * usec_per_unit)) \
            if len(tsync) else None
        return len(tsync), span, problems

    return {"tsync": read}


@click.group("edl")
def edl_group() -> None:
    """Inspect EDL collections (hwlink's, Syntalos', edlio's)."""


@edl_group.command("ls")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def edl_ls(path: Path) -> None:
    """Show the tree at PATH: units, data files, sizes, rows and time ranges."""
    try:
        lines = describe_tree(path, readers=_tsync_reader())
    except EdlError as error:
        raise UserError(str(error)) from None
    for line in lines:
        click.echo(line)


@edl_group.command("verify")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def edl_verify(path: Path) -> None:
    """Check PATH against the EDL format and its data files; exit code 1 if errors were found."""
    if not (path / "manifest.toml").is_file():
        raise UserError(f"'{path}' is no EDL unit (no manifest.toml)")
    findings: list[Finding] = verify_tree(path, readers=_tsync_reader())
    for finding in findings:
        click.echo(str(finding))
    errors = sum(1 for finding in findings if finding.level == "error")
    warnings = len(findings) - errors
    click.echo(f"{path}: {errors} error(s), {warnings} warning(s)")
    if errors:
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(record_command)
    group.add_command(edl_group)

