"""UUIDv7 (RFC 9562) collection ids; Python 3.12's ``uuid`` module has no generator for them.

Version 7 puts the Unix time in milliseconds in the top 48 bits, so ids sort by creation time, as Syntalos'
ids do. The 12 ``rand_a`` bits carry the sub-millisecond fraction (RFC 9562 §6.2 method 3) and ids made in
the same process are kept strictly increasing.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0


def uuid7(unix_ns: int | None = None) -> uuid.UUID:
    """A new, process-wide monotonic UUIDv7."""
    global _last
    now_ns = time.time_ns() if unix_ns is None else int(unix_ns)
    unix_ms, rest_ns = divmod(now_ns, 1_000_000)
    sub_ms = (rest_ns * 4096) // 1_000_000
    rand_b = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    value = (unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | sub_ms << 64 | 0b10 << 62 | rand_b
    with _lock:
        if unix_ns is None and value <= _last:
            # Same time slot as the previous id: count up in the random bits, keeping version and variant.
            value = _last + 1
            if (value >> 62) & 0b11 != 0b10:
                value = ((value >> 64) + 1) << 64 | 0b10 << 62
        if unix_ns is None:
            _last = value
    return uuid.UUID(int=value)


def uuid7_time_ms(value: uuid.UUID) -> int:
    """Unix time in milliseconds stored in a UUIDv7."""
    return value.int >> 80
