"""Mutation testing of hwlink's core modules with mutmut 3, one module at a time against its focused tests.

``make mutation`` runs every module below; ``make mutation MODULES="lines units"`` a selection. Not part of CI
(it is slow). Each module runs in its own scratch project under ``.cache/mutation/<name>/`` (copies of
``hwlink/`` and ``tests/`` and a generated ``pyproject.toml`` whose ``[tool.mutmut]`` names the module and its
test files), so runs never touch the work tree and their results stay apart. mutmut then copies that project
into ``mutants/`` and runs the tests there; the tests find ``shared/`` further up (see tests/conftest.py).

Results: ``.cache/mutation/<name>/summary.json`` (counts and the surviving mutants) and, per survivor, the
diff from ``mutmut show``; QUALITY.md keeps the report and the reason each survivor is equivalent or accepted.
Run it with low priority (the Makefile uses ``nice -n 10``) and ``--max-children 1`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCRATCH = PROJECT_ROOT / ".cache" / "mutation"

# module name -> (source file, the focused test files that must kill its mutants)
MODULES: dict[str, tuple[str, list[str]]] = {
    "lines": ("hwlink/lines.py", ["tests/test_lines.py", "tests/test_lines_boundaries.py"]),
    "units": ("hwlink/units.py", ["tests/test_units_boundaries.py"]),
    "firmata_protocol": ("hwlink/drivers/firmata_protocol.py",
                         ["tests/test_firmata_protocol.py", "tests/test_firmata_protocol_boundaries.py"]),
    "ipc": ("hwlink/runtime/ipc.py", ["tests/test_runtime_ipc.py", "tests/test_runtime_ipc_boundaries.py"]),
    "tsync": ("hwlink/sync/tsync.py", ["tests/test_tsync.py", "tests/test_tsync_boundaries.py"]),
    "edl_toml": ("hwlink/edl/toml.py", ["tests/test_edl_toml_ids.py", "tests/test_edl_toml_boundaries.py"]),
}
# Being redesigned (issue 13) when this was set up: boundary tests exist (tests/test_sync_boundaries.py), the
# mutation runs come once the new code has settled.
LATER = {
    "estimator": ("hwlink/sync/estimator.py", ["tests/test_clocksync_estimator.py", "tests/test_sync_boundaries.py"]),
    "offline": ("hwlink/sync/offline.py", ["tests/test_offline.py"]),
    "align": ("hwlink/sync/align.py", ["tests/test_align.py", "tests/test_sync_boundaries.py"]),
}

PYPROJECT = """\
[tool.mutmut]
source_paths = ["hwlink"]
only_mutate = [{source!r}]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]
pytest_add_cli_args_test_selection = {tests!r}
use_git_change_detection = false

[tool.pytest.ini_options]
testpaths = ["tests"]
timeout = 300
"""


def prepare(name: str, source: str, tests: list[str]) -> Path:
    work = SCRATCH / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PROJECT_ROOT / "hwlink", work / "hwlink", ignore=ignore)
    shutil.copytree(PROJECT_ROOT / "tests", work / "tests", ignore=ignore)
    (work / "pyproject.toml").write_text(PYPROJECT.format(source=source, tests=tests).replace("'", '"'))
    return work


def summarize(name: str, source: str, work: Path) -> dict:
    meta = json.loads((work / "mutants" / f"{source}.meta").read_text())
    from mutmut.stats import status_by_exit_code  # the tool's own reading of its exit codes

    statuses = {key: status_by_exit_code[code] for key, code in meta["exit_code_by_key"].items()}
    counts = Counter(statuses.values())
    survivors = sorted(key for key, status in statuses.items() if status != "killed" and status != "timeout")
    diffs = {}
    for key in survivors:
        shown = subprocess.run([sys.executable, "-m", "mutmut", "show", key], cwd=work, capture_output=True,
                               text=True)
        diffs[key] = shown.stdout
    killed = counts["killed"] + counts["timeout"]
    summary = {"module": source, "mutants": len(statuses), "killed": killed, "survived": len(survivors),
               "by_status": dict(counts), "survivors": survivors}
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    (work / "survivors.diff").write_text("".join(diffs[key] for key in survivors))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules to run (default: all of {', '.join(MODULES)})")
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument("--summary-only", action="store_true", help="summarize an earlier run")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="re-test only the survivors of the last run (after adding tests)")
    args = parser.parse_args(argv)
    table = {**MODULES, **LATER}
    unknown = [name for name in args.modules if name not in table]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(table)}")
    failed = False
    for name in args.modules or list(MODULES):
        source, tests = table[name]
        work = SCRATCH / name
        names: list[str] = []
        if args.rerun_survivors:  # keep the earlier results, bring the tests up to date, re-test the survivors
            names = json.loads((work / "summary.json").read_text())["survivors"]
            shutil.rmtree(work / "tests")
            shutil.copytree(PROJECT_ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        if args.summary_only:
            pass
        elif names or not args.rerun_survivors:
            if not args.rerun_survivors:
                work = prepare(name, source, tests)
            print(f"== mutmut on {source} with {' '.join(tests)}", flush=True)
            # `mutmut run`, not `python -m mutmut`: mutmut must stay the one cached __main__ (it forks workers)
            mutmut = Path(sys.executable).with_name("mutmut")
            with open(work / "mutmut.log", "w") as log:  # its progress spinner would flood a terminal or CI log
                done = subprocess.run([str(mutmut), "run", "--max-children", str(args.max_children), *names],
                                      cwd=work, stdout=log, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                print(f"mutmut failed on {source} (exit {done.returncode})", file=sys.stderr)
                failed = True
                continue
        summary = summarize(name, source, work)
        share = summary["killed"] / summary["mutants"] if summary["mutants"] else 1.0
        print(f"{source}: {summary['mutants']} mutants, {summary['killed']} killed, {summary['survived']} survived "
              f"({100 * share:.1f} % killed) {summary['by_status']}", flush=True)
        for key in summary["survivors"]:
            print(f"    survived: {key}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
