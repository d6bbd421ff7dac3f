"""Experiment files (TOML): modules, their settings, and the connections between their ports.

Every mistake is reported as ``FILE:LINE: message`` naming the line of the file it comes from. ``tomllib``
gives no positions for values, so a small scanner records on which line each table header and key sits.
"""

from __future__ import annotations

import math

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwlink.errors import ConfigError
from hwlink.units import parse_duration_usec, parse_frequency_hz


class ExperimentError(ConfigError):
    """A problem with the experiment file, located at a line of it."""


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.\-]+)\s*=""")


def _key_parts(text: str) -> tuple[str, ...]:
    parts = []
    for part in re.findall(r'"[^"]*"|\'[^\']*\'|[^.\s]+', text):
        parts.append(part[1:-1] if part[0] in "\"'" else part)
    return tuple(parts)


class LineLocator:
    """Line numbers of tables and keys: ``(('modules', 'cam'), 'fps') -> 12``; array tables get an index."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[tuple[str, ...], str | None], int] = {}
        table: tuple[str, ...] = ()
        array_counts: dict[tuple[str, ...], int] = {}
        depth = 0  # inside a multi-line array or inline table: its keys are not table keys
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = _STRING.sub("", line).split("#", 1)[0]  # brackets in strings and comments do not nest
            if depth == 0:
                header = _HEADER.match(line)
                if header:
                    path = _key_parts(header.group(2))
                    if header.group(1) == "[[":
                        index = array_counts.get(path, 0)
                        array_counts[path] = index + 1
                        path = path + (str(index),)
                    table = path
                    self.lines.setdefault((table, None), number)
                    continue
                key = _KEY.match(line)
                if key:
                    parts = _key_parts(key.group(1))
                    self.lines.setdefault((table + parts[:-1], parts[-1]), number)
            depth += stripped.count("[") + stripped.count("{") - stripped.count("]") - stripped.count("}")
            depth = max(depth, 0)

    def line(self, table: tuple[str, ...], key: str | None = None) -> int:
        """The key's line, else its table's line, else the nearest enclosing table's, else 1."""
        while True:
            if (table, key) in self.lines:
                return self.lines[(table, key)]
            if key is not None:
                key = None
                continue
            if not table:
                return 1
            table = table[:-1]


@dataclass
class ModuleSpec:
    name: str
    kind: str
    settings: dict[str, Any]
    file: ExperimentFile

    def error(self, message: str, key: str | None = None) -> ExperimentError:
        return self.file.error(("modules", self.name), key, f"module {self.name!r}: {message}")


@dataclass
class ConnectionSpec:
    source_module: str
    source_port: str
    target_module: str
    target_port: str
    index: int
    file: ExperimentFile

    def error(self, message: str, key: str = "from") -> ExperimentError:
        return self.file.error(("connect", str(self.index)), key, message)

    def __str__(self) -> str:
        return f"{self.source_module}.{self.source_port} -> {self.target_module}.{self.target_port}"


@dataclass
class ExperimentFile:
    path: Path
    text: str
    locator: LineLocator
    name: str = ""
    duration_usec: int | None = None
    grace_period_usec: int = 5_000_000  # how long a stopping module may take before it is ended
    modules: dict[str, ModuleSpec] = field(default_factory=dict)
    connections: list[ConnectionSpec] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def error(self, table: tuple[str, ...], key: str | None, message: str) -> ExperimentError:
        return ExperimentError(f"{self.path}:{self.locator.line(table, key)}: {message}")


_TOP_KEYS = {"experiment", "modules", "connect"}
_EXPERIMENT_KEYS = {"name", "duration", "grace_period"}
MAX_GRACE_PERIOD_USEC = 600_000_000


