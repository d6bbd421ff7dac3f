"""What Open Ephys' Python Processor plugin embeds as the module ``oe_pyprocessor``.

The plugin's embedded module holds one class, ``PythonProcessor`` (its C++ processor), with one method for
scripts: ``add_python_event(line, state)``. The instance handed to a script's ``PyProcessor.__init__`` is
of this class. The worker (``hwlink.runtime.worker``) registers this module as
``sys.modules['oe_pyprocessor']`` before the script is imported, so ``import oe_pyprocessor`` at its top
works; ``hwlink.runtime.oe`` creates the instance and receives the events.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

__all__ = ["PythonProcessor"]


class PythonProcessor:
    """The processor object of one script (created by hwlink; scripts cannot construct one, as with the
    plugin's binding)."""

    __slots__ = ("_add_event",)

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("oe_pyprocessor.PythonProcessor: No constructor defined!")

    @classmethod
    def _create(cls, add_event: Callable[[int, bool], None]) -> PythonProcessor:
        processor = object.__new__(cls)
        processor._add_event = add_event
        return processor

    def add_python_event(self, line: int, state: bool) -> None:
        """Queue a TTL event on ``line`` (0..255) with ``state`` (True = ON). While acquisition runs it leaves
        after the buffer being processed, stamped with that buffer's first sample; otherwise it is dropped."""
        try:
            number = operator.index(line)
        except TypeError:
            raise TypeError(f"add_python_event(): line must be an int, not {type(line).__name__}") from None
        if not 0 <= number <= 255:
            raise ValueError(f"add_python_event(): TTL line {number} is out of range 0..255")
        self._add_event(number, bool(state))

    def __repr__(self) -> str:
        return "<oe_pyprocessor.PythonProcessor>"
