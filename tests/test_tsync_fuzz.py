"""Fuzzing the tsync reader: mutated, truncated and hostile-header files give only hwlink's typed errors."""

from __future__ import annotations

import struct
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwlink.sync.tsync import TSyncError, TSyncWriter, read_tsync

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


def valid_file(tmp_path: Path) -> bytes:
    path = tmp_path / "base.tsync"
    with TSyncWriter(path, block_size=8, tolerance_us=1500, module_name="fuzz") as writer:
        writer.add_many(np.arange(30) * 1000, np.arange(30) * 1001)
    return path.read_bytes()


def read_both_ways(path: Path) -> None:
    """Strict and lenient reads must succeed or raise TSyncError; anything else fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lenient in (False, True):
            try:
                result = read_tsync(path, lenient=lenient)
            except TSyncError:
                continue
            assert result.times.ndim == 2 and result.times.shape[1] == 2
            assert result.times.shape[0] <= path.stat().st_size


@FUZZ
@given(data=st.data())
def test_mutated_and_truncated_files(tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(valid_file(tmp_path))
    for _ in range(data.draw(st.integers(0, 4), label="mutations")):
        offset = data.draw(st.integers(0, len(raw) - 1), label="offset")
        raw[offset] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(0, len(raw)), label="keep")
    path = tmp_path / "fuzzed.tsync"
    path.write_bytes(bytes(raw[:cut]))
    read_both_ways(path)


def hashed_header(*, block_size: int, mode: int, types: tuple[int, int], units: tuple[int, int],
                  lengths: tuple[int, int, int]) -> bytes:
    """A header whose checksum is right but whose fields are arbitrary: the parser must still validate."""
    body = bytearray(struct.pack("<HHq", 1, 2, 0))
    for length in lengths:
        body += struct.pack("<I", length) + b"x" * min(length, 8)
    body += struct.pack("<Hi", mode, block_size)
    for unit, dtype in zip(units, types, strict=True):
        body += struct.pack("<I", 1) + b"t" + struct.pack("<HH", unit, dtype)
    body += bytes(-(8 + len(body)) & 7)
    return (struct.pack("<Q", 0xB28FE2434E53548A) + bytes(body)
            + struct.pack("<QQ", 0x9198E2, xxhash.xxh3_64_intdigest(bytes(body))))


@FUZZ
@given(block_size=st.integers(-2**31, 2**31 - 1), mode=st.integers(0, 3),
       types=st.tuples(st.integers(0, 9), st.integers(0, 9)), units=st.tuples(st.integers(0, 6), st.integers(0, 6)),
       lengths=st.tuples(st.sampled_from([0, 8, 2**32 - 1, 2**31]), st.just(8), st.just(8)),
       payload=st.binary(max_size=300))
def test_hostile_headers_with_valid_checksums(tmp_path: Path, block_size: int, mode: int, types: tuple[int, int],
                                              units: tuple[int, int], lengths: tuple[int, int, int],
                                              payload: bytes) -> None:
    path = tmp_path / "hostile.tsync"
    path.write_bytes(hashed_header(block_size=block_size, mode=mode, types=types, units=units, lengths=lengths)
                     + payload)
    read_both_ways(path)


@pytest.mark.parametrize("block_size", [2**31 - 1, 1, 2**20])
def test_corrupt_lengths_do_not_allocate_unboundedly(tmp_path: Path, block_size: int) -> None:
    path = tmp_path / "huge.tsync"
    path.write_bytes(hashed_header(block_size=block_size, mode=1, types=(4, 4), units=(2, 2), lengths=(8, 8, 8))
                     + bytes(4000))
    tracemalloc.start()
    try:
        read_both_ways(path)
        bad_string = tmp_path / "bad-string.tsync"
        bad_string.write_bytes(hashed_header(block_size=8, mode=1, types=(4, 4), units=(2, 2),
                                             lengths=(2**31, 8, 8)))
        with pytest.raises(TSyncError, match="exceeds the file"):
            read_tsync(bad_string)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_seeded_fuzz_of_every_generator_gives_only_typed_errors(tmp_path: Path) -> None:
    """2,400 inputs from six generators (flips, cuts, splices, valid-checksum hostile headers, hostile user-data
    JSON, extreme creation times); ``python -m benchmarks fuzz`` runs the same with 100,000."""
    from hwlink.testing.tsync_fuzz import GENERATORS, run

    others: list[str] = []
    counts = run(15, 2400, tmp_path, lambda kind, outcome: others.append(f"{kind}: {outcome}")
                 if outcome.startswith("other") else None)
    assert not others, others[:10]
    assert sum(sum(c.values()) for c in counts.values()) == 2400
    assert all(counts[kind]["ok"] + counts[kind]["typed"] == 400 for kind in GENERATORS)
    assert counts["userdata"]["typed"] > 0 and counts["time"]["ok"] > 0  # both paths were exercised
