"""Hostile tsync files for fuzzing readers: seeded generators of damaged, truncated and malicious inputs.

Shared by the test suite (a few thousand inputs) and ``python -m benchmarks fuzz`` (100,000). Several
generators, so the family is covered rather than one kind of damage:

* ``flip``      random bytes of a valid file overwritten (header, blocks, terminators, digests);
* ``cut``       a valid file cut at a random length (a crashed writer, a copy that stopped);
* ``splice``    bytes inserted or removed somewhere;
* ``header``    a header with a *valid checksum* but arbitrary fields (block size, enums, string lengths);
* ``userdata``  valid-checksum headers whose user-data JSON is hostile: nested thousands deep, numbers like
                1e400 or NaN, wrong types for ``tolerance_us``, non-objects;
* ``time``      valid-checksum headers with extreme creation times (past year 9999, negative).

:func:`check` reads an input the way a user would (strict, lenient, header only) and touches every property
of the result; it returns "ok", "typed" (a :class:`~hwlink.sync.tsync.TSyncError`) or "other: ..." (a bug).
"""

from __future__ import annotations

import json
import struct
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import xxhash

from hwlink.sync.tsync import BLOCK_TERM, MAGIC, TSyncError, TSyncWriter, read_tsync, read_tsync_header

GENERATORS = ("flip", "cut", "splice", "header", "userdata", "time")


def base_files(folder: Path) -> list[bytes]:
    """A few valid files of different shapes (block sizes, types, user data, short last block or not)."""
    folder.mkdir(parents=True, exist_ok=True)
    shapes = [(8, 30, {}), (128, 300, {"tolerance_us": 1500}), (3, 9, {"note": "ü ☑"}), (2800, 5, {})]
    files = []
    for index, (block, count, user) in enumerate(shapes):
        path = folder / f"base{index}.tsync"
        with TSyncWriter(path, block_size=block, user_data=user, module_name="fuzz") as writer:
            writer.add_many(np.arange(count) * 1000, np.arange(count) * 1001 + 7)
        files.append(path.read_bytes())
    return files


def hashed_header(fields: dict[str, object]) -> bytes:
    """A format-1.2 header with a correct checksum around whatever ``fields`` say."""
    body = bytearray(struct.pack("<HHq", 1, 2, int(fields.get("creation_time", 0))))  # type: ignore[call-overload]
    for key in ("module", "collection", "user"):
        raw = str(fields.get(key, "")).encode("utf-8", "surrogatepass")
        length = fields.get(f"{key}_length", len(raw))
        body += struct.pack("<I", int(length)) + raw  # type: ignore[call-overload]
    body += struct.pack("<Hi", int(fields.get("mode", 1)), int(fields.get("block_size", 8)))  # type: ignore[call-overload]
    for column in (0, 1):
        body += struct.pack("<I", 1) + b"t" + struct.pack("<HH", int(fields.get(f"unit{column}", 2)),  # type: ignore[call-overload]
                                                           int(fields.get(f"type{column}", 4)))  # type: ignore[call-overload]
    body += bytes(-(8 + len(body)) & 7)
    return struct.pack("<Q", MAGIC) + bytes(body) + struct.pack("<QQ", BLOCK_TERM, xxhash.xxh3_64_intdigest(bytes(body)))


_HOSTILE_JSON = [
    lambda rng: "[" * int(rng.integers(100, 20000)) + "]" * int(rng.integers(0, 20000)),
    lambda rng: '{"a":' * int(rng.integers(50, 5000)) + "1" + "}" * int(rng.integers(0, 5000)),
    lambda rng: json.dumps({"tolerance_us": rng.choice(["1e400", "-1e400", "NaN", "x", "", "99999999999999999999999"])}),
    lambda rng: '{"tolerance_us": ' + str(rng.choice(["1e400", "NaN", "Infinity", "-Infinity", "1e999", "true",
                                                      "null", "[1,2]", '{"x":1}', "18446744073709551616" * 4])) + "}",
    lambda rng: str(rng.choice(["[]", "1", '"s"', "null", "true", "{", "}", '{"a"}', "\ud800", "NaN", ""])),
    lambda rng: '{"' + "k" * int(rng.integers(1, 70000)) + '": 1}',
]


