"""Any driver as an experiment module: LineCommands in, LineReadings and signal blocks out.

The board's own reading thread emits straight into the connected ports (scripts get the reading sent without
blocking that thread), so the master-clock stamp a reading carries is taken before any consumer runs. Boards
with a device clock also record every (device time, master arrival time) pair into a tsync file in the
board's dataset, for offline clock correction.
"""

from __future__ import annotations

from typing import Any

from hwlink.sync import SecondaryClockSynchronizer, TimeSyncStrategy

from hwlink.drivers import Board, open_board
from hwlink.errors import HwlinkError
from hwlink.lines import ControlCommand, ControlCommandKind, LineCommand, LineModeFlags, LineReading, SignalBlock
from hwlink.runtime.experiment import ModuleSpec, Settings
from hwlink.runtime.module import InPort, Module, RunContext
from hwlink.runtime.datatypes import DataType, from_line_signal_block


class BoardModule(Module):
    """``kind = "board"``: ``url`` (any driver), optional ``inputs`` / ``outputs`` lines set up at start."""

    kind = "board"
    description = "board"
    is_source = True

    def __init__(self, spec: ModuleSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        settings = Settings(spec)
        self.url = settings.text("url")
        self._input_refs = settings.strings("inputs", [])
        self._output_refs = settings.strings("outputs", [])
        self._pullup = bool(settings.raw("pullup", False))
        self._sample_rate = settings.frequency_hz("sample_rate", None)
        self._timestamps = settings.text("timestamps", "synchronized")
        if self._timestamps not in ("synchronized", "arrival"):
            raise settings.error("timestamps", "timestamps must be \"synchronized\" or \"arrival\"")
        self._settings = settings
        settings.finish(self.description)
        self.add_input("commands", DataType.LineCommand, self._on_command)
        self.add_input("control", DataType.ControlCommand, self._on_control)
        self.readings = self.add_output("readings", DataType.LineReading)
        self.signals = self.add_output("signals", DataType.SignalBlockF32)
        self.board: Board | None = None
        self._delivering = False
        self._running = False
        self._synchronizer: SecondaryClockSynchronizer | None = None
        self._subscriptions: list[Any] = []

    def load(self) -> None:
        try:
            self.board = open_board(self.url, clock=self.ctx.clock)
            for ref in (*self._input_refs, *self._output_refs):
                self.board.line(ref)
        except HwlinkError as error:
            raise self._settings.error("url" if self.board is None else "inputs", str(error)) from None
        names = {info.line_id: info.name for info in self.board.lines}
        self.readings.metadata = {"line_names": names, "device_clock": self.board.has_device_clock,
                                  "board": self.url}
        sampled = [self.board.line(ref) for ref in self._input_refs]
        sampled = [info for info in sampled if info.analog_in_bits and not info.digital_in]
        self.signals.metadata = {"channel_names": [info.name for info in sampled], "channel_count": len(sampled),
                                 "board": self.url}
        if self._sample_rate is not None:  # the driver's rate, for consumers that need it before data flows
            self.signals.metadata["sample_rate"] = self._sample_rate
        self._subscriptions.append(self.board.subscribe(self._on_reading, on_error=self._on_board_error))
        self._subscriptions.append(self.board.subscribe_signals(self._on_signals, on_error=self._on_board_error))

    def prepare(self) -> None:
        self._running = True  # scripts start before sources and send SET_MODE from their start()
        self._delivering = True  # ... and must see what that does, from time zero on
        self.readings.set_metadata(self.readings.metadata)
        self.signals.set_metadata(self.signals.metadata)
        if self.board is not None and self.board.has_device_clock:
            dataset = self.ctx.dataset(self.name, module=self.name)
            dataset.update_attributes({"board": self.url, "contents": "the board's clock sync only (aux tsync: "
                                       "device time -> master time); its readings are in the datasets of the "
                                       "recorders connected to it"})
            synchronizer = SecondaryClockSynchronizer(id=self.name)
            synchronizer.set_collection_id(self.ctx.collection.collection_id if self.ctx.collection else None)
            synchronizer.set_tsync_file_path(dataset.add_aux_file(
                f"{self.name}-clock.tsync", key="clock-sync", summary="device clock -> master clock"))
            if self._timestamps == "arrival":
                synchronizer.set_strategies(int(TimeSyncStrategy.WRITE_TSYNCFILE))
            synchronizer.start()
            self._synchronizer = synchronizer

    def start(self) -> None:
        assert self.board is not None
        for ref in self._input_refs:
            info = self.board.line(ref)
            flags = LineModeFlags.IS_INPUT
            if self._pullup and info.pullup:
                flags |= LineModeFlags.PULL_UP
            self.board.set_mode(info.line_id, flags)
        for ref in self._output_refs:
            self.board.set_mode(self.board.line(ref).line_id, LineModeFlags.IS_OUTPUT)

    def _record_faults(self) -> None:
        """The board's silences, dropped out-of-range values and failure go into its dataset's attributes."""
        board = self.board
        assert board is not None
        faults = {"device_silences": board.silences, "dropped_values": sum(board.dropped_values.values()),
                  "callback_errors": len(board.callback_errors), "board_failed": board.error is not None,
                  "failure_reason": str(board.error) if board.error is not None else ""}
        if self._synchronizer is None and not any(faults.values()):
            return  # no dataset of its own, and nothing to say
        try:
            self.ctx.dataset(self.name).update_attributes(faults)
        except HwlinkError:
            pass  # a full disk refuses the attributes too; the data files are closed anyway

    def _on_reading(self, reading: LineReading) -> None:
        if not self._delivering or not self.ctx.clock_running:
            return
        if self._synchronizer is not None and reading.device_time_usec is not None:
            reading.time_usec = self._synchronizer.process_timestamp(reading.time_usec, reading.device_time_usec)
        self.readings.emit(reading)

    def _on_signals(self, block: SignalBlock) -> None:
        if self._delivering and self.ctx.clock_running:
            self.signals.emit(from_line_signal_block(block, DataType.SignalBlockF32))

    def _on_board_error(self, error: HwlinkError) -> None:
        if self._running:
            self.ctx.fail(self.name, f"board {self.url} failed: {error}")

    def _on_command(self, port: InPort, command: LineCommand) -> None:
        if self._running and self.board is not None:
            self.board.submit(command)

    def _on_control(self, port: InPort, command: ControlCommand) -> None:
        """START resumes and PAUSE/STOP pause the delivery of readings (the board keeps running)."""
        if command.kind == ControlCommandKind.START:
            self._delivering = True
        elif command.kind in (ControlCommandKind.PAUSE, ControlCommandKind.STOP):
            self._delivering = False

    def stop(self) -> None:
        self._delivering = False

    def close(self) -> None:
        self._running = False
        self._delivering = False
        for subscription in self._subscriptions:
            subscription.cancel()
        if self.board is not None:
            self.board.close()
            self._record_faults()
        if self._synchronizer is not None:
            self._synchronizer.stop()
