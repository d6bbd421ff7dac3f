"""``hwlink record --lsl``: publish what is recorded, as it is recorded, as Lab Streaming Layer streams.

The recorded lines go out in one stream named after the collection (type ``hwlink-lines``, one channel per line,
source id ``hwlink:<collection id>``), with the times ``record`` writes (clock-synchronized master time where the
board has a device clock) converted to LSL's clock. Signal blocks go out in a stream per signal dataset, named
``<collection>-<dataset>`` (type ``hwlink-signals``), at the rate their timestamps show.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwlink.cli.common import UserError
from hwlink.drivers import Board, LineInfo
from hwlink.drivers.lsl_outlet import LineOutlet, SignalOutlet
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
                                    self.source_id)
        except ConfigError as error:
            raise UserError(str(error)) from None
        self.signals: dict[str, SignalOutlet] = {}
        if wait_usec:
            self.lines.wait_for_consumers(wait_usec / 1e6)

    def reading(self, reading: LineReading, time_usec: int) -> None:
        self.lines.push_reading(reading, time_usec)

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
