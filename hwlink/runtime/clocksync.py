"""``init_clock_synchronizer`` for scripts: a SecondaryClockSynchronizer whose tsync lands in the collection."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from hwlink.sync import SecondaryClockSynchronizer, TimeSyncStrategy

if TYPE_CHECKING:
    from hwlink.runtime.host import Host


class ScriptClockSynchronizer(SecondaryClockSynchronizer):
    """Syntalos' OOP synchronizer: ``set_strategies`` with WRITE_TSYNCFILE writes into the module's dataset."""

    def __init__(self, host: Host, expected_frequency_hz: float, sync_id: str) -> None:
        super().__init__(expected_frequency_hz, sync_id or host.module_name)
        self._host = host

    def start(self) -> bool:
        from hwlink.runtime import mlink

        if self.strategies & TimeSyncStrategy.WRITE_TSYNCFILE and self.tsync_file_path is None:
            dataset = mlink.create_default_dataset()
            self.set_tsync_file_path(dataset.add_aux_file(f"{self.id}.tsync", key=f"tsync-{self.id}",
                                                          summary=f"clock sync {self.id}"))
        if self._host.run_uuid:  # the run's collection id, in the tsync header as Syntalos writes it
            self.set_collection_id(uuid.UUID(bytes=self._host.run_uuid))
        return super().start()

    def set_tolerance_usec(self, tolerance_usec: int) -> None:
        """Syntalos' Python name of ``set_tolerance``."""
        self.set_tolerance(tolerance_usec)

    @property
    def clock_correction_offset_usec(self) -> int:
        return self.clock_correction_offset


def worker_synchronizer(host: Host, expected_frequency_hz: float, sync_id: str) -> ScriptClockSynchronizer:
    from hwlink.runtime import mlink

    if host.collection_path is None:
        raise mlink.SyntalosPyError("init_clock_synchronizer() is available from prepare() on")
    synchronizer = ScriptClockSynchronizer(host, expected_frequency_hz, sync_id)
    host.synchronizers.append(synchronizer)
    return synchronizer