def load_experiment(path: str | Path) -> ExperimentFile:
    """Read and check the file's structure; module settings are checked by the module kinds."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ExperimentError(f"cannot read experiment file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[:error.start].count(b"\n") + 1
        raise ExperimentError(f"{path}:{line}: not UTF-8 text (byte {error.start}); an experiment file is "
                              "UTF-8 TOML") from None
    return parse_experiment(text, path)


def parse_experiment(text: str, path: Path) -> ExperimentFile:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"\(at line (\d+), column \d+\)", str(error))
        line = found.group(1) if found else "1"
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        raise ExperimentError(f"{path}:{line}: invalid TOML: {message}") from None
    except RecursionError:
        raise ExperimentError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    experiment = ExperimentFile(path.resolve(), text, LineLocator(text))
    for key in document:
        if key not in _TOP_KEYS:
            raise experiment.error((key,), None, f"unknown section {key!r}; expected [experiment], "
                                                 "[modules.NAME] and [[connect]]")
    header = document.get("experiment", {})
    if not isinstance(header, dict):
        raise experiment.error((), "experiment", "'experiment' must be a table")
    for key in header:
        if key not in _EXPERIMENT_KEYS:
            raise experiment.error(("experiment",), key,
                                   f"unknown key {key!r} in [experiment]; known: name, duration, grace_period")
    experiment.name = str(header.get("name") or path.stem)
    if "duration" in header:
        try:
            experiment.duration_usec = parse_duration_usec(header["duration"])
        except ConfigError as error:
            raise experiment.error(("experiment",), "duration", str(error)) from None
    if "grace_period" in header:
        try:
            grace = parse_duration_usec(header["grace_period"])
        except ConfigError as error:
            raise experiment.error(("experiment",), "grace_period", str(error)) from None
        if not 0 < grace <= MAX_GRACE_PERIOD_USEC:
            raise experiment.error(("experiment",), "grace_period", "grace_period must be more than 0 and at most "
                                                                     "10 min")
        experiment.grace_period_usec = grace
    modules = document.get("modules", {})
    if not isinstance(modules, dict) or not modules:
        raise experiment.error(("modules",), None, "the experiment has no modules: add [modules.NAME] tables")
    for name, settings in modules.items():
        if not isinstance(settings, dict):
            raise experiment.error(("modules",), name, f"module {name!r} must be a table")
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
            raise experiment.error(("modules", name), None,
                                   f"module name {name!r} may only use letters, digits, '-' and '_'")
        if "kind" not in settings:
            raise experiment.error(("modules", name), None, f"module {name!r} has no 'kind'")
        settings = dict(settings)
        kind = settings.pop("kind")
        experiment.modules[name] = ModuleSpec(name, str(kind), settings, experiment)
    connections = document.get("connect", [])
    if not isinstance(connections, list):
        raise experiment.error(("connect",), None, "connections are [[connect]] tables with 'from' and 'to'")
    for index, table in enumerate(connections):
        where = ("connect", str(index))
        for key in table:
            if key not in ("from", "to"):
                raise experiment.error(where, key, f"unknown key {key!r} in [[connect]]; known: from, to")
        ends = []
        for key in ("from", "to"):
            value = table.get(key)
            if not isinstance(value, str) or value.count(".") < 1:
                raise experiment.error(where, key if key in table else None,
                                       f"[[connect]] needs {key} = \"MODULE.PORT\"")
            module, _, port = value.partition(".")
            if module not in experiment.modules:
                raise experiment.error(where, key, f"unknown module {module!r} in {key} = {value!r}; "
                                                   f"modules: {', '.join(experiment.modules)}")
            ends.append((module, port))
        experiment.connections.append(ConnectionSpec(ends[0][0], ends[0][1], ends[1][0], ends[1][1], index,
                                                     experiment))
    return experiment


_REQUIRED = object()


class Settings:
    """Typed access to one module's settings; every error names the line of the offending key."""

    def __init__(self, spec: ModuleSpec) -> None:
        self.spec = spec
        self._used: set[str] = set()

    def error(self, key: str | None, message: str) -> ExperimentError:
        return self.spec.error(message, key)

    def _raw(self, key: str, default: Any) -> Any:
        self._used.add(key)
        if key in self.spec.settings:
            return self.spec.settings[key]
        if default is _REQUIRED:
            raise self.error(None, f"needs the setting {key!r}")
        return default

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._raw(key, default)
        if value is not default and not isinstance(value, str):
            raise self.error(key, f"{key} must be a string")
        return value

    def integer(self, key: str, default: Any = _REQUIRED, minimum: int | None = None,
                maximum: int | None = None) -> Any:
        value = self._raw(key, default)
        if value is default:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"{key} must be an integer")
        if minimum is not None and value < minimum:
            raise self.error(key, f"{key} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"{key} must be at most {maximum}")
        return value

    def number(self, key: str, default: Any = _REQUIRED, minimum: float = -1e12, maximum: float = 1e12) -> Any:
        """A finite number within [minimum, maximum] (nan, inf and 1e400 are refused)."""
        value = self._raw(key, default)
        if value is default:
            return value
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.error(key, f"{key} must be a number")
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise self.error(key, f"{key} must be a finite number within {minimum:g}..{maximum:g}, got {value!r}")
        return float(value)

    def duration_usec(self, key: str, default: Any = _REQUIRED) -> Any:
        """Defaults are given as text too ('10ms') and parsed like the file's values."""
        value = self._raw(key, default)
        if value is None:
            return value
        try:
            return parse_duration_usec(value)
        except ConfigError as error:
            raise self.error(key, str(error)) from None

    def frequency_hz(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._raw(key, default)
        if value is None:
            return value
        try:
            return parse_frequency_hz(str(value))
        except ConfigError as error:
            raise self.error(key, str(error)) from None

    def table(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._raw(key, default)
        if value is not default and not isinstance(value, dict):
            raise self.error(key, f"{key} must be a table")
        return value

    def strings(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._raw(key, default)
        if value is not default and (not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value)):
            raise self.error(key, f"{key} must be a list of strings")
        return value if value is default else [str(v) for v in value]

    def path(self, key: str, default: Any = _REQUIRED, must_exist: bool = True) -> Any:
        value = self.text(key, default)
        if value is default or value is None:
            return value
        resolved = (self.spec.file.directory / value).resolve()
        if must_exist and not resolved.exists():
            raise self.error(key, f"{key}: no such file {resolved}")
        return resolved

    def raw(self, key: str, default: Any = None) -> Any:
        return self._raw(key, default)

    def finish(self, kind_description: str) -> None:
        """Unknown settings are errors (a typo must not be silently ignored)."""
        for key in self.spec.settings:
            if key not in self._used:
                known = ", ".join(sorted(self._used)) or "none"
                raise self.error(key, f"unknown setting {key!r} for a {kind_description} module; known: {known}")
