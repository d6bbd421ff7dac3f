"""``hwlink record --lsl``: publish what is recorded, as it is recorded, as Lab Streaming Layer streams.

The recorded lines go out in one stream named after the collection (type ``hwlink-lines``, one channel per line,
source id ``hwlink:<collection id>``), with the times ``record`` writes (clock-synchronized master time where the
board has a device clock) converted to LSL's clock. Signal blocks go out in a stream per signal dataset, named
``<collection>-<dataset>`` (type ``hwlink-signals``), at the rate their timestamps show.

Each line has its own clock synchronizer and latency, so with several lines a reading can be stamped earlier than
one of another line that came just before: the line stream then goes through a reorder buffer
(:class:`hwlink.drivers.lsl_outlet.ReorderBuffer`), which the recording loop releases after each batch it takes in
(:meth:`RecordPublisher.release`), so readings still queued are never overtaken. One line, or signal blocks, are
in order already and are pushed as they come.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwlink.cli.common import UserError
from hwlink.drivers import Board, LineInfo
from hwlink.drivers.lsl_outlet import LineOutlet, ReorderBuffer, SignalOutlet
from hwlink.edl import Collection
from hwlink.errors import ConfigError
from hwlink.lines import LineReading, SignalBlock


class RecordPublisher:
    def __init__(self, board: Board, collection: Collection, infos: list[LineInfo],
                 wait_usec: int | None = None) -> None:
        self.clock = board.clock
        self.name = collection.name
        self.source_id = f"hwlink:{collection.collection_id}"
        try:
            self.lines = LineOutlet(self.clock, self.name, {info.line_id: info.name for info in infos},
                                    self.source_id, reorder=ReorderBuffer() if len(infos) > 1 else None)
        except ConfigError as error:
            raise UserError(str(error)) from None
        self.signals: dict[str, SignalOutlet] = {}
        if wait_usec:
            self.lines.wait_for_consumers(wait_usec / 1e6)

    def reading(self, reading: LineReading, time_usec: int) -> None:
        # reading.time_usec is its host arrival (time_usec its synchronized time): the recording loop takes in
        # everything queued before it releases, so only the lateness up to arrival needs the window
        self.lines.push_reading(reading, time_usec, arrival_usec=reading.time_usec)

    def release(self) -> float | None:
        """Push the held readings that are due (call after taking in everything queued); returns the seconds
        until the next one is due (None: none held)."""
        return self.lines.release()

    @property
    def out_of_order(self) -> int:
        """Readings that arrived later than the reorder window and went out behind a later stamp."""
        return self.lines.reorder.out_of_order if self.lines.reorder is not None else 0

    def block(self, block: SignalBlock, dataset: str, line_name: Callable[[int], str]) -> None:
        outlet = self.signals.get(dataset)
        if outlet is None:
            stamps = np.asarray(block.timestamps, dtype=np.float64)
            rate = 1e6 / float(np.median(np.diff(stamps))) if stamps.size > 1 and np.all(np.diff(stamps) > 0) \
                else 0.0
            outlet = self.signals[dataset] = SignalOutlet(
                self.clock, f"{self.name}-{dataset}", [line_name(i) for i in block.line_ids], block.data.dtype,
                round(rate, 6), f"{self.source_id}:{dataset}")
        outlet.push_block(block.timestamps, block.data)

    def close(self) -> None:
        for outlet in [self.lines, *self.signals.values()]:
            outlet.close()
