"""Bad input to every command and subcommand: exit code 2, one line on stderr, no traceback, no hang.

The table is generated: every file argument gets nonexistent, empty, binary, non-UTF-8, directory and
wrong-format inputs; every number option NaN, inf, huge and negative values and garbage units; every URL scheme
malformed URLs; `run` a family of malformed experiment files. Cases run in-process with click's CliRunner (a
worker thread enforces the time limit), so the few hundred of them stay fast.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from hwlink.cli.main import cli
from hwlink.sync.tsync import TSyncWriter

TIME_LIMIT_S = 20.0

# ----- inputs ---------------------------------------------------------------------------------------------


def make_files(root: Path) -> dict[str, Path]:
    """One of each kind of bad file (and a few good ones the cases combine them with)."""
    root.mkdir(exist_ok=True)
    files = {
        "missing": root / "does-not-exist.toml",
        "empty": root / "empty.dat",
        "binary": root / "binary.dat",
        "latin1": root / "latin1.txt",
        "directory": root / "a-directory",
        "huge-numbers": root / "huge.csv",
        "nan-numbers": root / "nan.csv",
        "garbage-npy": root / "garbage.npy",
        "object-npy": root / "object.npy",
        "text-tsync": root / "text.tsync",
        "cut-tsync": root / "cut.tsync",
        "future-tsync": root / "future.tsync",
        "deep-json-tsync": root / "deep.tsync",
        "bad-manifest": root / "badedl",
        "latin1-manifest": root / "latin1edl",
    }
    files["empty"].write_bytes(b"")
    files["binary"].write_bytes(bytes(range(256)) * 8)
    files["latin1"].write_bytes("zeit;wert\n1;caf\xe9\n".encode("latin-1"))
    files["directory"].mkdir(exist_ok=True)
    files["huge-numbers"].write_text("t\n1e400\n-1e400\n1e308\n")
    files["nan-numbers"].write_text("t\nnan\ninf\n1\n")
    files["garbage-npy"].write_bytes(b"\x93NUMPY\x01\x00garbage that is no header" + bytes(40))
    np.save(files["object-npy"], np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    files["text-tsync"].write_text("this is not a tsync file\n" * 10)
    good = root / "good.tsync"
    with TSyncWriter(good, block_size=8) as writer:
        writer.add_many(np.arange(20) * 1000, np.arange(20) * 1000 + 5)
    files["good-tsync"] = good
    files["cut-tsync"].write_bytes(good.read_bytes()[:40])
    with TSyncWriter(files["future-tsync"], creation_time=2**62) as writer:  # past the year 9999
        writer.add(1, 2)
    files["deep-json-tsync"].write_bytes(_deep_json_tsync(good))
    for name, manifest in (("bad-manifest", b"this is = not [toml\n"), ("latin1-manifest", b"name = \"caf\xe9\"\n")):
        files[name].mkdir(exist_ok=True)
        (files[name] / "manifest.toml").write_bytes(manifest)
    edges = root / "edges.csv"
    edges.write_text("t\n" + "\n".join(str(i * 0.5) for i in range(40)) + "\n")
    files["edges"] = edges
    return files


def _deep_json_tsync(good: Path) -> bytes:
    """A tsync whose user-data JSON nests 5000 deep, with a valid header checksum."""
    import struct

    import xxhash

    from hwlink.sync.tsync import BLOCK_TERM, MAGIC

    deep = "[" * 5000 + "]" * 5000
    body = bytearray(struct.pack("<HHq", 1, 2, 0))
    for text in ("m", "", deep):
        raw = text.encode()
        body += struct.pack("<I", len(raw)) + raw
    body += struct.pack("<Hi", 1, 8)
    for name in ("a", "b"):
        body += struct.pack("<I", 1) + name.encode() + struct.pack("<HH", 2, 4)
    body += bytes(-(8 + len(body)) & 7)
    return struct.pack("<Q", MAGIC) + bytes(body) + struct.pack("<QQ", BLOCK_TERM, xxhash.xxh3_64_intdigest(bytes(body)))


BAD_NUMBERS = ["nan", "inf", "-inf", "1e400", "-1e400", "1e30", "-5", "0x10", "", " ", "12abc", "1e-400x",
               "9" * 400]
BAD_DURATIONS = ["nan", "inf", "1e400s", "-1s", "1e30h", "5", "5 parsecs", "", "ms", "--1s", "9" * 400 + "s"]
BAD_FREQUENCIES = ["nan", "inf", "1e400Hz", "-5Hz", "0Hz", "5 furlongs", "", "1e30GHz"]

BAD_URLS = [
    "://", "sim", "sim:/", "sim://?=", "sim://?drift_ppm", "sim://?drift_ppm=1e400",
    "sim://?drift_ppm=nan", "sim://?drift_ppm=-inf", "sim://?offset=1e30s", "sim://?offset=nan",
    "sim://?seed=-1", "sim://?seed=1e400", "sim://?seed=abc", "sim://?latency=exp:nan", "sim://?latency=uniform:5ms-1ms",
    "sim://?spikes=2:1ms-2ms", "sim://?steps=1s", "sim://?steps=nan:1s", "sim://?analog_interval=1us",
    "sim://?analog_interval=1e400s", "sim://?a0=sine:nan", "sim://?a0=sine:1Hz:inf", "sim://?a0=const:1e400",
    "sim://?a0=noise:-1", "sim://?d2=square:1Hz:2", "sim://?d2=square:1Hz:x", "sim://?a9=sine:1Hz",
    "sim://?loopback=13:13", "sim://?loopback=99:2", "sim://?fail_after=nan", "sim://?silence=-1s",
    "sim://?unknown=1", "sim://host/path", "sim://?drift_change=1e400",
    "firmata://", "firmata:///definitely/not/a/port", "firmata:///dev/null?baud=0", "firmata:///dev/null?baud=abc",
    "firmata:///dev/null?baud=1e400", "firmata:///dev/null?timeout=nan", "firmata:///dev/null?timeout=-1s",
    "firmata:///dev/null?analog_interval=1500us", "firmata:///dev/null?analog_interval=1e400s",
    "firmata:///dev/null?silence=0s", "firmata:///dev/null?bogus=1",
    "firmata+socket://", "firmata+socket://127.0.0.1:1?timeout=200ms", "firmata+socket://notahost:xx",
    "firmata+nonsense://x", "firmata+socket://[::1",
    "nidaq://", "nidaq://NoSuchDevice", "nidaq://Dev1?rate=nan", "nidaq://Dev1?rate=1e400Hz",
    "nidaq://Dev1?block=-5", "nidaq://Dev1?bogus=1", "nidaq://Dev1?silence=0s", "nidaq://Dev1?silence=nan",
    "lsl://", "unknown://x", "SIM://?drift_ppm=nan", "http://example.org", "sim://?%ff=1", "\x00://",
]

EXPERIMENTS = {
    "not toml": "this is = not [toml",
    "empty": "",
    "no modules": "[experiment]\nname = 'x'\n",
    "duration nan": "[experiment]\nduration = nan\n[modules.b]\nkind = 'board'\nurl = 'sim://'\n",
    "duration huge": "[experiment]\nduration = '1e400s'\n[modules.b]\nkind = 'board'\nurl = 'sim://'\n",
    "duration number": "[experiment]\nduration = 5\n[modules.b]\nkind = 'board'\nurl = 'sim://'\n",
    "bad board url": "[modules.b]\nkind = 'board'\nurl = 'sim://?drift_ppm=1e400'\n",
    "unknown kind": "[modules.b]\nkind = 'teleporter'\n",
    "channels 1e9": "[modules.s]\nkind = 'signal-source'\nchannels = 1000000000\n",
    "channels float": "[modules.s]\nkind = 'signal-source'\nchannels = 1e9\n",
    "channels negative": "[modules.s]\nkind = 'signal-source'\nchannels = -4\n",
    "dtype complex": "[modules.s]\nkind = 'signal-source'\ndtype = 'complex128'\n",
    "dtype object": "[modules.s]\nkind = 'signal-source'\ndtype = 'O'\n",
    "dtype nonsense": "[modules.s]\nkind = 'signal-source'\ndtype = 'banana'\n",
    "amplitude inf": "[modules.s]\nkind = 'signal-source'\namplitude = inf\n",
    "noise nan": "[modules.s]\nkind = 'signal-source'\nnoise = nan\n",
    "noise negative": "[modules.s]\nkind = 'signal-source'\nnoise = -1.0\n",
    "sample rate nan": "[modules.s]\nkind = 'signal-source'\nsample_rate = 'nanHz'\n",
    "sample rate huge": "[modules.s]\nkind = 'signal-source'\nsample_rate = '1e30Hz'\n",
    "block huge": "[modules.s]\nkind = 'signal-source'\nblock_size = 100000000000\n",
    "camera huge": "[modules.c]\nkind = 'camera'\nwidth = 10000000\nheight = 10000000\n",
    "camera fps inf": "[modules.c]\nkind = 'camera'\nfps = 'infHz'\n",
    "tone volume nan": "[modules.t]\nkind = 'tone'\nvolume = nan\n",
    "tone rate huge": "[modules.t]\nkind = 'tone'\nsample_rate = 100000000000\n",
    "pulse width nan": "[modules.p]\nkind = 'pulse-train'\nline = 13\nwidth = 'nan'\nperiod = '1s'\n",
    "pulse line huge": "[modules.p]\nkind = 'pulse-train'\nline = 100000000000000000000\nwidth = '1ms'\n"
                       "period = '1s'\n",
    "script missing": "[modules.s]\nkind = 'script'\nscript = '/nonexistent/script.py'\n",
    "connect nowhere": "[modules.b]\nkind = 'board'\nurl = 'sim://'\n[[connect]]\nfrom = 'b.readings'\n"
                       "to = 'nobody.in'\n",
    "modules not a table": "modules = 5\n",
    "deep nesting": "x = " + "[" * 2000 + "]" * 2000 + "\n",
}


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    codes: tuple[int, ...] = (2,)  # verify commands may also report a damaged input with their exit code 1


def cases(files: dict[str, Path], out: Path) -> list[Case]:
    table: list[Case] = []
    bad_file_kinds = ["missing", "empty", "binary", "latin1", "directory", "garbage-npy", "text-tsync",
                      "cut-tsync", "huge-numbers"]
    png = str(out / "o.png")
    good = str(files["good-tsync"])
    for kind in bad_file_kinds:
        path = str(files[kind])
        table += [
            Case(f"tsync info {kind}", ("tsync", "info", path)),
            Case(f"tsync verify {kind}", ("tsync", "verify", path), (1, 2)),
            Case(f"tsync dump {kind}", ("tsync", "dump", path)),
            Case(f"tsync dump npy {kind}", ("tsync", "dump", "--format", "npy", "-o", str(out / "d.npy"), path)),
            Case(f"tsync plot {kind}", ("tsync", "plot", path, "-o", png)),
            Case(f"tsync correct input {kind}", ("tsync", "correct", path, "-t", good, "-o", str(out / "c.csv"))),
            Case(f"tsync correct tsync {kind}", ("tsync", "correct", str(files["edges"]), "-t", path,
                                                 "-o", str(out / "c.csv"))),
            Case(f"edl ls {kind}", ("edl", "ls", path)),
            Case(f"edl verify {kind}", ("edl", "verify", path), (1, 2)),
            Case(f"run {kind}", ("run", path, "-o", str(out / f"run-{kind}"))),
            Case(f"align master {kind}", ("align", path, str(files["edges"]), "--rate", "1kHz")),
            Case(f"align secondary {kind}", ("align", str(files["edges"]), path, "--rate", "1kHz")),
            Case(f"align times {kind}", ("align", str(files["edges"]), str(files["edges"]), "--rate", "1kHz",
                                         "--times", path, "-o", str(out / "t.npy"))),
        ]
    for kind in ("latin1", "nan-numbers", "object-npy"):
        path = str(files[kind])
        table += [
            Case(f"tsync correct input {kind}", ("tsync", "correct", path, "-t", good, "-o", str(out / "c.csv"))),
            Case(f"align master {kind}", ("align", path, str(files["edges"]), "--rate", "1kHz")),
        ]
    for kind in ("future-tsync", "deep-json-tsync"):
        path = str(files[kind])
        table += [Case(f"tsync {sub} {kind}", ("tsync", sub, path), (0, 1, 2)) for sub in ("info", "verify")]
        table += [Case(f"tsync dump {kind}", ("tsync", "dump", path), (0, 2))]
    for kind in ("bad-manifest", "latin1-manifest"):
        table += [Case(f"edl ls {kind}", ("edl", "ls", str(files[kind]))),
                  Case(f"edl verify {kind}", ("edl", "verify", str(files[kind])), (1, 2))]
    table.append(Case("tsync plot unknown extension", ("tsync", "plot", good, "-o", str(out / "o.xyz"))))
    table.append(Case("tsync plot into a directory", ("tsync", "plot", good, "-o", str(files["directory"]))))
    table.append(Case("tsync dump into a missing directory", ("tsync", "dump", good, "-o", str(out / "no/x.csv"))))
    # numbers in options
    for value in BAD_DURATIONS:
        for command in (("read", "2"), ("record", "--lines", "2", "-o", str(out / "rec")), ("latency", "--out", "13",
                        "--in", "2"), ("pulse", "13", "--width"), ("sync", "simulate"), ("boards", "--probe")):
            option = {"read": "--duration", "record": "--duration", "latency": "--interval", "pulse": None,
                      "sync": "--duration", "boards": "--timeout"}[command[0]]
            args = (*command, value) if option is None else (*command, option, value)
            table.append(Case(f"{command[0]} duration {value[:20]!r}", args))
        table.append(Case(f"run --duration {value[:20]!r}", ("run", str(files["missing"]), "--duration", value)))
        if value != "-1s":  # a negative offset is a real one
            table.append(Case(f"align --offset {value[:20]!r}", ("align", str(files["edges"]), str(files["edges"]),
                                                                  "--rate", "1kHz", "--offset", value)))
    for value in BAD_NUMBERS:
        table += [
            Case(f"write value {value[:20]!r}", ("write", "13", value)),
            Case(f"sync simulate --seed {value[:20]!r}", ("sync", "simulate", "--seed", value, "--duration", "1s")),
        ]
        if value not in ("9" * 400,):  # a huge count is just "read on" (Ctrl-C ends it)
            table.append(Case(f"read --count {value[:20]!r}", ("read", "2", "--count", value)))
        if value not in ("-5", "1e30"):  # a negative drift is real; 1e30 is out of range below
            table.append(Case(f"sync simulate --drift-ppm {value[:20]!r}", ("sync", "simulate", "--drift-ppm",
                                                                            value, "--duration", "1s")))
        if value not in ("1e30", "9" * 400):  # a huge residual bound is merely lenient
            table.append(Case(f"align --max-residual {value[:20]!r}", ("align", str(files["edges"]),
                                                                       str(files["edges"]), "--rate", "1kHz",
                                                                       "--max-residual", value)))
    for value in BAD_FREQUENCIES:
        table += [
            Case(f"sync simulate --rate {value!r}", ("sync", "simulate", "--rate", value)),
            Case(f"align --rate {value!r}", ("align", str(files["edges"]), str(files["edges"]), "--rate", value)),
            Case(f"tsync correct --rate {value!r}", ("tsync", "correct", str(files["edges"]), "-t", good,
                                                     "--rate", value, "-o", str(out / "c.csv"))),
        ]
    table += [
        Case("sync simulate drift 1e6", ("sync", "simulate", "--drift-ppm", "1e6", "--duration", "1s")),
        Case("sync simulate drift change inf", ("sync", "simulate", "--drift-change", "inf")),
        Case("sync simulate latency nan", ("sync", "simulate", "--latency", "exp:nan")),
        Case("sync simulate spikes", ("sync", "simulate", "--spikes", "5:1ms-2ms")),
        Case("sync simulate steps", ("sync", "simulate", "--steps", "nan:1s")),
        Case("read a line twice", ("read", "2", "2", "--count", "1")),
        Case("read unknown line", ("read", "D99", "--count", "1")),
        Case("read --duration and --count", ("read", "2", "--count", "1", "--duration", "1s")),
        Case("record a line twice", ("record", "--lines", "2,2", "-o", str(out / "r2"))),
        Case("record nothing", ("record", "-o", str(out / "r3"))),
        Case("record empty line", ("record", "--lines", "2,,3", "-o", str(out / "r4"))),
        Case("record into a file", ("record", "--lines", "2", "-o", str(files["empty"]), "--duration", "1s")),
        Case("write digital 2", ("write", "13", "2")),
        Case("write analog too big", ("write", "3", "100000", "--analog")),
        Case("pulse count 0", ("pulse", "13", "--count", "0")),
        Case("pulse period below width", ("pulse", "13", "--count", "2", "--width", "10ms", "--period", "5ms")),
        Case("demo period below width", ("demo", "--width", "10ms", "--period", "5ms")),
        Case("demo unknown line", ("demo", "--out", "D99")),
        Case("latency same line", ("latency", "--out", "13", "--in", "99")),
        Case("unknown command", ("teleport",)),
        Case("align unit", ("align", str(files["edges"]), str(files["edges"]), "--rate", "1kHz", "--unit", "parsec")),
        Case("align column", ("align", str(files["edges"]), str(files["edges"]), "--rate", "1kHz", "--column", "zz")),
        Case("tsync correct column", ("tsync", "correct", str(files["edges"]), "-t", good, "--column", "zz",
                                      "-o", str(out / "c.csv"))),
    ]
    # URLs: every command that opens a board
    for url in BAD_URLS:
        table += [
            Case(f"lines {url!r}", ("lines", "-b", url)),
            Case(f"read {url!r}", ("-b", url, "read", "2", "--count", "1")),
            Case(f"record {url!r}", ("record", "-b", url, "--lines", "2", "-o", str(out / "rec-url"),
                                     "--duration", "1s")),
        ]
    for url in BAD_URLS[::4]:
        table += [
            Case(f"write {url!r}", ("write", "-b", url, "13", "1")),
            Case(f"pulse {url!r}", ("pulse", "-b", url, "13")),
            Case(f"latency {url!r}", ("latency", "-b", url, "--out", "13", "--in", "2", "--count", "2")),
            Case(f"demo {url!r}", ("demo", "-b", url)),
        ]
    # experiment files
    for label, text in EXPERIMENTS.items():
        path = out / f"exp-{len(table)}.toml"
        path.write_text(text)
        table.append(Case(f"run experiment {label}", ("run", str(path), "-o", str(out / f"x-{len(table)}"))))
    latin = out / "latin1-exp.toml"
    latin.write_bytes(b"[experiment]\nname = \"caf\xe9\"\n")
    table.append(Case("run experiment latin-1", ("run", str(latin), "-o", str(out / "x-latin"))))
    return table


# ----- running -----------------------------------------------------------------------------------------------

def invoke(args: tuple[str, ...]) -> tuple[Result | None, float]:
    """Run one case in a worker thread; (None, elapsed) if it overran the time limit."""
    box: list[Result] = []

    def target() -> None:
        box.append(CliRunner().invoke(cli, list(args)))

    worker = threading.Thread(target=target, daemon=True)
    import time

    started = time.monotonic()
    worker.start()
    worker.join(TIME_LIMIT_S)
    return (box[0] if box else None), time.monotonic() - started


def problem(case: Case, result: Result | None) -> str | None:
    if result is None:
        return f"{case.name}: no answer within {TIME_LIMIT_S:.0f} s (hang)"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text = "".join(traceback.format_exception(result.exception))
        return f"{case.name}: traceback\n{text}"
    if result.exit_code not in case.codes:
        return f"{case.name}: exit code {result.exit_code}, wanted {case.codes}; stderr {result.stderr!r}"
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        if "Traceback" in result.stderr:
            return f"{case.name}: traceback on stderr"
        if len(lines) != 1 or not lines[0].startswith("Error:"):
            return f"{case.name}: wanted one error line on stderr, got {lines!r}"
    return None


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Case], Path]:
    root = tmp_path_factory.mktemp("bad-inputs")
    files = make_files(root / "files")
    out = root / "out"
    out.mkdir()
    return cases(files, out), out


def test_the_table_is_big_enough(table: tuple[list[Case], Path]) -> None:
    cases_, _ = table
    assert len(cases_) >= 300
    commands = {case.args[0] if case.args[0] != "-b" else case.args[2] for case in cases_}
    assert commands >= {"lines", "read", "write", "pulse", "latency", "demo", "record", "run", "align", "tsync",
                        "sync", "edl", "boards"}


def test_every_bad_input_gets_one_clean_line(table: tuple[list[Case], Path]) -> None:
    cases_, _ = table
    problems = []
    slowest = 0.0
    for case in cases_:
        result, elapsed = invoke(case.args)
        slowest = max(slowest, elapsed)
        found = problem(case, result)
        if found:
            problems.append(found)
    print(f"\n{len(cases_)} bad inputs, {len(cases_) - len(problems)} clean, slowest {slowest:.2f} s")
    names = "\n".join(found.splitlines()[0] for found in problems)
    assert not problems, (f"{len(problems)} of {len(cases_)} cases failed:\n{names}\n\nfirst ones in full:\n"
                          + "\n\n".join(problems[:10]))