def mutants(seed: int, count: int, bases: list[bytes]) -> Iterator[tuple[str, bytes]]:
    """``count`` (generator name, file bytes) pairs, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        kind = GENERATORS[index % len(GENERATORS)]
        base = bytearray(bases[int(rng.integers(len(bases)))])
        if kind == "flip":
            for _ in range(int(rng.integers(1, 6))):
                base[int(rng.integers(len(base)))] = int(rng.integers(256))
            data = bytes(base)
        elif kind == "cut":
            data = bytes(base[:int(rng.integers(0, len(base) + 1))])
        elif kind == "splice":
            at = int(rng.integers(len(base)))
            if rng.random() < 0.5:
                data = bytes(base[:at] + rng.bytes(int(rng.integers(1, 40))) + base[at:])
            else:
                data = bytes(base[:at] + base[at + int(rng.integers(1, 40)):])
        elif kind == "header":
            fields: dict[str, object] = {
                "block_size": int(rng.choice([0, -1, 1, 2, 127, 2**31 - 1, -2**31, int(rng.integers(-2**31, 2**31))])),
                "mode": int(rng.integers(0, 5)), "unit0": int(rng.integers(0, 7)), "unit1": int(rng.integers(0, 7)),
                "type0": int(rng.integers(0, 10)), "type1": int(rng.integers(0, 10)),
                "collection": rng.choice(["", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "\x00" * 36]),
            }
            if rng.random() < 0.3:
                fields[f"{rng.choice(['module', 'collection', 'user'])}_length"] = int(
                    rng.choice([2**32 - 1, 2**31, 2**32 - 2, int(rng.integers(0, 2**32))]))
            data = hashed_header(fields) + rng.bytes(int(rng.integers(0, 400)))
        elif kind == "userdata":
            text = _HOSTILE_JSON[int(rng.integers(len(_HOSTILE_JSON)))](rng)
            data = hashed_header({"user": text}) + bytes(base[len(hashed_header({})):][:int(rng.integers(0, 300))])
        else:  # time
            creation = int(rng.choice([2**63 - 1, -2**63, 253402300800, 2**40, -62135596801, -1]))
            data = hashed_header({"creation_time": creation}) + rng.bytes(int(rng.integers(0, 64)))
        yield kind, data


def _touch(result: object) -> None:
    """Use every property of a read result, as a caller would."""
    file = result
    len(file)  # type: ignore[arg-type]
    for name in ("time1", "time2", "created", "tolerance_us", "intact", "variant", "version", "module_name",
                 "collection_id", "user_data", "mode", "block_size", "time_names", "time_units", "data_types",
                 "header_bytes", "bad_blocks"):
        getattr(file, name)
    for unit in file.time_units:  # type: ignore[attr-defined]
        unit.label, unit.usec_per_unit
    for dtype in file.data_types:  # type: ignore[attr-defined]
        dtype.numpy_dtype, dtype.value_range
    truncation = file.truncation  # type: ignore[attr-defined]
    if truncation is not None:
        truncation.describe(), truncation.lost_entries
    json.dumps(file.user_data, ensure_ascii=False, sort_keys=True, default=str)  # type: ignore[attr-defined]
    created = file.created  # type: ignore[attr-defined]
    if created is not None:
        created.isoformat()


def check(path: Path) -> str:
    """'ok' if every read worked, 'typed' if one raised a TSyncError, else 'other: <exception>'."""
    outcome = "ok"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for read in (lambda: read_tsync(path), lambda: read_tsync(path, lenient=True),
                     lambda: read_tsync_header(path)):
            try:
                _touch(read())
            except TSyncError:
                outcome = "typed"
            except Exception as error:  # noqa: BLE001 - that is what the fuzzer looks for
                return f"other: {type(error).__name__}: {str(error)[:120]}"
    return outcome


def run(seed: int, count: int, folder: Path, on_each: Callable[[str, str], None] | None = None) -> dict[str, dict[str, int]]:
    """Fuzz ``count`` inputs; returns counts per generator: {"ok": n, "typed": n, "other": n}."""
    bases = base_files(folder / "bases")
    target = folder / "input.tsync"
    counts = {kind: {"ok": 0, "typed": 0, "other": 0} for kind in GENERATORS}
    for kind, data in mutants(seed, count, bases):
        target.write_bytes(data)
        outcome = check(target)
        counts[kind]["other" if outcome.startswith("other") else outcome] += 1
        if on_each is not None:
            on_each(kind, outcome)
    return counts
