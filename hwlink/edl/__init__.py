"""Experiment Directory Layout (EDL) collections: the tree, its manifests, and data writers.

One module per concept of the on-disk tree: ``unit`` (what collections, groups and datasets share),
``collection``, ``group``, ``dataset``, ``datafile`` (a manifest's data entries and their parts), ``loading``
(reading a tree back from its manifests); ``signals`` and ``tables`` write the data files.

Stands alone (no driver, runtime or CLI imports) so recorders of every kind can use it::

    from hwlink.edl import Collection

    with Collection.create("recordings", "mouse01-session3") as collection:
        dataset = collection.create_group("daq").create_dataset("ai")
        signals = dataset.signal_writer(["ai0", "ai1"], "float32", sample_rate_hz=30_000, units="V")
        signals.append(timestamps_usec, samples)        # closed (and flushed) with the collection
"""

from hwlink.edl.collection import Collection
from hwlink.edl.datafile import DataFile, DataPart
from hwlink.edl.dataset import Dataset
from hwlink.edl.group import CreateFlag, Group
from hwlink.edl.ids import uuid7
from hwlink.edl.loading import load
from hwlink.edl.signals import (
    LAYOUT_LINE_READINGS,
    LAYOUT_SIGNALS,
    NO_DEVICE_TIME,
    LineReadingWriter,
    SignalWriteError,
    SignalWriter,
    read_signal_file,
)
from hwlink.edl.tables import TableWriteError, TableWriter, read_table
from hwlink.edl.unit import EdlError, Unit, sanitize_name

__all__ = [
    "Collection", "CreateFlag", "DataFile", "DataPart", "Dataset", "EdlError", "Group", "Unit", "load",
    "sanitize_name", "uuid7", "SignalWriter", "LineReadingWriter", "SignalWriteError", "read_signal_file",
    "LAYOUT_SIGNALS", "LAYOUT_LINE_READINGS", "NO_DEVICE_TIME", "TableWriter", "TableWriteError", "read_table",
]
