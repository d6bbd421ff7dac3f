"""Run benchmark modules ``benchmarks/bench_*.py``: all of them, or the ones named.

Each module has ``main(quick: bool) -> None`` that prints its results (markdown tables) side by side with the
peer or baseline its issue names. Figures go into BENCHMARKS.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import pkgutil
import subprocess
import sys
import time
from pathlib import Path


def machine_line() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
            f"{platform.release()}, commit {commit or 'unknown'}")


def main() -> None:
    folder = str(Path(__file__).parent)
    available = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([folder]) if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(available)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
    print(f"# machine: {machine_line()}")
    print(f"# command: python -m benchmarks {' '.join(sys.argv[1:])}".rstrip())
    for name in args.names or available:
        started = time.perf_counter()
        print(f"\n## {name}\n", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").main(quick=args.quick)
        print(f"\n({name}: {time.perf_counter() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
