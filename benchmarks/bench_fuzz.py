"""Fuzzing the tsync reader: 100,000 hostile inputs from six generators, hwlink beside edlio 0.3.4's reader.

Every input is read strictly, leniently and header-only by hwlink, with every property of the result used
(``hwlink.testing.tsync_fuzz.check``); "typed" means a ``TSyncError``, "other" any other exception (a bug). The
peer column reads the same bytes with edlio's ``TSyncFile`` (the reader most Syntalos users have): its
``ValueError`` is its documented error, anything else is counted as "other".
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

from hwlink.testing.tsync_fuzz import GENERATORS, base_files, check, mutants

SEED = 15


def _edlio(path: Path) -> str:
    from edlio.dataio.tsyncfile import TSyncFile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            file = TSyncFile(str(path))
            len(file.times)
        return "ok"
    except ValueError:
        return "typed"
    except Exception as error:  # noqa: BLE001 - counted, as the fuzzer is looking for these
        return f"other: {type(error).__name__}"


def main(quick: bool) -> None:
    count = 6_000 if quick else 100_000
    ours = {kind: Counter() for kind in GENERATORS}
    peer = {kind: Counter() for kind in GENERATORS}
    peer_kinds: Counter[str] = Counter()
    examples: list[str] = []
    hwlink_s = edlio_s = 0.0
    with tempfile.TemporaryDirectory() as folder:
        bases = base_files(Path(folder) / "bases")
        target = Path(folder) / "input.tsync"
        for kind, data in mutants(SEED, count, bases):
            target.write_bytes(data)
            started = time.perf_counter()
            outcome = check(target)
            hwlink_s += time.perf_counter() - started
            ours[kind]["other" if outcome.startswith("other") else outcome] += 1
            if outcome.startswith("other") and len(examples) < 10:
                examples.append(f"{kind}: {outcome}")
            started = time.perf_counter()
            theirs = _edlio(target)
            edlio_s += time.perf_counter() - started
            peer[kind]["other" if theirs.startswith("other") else theirs] += 1
            if theirs.startswith("other"):
                peer_kinds[theirs] += 1
    print(f"{count} inputs, seed {SEED}; hwlink: strict + lenient + header-only reads, every property used; "
          "edlio: TSyncFile(path).times\n")
    print("| generator | inputs | hwlink ok | hwlink typed errors | hwlink other | edlio ok | edlio ValueError "
          "| edlio other |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in GENERATORS:
        total = sum(ours[kind].values())
        print(f"| {kind} | {total} | {ours[kind]['ok']} | {ours[kind]['typed']} | {ours[kind]['other']} "
              f"| {peer[kind]['ok']} | {peer[kind]['typed']} | {peer[kind]['other']} |")
    all_ours = sum((ours[k] for k in GENERATORS), Counter())
    all_peer = sum((peer[k] for k in GENERATORS), Counter())
    print(f"| **all** | {count} | {all_ours['ok']} | {all_ours['typed']} | {all_ours['other']} | {all_peer['ok']} "
          f"| {all_peer['typed']} | {all_peer['other']} |")
    print(f"\nhwlink {hwlink_s:.1f} s for three reads of each input ({hwlink_s / count * 1e6:.0f} µs per input); "
          f"edlio {edlio_s:.1f} s for one read ({edlio_s / count * 1e6:.0f} µs per input)")
    if examples:
        print("\nhwlink failures (first 10):\n" + "\n".join(f"- {line}" for line in examples))
    if peer_kinds:
        print("\nedlio's other exceptions: " + ", ".join(f"{name} x{n}" for name, n in peer_kinds.most_common()))
