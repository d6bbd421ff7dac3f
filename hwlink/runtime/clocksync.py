"""``init_clock_synchronizer`` for scripts: a SecondaryClockSynchronizer whose tsync lands in the collection."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from hwlink.errors import HwlinkError
from hwlink.runtime.ports import SyntalosPyError
from hwlink.runtime.storage import module_dataset
from hwlink.sync import SecondaryClockSynchronizer, TimeSyncStrategy

if TYPE_CHECKING:
    from hwlink.runtime.host import Host


class ScriptClockSynchronizer(SecondaryClockSynchronizer):
    """Syntalos' OOP synchronizer: ``set_strategies`` with WRITE_TSYNCFILE writes into the module's dataset.
    Errors from its setters reach the script as SyntalosPyError, like every error of the API."""

    def __init__(self, host: Host, expected_frequency_hz: float, sync_id: str) -> None:
        try:
            super().__init__(expected_frequency_hz, sync_id or host.module_name)
        except HwlinkError as error:
            raise SyntalosPyError(str(error)) from None
        self._host = host

    def start(self) -> bool:
        try:
            if self.strategies & TimeSyncStrategy.WRITE_TSYNCFILE and self.tsync_file_path is None:
                dataset = module_dataset(self._host)
                self.set_tsync_file_path(dataset.add_aux_file(f"{self.id}.tsync", key=f"tsync-{self.id}",
                                                              summary=f"clock sync {self.id}"))
            if self._host.run_uuid:  # the run's collection id, in the tsync header as Syntalos writes it
                self.set_collection_id(uuid.UUID(bytes=self._host.run_uuid))
            return super().start()
        except HwlinkError as error:
            raise SyntalosPyError(str(error)) from None

    def set_strategies(self, strategies: int) -> None:
        try:
            super().set_strategies(strategies)
        except HwlinkError as error:
            raise SyntalosPyError(str(error)) from None

    def set_tolerance_usec(self, tolerance_usec: int) -> None:
        """Syntalos' Python name of ``set_tolerance``."""
        try:
            self.set_tolerance(tolerance_usec)
        except HwlinkError as error:
            raise SyntalosPyError(str(error)) from None

    def set_calibration_points_count(self, count: int) -> None:
        try:
            super().set_calibration_points_count(count)
        except HwlinkError as error:
            raise SyntalosPyError(str(error)) from None

    @property
    def clock_correction_offset_usec(self) -> int:
        return self.clock_correction_offset


def worker_synchronizer(host: Host, expected_frequency_hz: float, sync_id: str) -> ScriptClockSynchronizer:
    if host.collection_path is None:
        raise SyntalosPyError("Unable to create SecondaryClockSynchronizer (module not in PREPARING / READY / "
                              "RUNNING state).")
    synchronizer = ScriptClockSynchronizer(host, expected_frequency_hz, sync_id)
    host.on_stopped.append(synchronizer.stop)
    return synchronizer
