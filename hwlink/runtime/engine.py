"""The engine: builds an experiment's modules, connects their ports, runs them, records into one collection.

Order of a run: check the file and every module's settings (errors name the line) -> create the collection
(the experiment file is its first dataset) -> load modules (boards open, script workers start and run their
module-level code) -> connect ports (checked again with the ports scripts registered) -> prepare (in data-flow
order, so metadata reaches consumers first) -> clock zero -> start (consumers first, sources last) -> wait
for a stop condition -> stop (every module at once: sources first, then the rest, without waiting on any)
-> wait until each has stopped, at most until the stop deadline (the experiment's ``grace_period`` after the
stop request; a script still running then is killed and the log says which and why) -> close modules -> close
the collection. A stop requested while modules load, prepare or start ends the run the same way. Whatever ends
the run (duration, a script's ``raise_error``, a failing module, Ctrl-C, a second Ctrl-C forcing), the
collection is closed with the data recorded so far.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from hwlink import __version__
from hwlink.clock import MasterClock
from hwlink.drivers.info import board_attributes, clock_start_attributes, host_attributes
from hwlink.edl import Collection, CreateFlag, Dataset, sanitize_name, uuid7
from hwlink import platform
from hwlink.errors import HwlinkError
from hwlink.platform import clock_ns
from hwlink.runtime.board_module import BoardModule
from hwlink.runtime.experiment import ExperimentError, ExperimentFile, load_experiment
from hwlink.runtime.generators import CameraModule, PulseTrainModule, SignalSourceModule, ToneModule
from hwlink.runtime.module import Module
from hwlink.runtime.lsl_module import LslOutletModule
from hwlink.runtime.recorder import RecorderModule
from hwlink.runtime.script_module import OEProcessorModule, PythonModule, ScriptModule, WorkerFailed
from hwlink.runtime.spikes import SpikeDetectorModule
from hwlink.runtime.datatypes import can_connect

MODULE_KINDS: dict[str, type[Module]] = {cls.kind: cls for cls in (
    BoardModule, ScriptModule, PythonModule, OEProcessorModule, RecorderModule, CameraModule, SignalSourceModule,
    ToneModule, PulseTrainModule, SpikeDetectorModule, LslOutletModule)}

RUN_DATASET = "hwlink-run"
FIRST_NODE_ID = 100  # modules are numbered in file order from here, as Open Ephys numbers its processors
CLOSE_ALLOWANCE_SEC = 3.0  # a worker that stopped gets at least this long to exit after Shutdown


@dataclass
class RunResult:
    reason: str  # 'duration', 'interrupted', 'forced', 'failed', 'finished'
    failure: str | None
    collection_path: Path | None
    duration_usec: int

    @property
    def ok(self) -> bool:
        return self.failure is None


def build_modules(experiment: ExperimentFile, ctx: Any) -> dict[str, Module]:
    modules = {}
    for name, spec in experiment.modules.items():
        cls = MODULE_KINDS.get(spec.kind)
        if cls is None:
            raise spec.error(f"unknown module kind {spec.kind!r}; known kinds: {', '.join(sorted(MODULE_KINDS))}",
                             "kind")
        modules[name] = cls(spec, ctx)
    return modules


class Engine:
    """One run of one experiment file. Use ``run()``; tests may reach modules through ``modules``."""

    def __init__(self, experiment: ExperimentFile | str | Path, output: str | Path | None = None, *,
                 duration_usec: int | None = None, out: TextIO | None = None) -> None:
        self.experiment = experiment if isinstance(experiment, ExperimentFile) else load_experiment(experiment)
        self.duration_usec = duration_usec if duration_usec is not None else self.experiment.duration_usec
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.output = Path(output) if output is not None else Path(f"{self.experiment.name}-{stamp}")
        self.out = out or sys.stderr
        self.clock = MasterClock()
        self._log_origin_ns = self.clock.start_ns  # run.log times: seconds since the engine was created
        self.run_uuid = uuid7().bytes
        self.collection: Collection | None = None
        self.failure: str | None = None
        self.failed_module: str | None = None
        self._stop = threading.Event()
        self._stop_reason = ""
        self._stop_requested_at: float | None = None  # time.monotonic() of the first stop request
        self.stop_requested_usec: int | None = None  # ... on the run's clock
        self._close_deadline: float | None = None
        self._storage_lock = threading.RLock()
        self._owners: dict[str, tuple[str, bool]] = {}  # dataset unit path -> (module, asked for by name)
        self._recording_dirs: dict[str, Path] = {}  # module -> plain directory given to start_recording
        self._forced = False
        self._print_lock = threading.Lock()
        self._logs: dict[str, TextIO] = {}
        self._run_log: TextIO | None = None
        self._run_dataset: Dataset | None = None
        self._started = False
        self._started_modules: list[Module] = []
        self.clock_running = False  # time zero has passed: modules may emit data
        self.on_started: Callable[[Engine], None] | None = None
        self.grace_period_sec = self.experiment.grace_period_usec / 1e6
        self._node_ids = {name: FIRST_NODE_ID + index for index, name in enumerate(self.experiment.modules)}
        self.modules = build_modules(self.experiment, self)
        self._resolve_connections(final=False)  # what can be checked before any script has run

    # ----- context offered to modules ---------------------------------------------------------------------
    @property
    def forced(self) -> bool:
        return self._forced

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_deadline(self) -> float:
        requested = self._stop_requested_at if self._stop_requested_at is not None else time.monotonic()
        return requested + self.grace_period_sec

    @property
    def close_deadline(self) -> float:
        return self._close_deadline if self._close_deadline is not None else self.stop_deadline

    def node_id(self, module: str) -> int:
        """The module's Open Ephys-style processor id (100, 101, ... in file order)."""
        return self._node_ids.get(module, 0)

    def fail(self, module: str, message: str) -> None:
        """The first failure ends the run; it is logged and reported."""
        with self._print_lock:
            first = self.failure is None
            if first:
                self.failure = message
                self.failed_module = module
        if first:
            self.log(module, f"FAILED: {message}", "error")  # into the module's log and the run's
            self.request_stop("failed")

    def log(self, module: str, text: str, stream: str = "stdout") -> None:
        with self._print_lock:
            for line in text.splitlines() or [""]:
                print(f"[{module}] {line}", file=self.out, flush=True)
                log = self._logs.get(module) if stream != "engine" else None
                if log is not None:
                    log.write(line + "\n")
                    log.flush()
                if self._run_log is not None and stream != "stdout":
                    # one clock for the whole log (the master clock's zero is only set at start)
                    self._run_log.write(f"{(clock_ns() - self._log_origin_ns) / 1e9:10.3f} "
                                        f"[{module}] {line}\n")
                    self._run_log.flush()

    def dataset(self, name: str, group: str = "", module: str = "") -> Dataset:
        """Create-or-open a dataset (``group`` may be 'a/b') in the run's collection for a built-in module; one
        a script created by name is not shared."""
        assert self.collection is not None
        parent = self.collection
        for part in filter(None, group.split("/")):
            parent = parent.create_group(part, CreateFlag.CREATE_OR_OPEN)
        child = parent.create_dataset(name, CreateFlag.CREATE_OR_OPEN)
        with self._storage_lock:
            owner = self._owners.setdefault(child.unit_path, (module, False))
        if owner[1] and owner[0] != module:
            raise HwlinkError(f"Dataset '{child.name}' already exists in group '{parent.name}'.")
        return child

    def storage_request(self, module: str, op: str, fields: dict[str, Any], explicit: bool = True
                        ) -> dict[str, Any]:
        """A script's EDL request (the engine owns the collection's manifests)."""
        assert self.collection is not None
        if op == "recording-dir":
            return {"path": str(self._recording_dir(module))}
        if op == "recording-done":
            self._finish_recording_dir(module)
            return {}
        unit = self._unit(fields.get("unit", fields.get("parent", "")))
        if op == "group":
            child = unit.create_group(fields["name"], CreateFlag.CREATE_OR_OPEN)
            return {"path": str(child.path), "name": child.name, "unit": child.unit_path}
        if op == "dataset":
            child = self._script_dataset(module, unit, fields["name"], explicit)
            return {"path": str(child.path), "name": child.name, "unit": child.unit_path}
        if op == "set-data-file":
            unit.set_data_file(fields["file_name"], fields["summary"] or None)  # type: ignore[union-attr]
            if fields.get("scan"):
                unit.set_data_scan_pattern(fields["file_name"], fields["summary"] or None)  # type: ignore[union-attr]
        elif op == "add-aux-file":
            if fields.get("scan"):
                unit.add_aux_scan_pattern(fields["file_name"], fields["summary"] or None)  # type: ignore[union-attr]
            else:
                unit.add_aux_file(fields["file_name"], fields["key"] or None,  # type: ignore[union-attr]
                                  fields["summary"] or None)
        elif op == "set-attribute":
            unit.set_attribute(fields["key"], fields["value"])
        else:
            raise HwlinkError(f"unknown storage request {op!r}")
        return {}

    def _script_dataset(self, module: str, parent: Any, name: str, explicit: bool) -> Dataset:
        """Syntalos' rule: a script's dataset must be new in the run. hwlink's own use for a module (explicit
        False) shares the module's dataset with the script's default dataset."""
        wanted = sanitize_name(str(name))
        with self._storage_lock:
            existing = parent[wanted] if wanted in parent else None
            if existing is not None and isinstance(existing, Dataset):
                owner = self._owners.get(existing.unit_path)
                if owner is not None and owner[0] == module and not (explicit and owner[1]):
                    self._owners[existing.unit_path] = (module, owner[1] or explicit)
                    return existing
                raise HwlinkError(f"Dataset '{existing.name}' already exists in group '{parent.name}'.")
            child = parent.create_dataset(name, CreateFlag.MUST_CREATE)
            self._owners[child.unit_path] = (module, explicit)
            return child

    def _recording_dir(self, module: str) -> Path:
        """An Open Ephys processor's recording directory: the module's dataset if it has one, else a plain
        directory that becomes its dataset if the processor writes anything into it (``recording-done``)."""
        assert self.collection is not None
        name = sanitize_name(module)
        with self._storage_lock:
            if name in self.collection:
                existing = self.collection[name]
                if isinstance(existing, Dataset) and self._owners.get(existing.unit_path, ("",))[0] == module:
                    return existing.path
                raise HwlinkError(f"Dataset '{name}' already exists in group '{self.collection.name}'.")
            path = self.collection.path / name
            path.mkdir(exist_ok=True)
            self._recording_dirs[module] = path
            self._owners[name] = (module, False)
        return path

    def _finish_recording_dir(self, module: str) -> None:
        """Remove the recording directory if the processor wrote nothing; else register what it wrote as the
        module's dataset (moved aside, the dataset created in its place, the files moved in)."""
        assert self.collection is not None
        path = self._recording_dirs.pop(module, None)
        if path is None:
            dataset = self.collection[sanitize_name(module)] if sanitize_name(module) in self.collection else None
            if isinstance(dataset, Dataset):
                dataset.set_data_scan_pattern("*", "written by the processor")
            return
        with self._storage_lock:
            self._owners.pop(path.name, None)
        entries = list(path.iterdir()) if path.is_dir() else []
        if not entries:
            if path.is_dir():
                path.rmdir()
            return
        aside = path.with_name(f".{path.name}.recording")
        os.rename(path, aside)
        dataset = self._script_dataset(module, self.collection, path.name, explicit=False)
        for entry in entries:
            os.rename(aside / entry.name, dataset.path / entry.name)
        aside.rmdir()
        dataset.set_data_scan_pattern("*", "written by the processor")

    def _unit(self, unit_path: str) -> Any:
        assert self.collection is not None
        unit: Any = self.collection
        for part in filter(None, unit_path.strip("/").split("/")):
            unit = unit[part]
        return unit

    def save_settings(self, module: str, data: bytes) -> None:
        if self._run_dataset is not None:
            self._run_dataset.add_aux_file(f"{module}.settings", key=f"{module}-settings").write_bytes(data)

    # ----- checking ------------------------------------------------------------------------------------------
    def _resolve_connections(self, final: bool) -> list[tuple[Any, Any]]:
        pairs = []
        taken: dict[Any, Any] = {}
        for connection in self.experiment.connections:
            source_module = self.modules[connection.source_module]
            target_module = self.modules[connection.target_module]
            source = source_module.outputs.get(connection.source_port)
            target = target_module.inputs.get(connection.target_port)
            if source is None and (final or not source_module.dynamic_ports):
                known = ", ".join(source_module.outputs) or "none"
                raise connection.error(f"module {source_module.name!r} has no output port "
                                       f"{connection.source_port!r}; its outputs: {known}", "from")
            if target is None and (final or not target_module.dynamic_ports):
                known = ", ".join(target_module.inputs) or "none"
                raise connection.error(f"module {target_module.name!r} has no input port "
                                       f"{connection.target_port!r}; its inputs: {known}", "to")
            if source is None or target is None:
                continue
            if target.data_type is not None and source.data_type is not None \
                    and not can_connect(source.data_type, target.data_type):
                raise connection.error(f"type mismatch: {source} gives {source.data_type.name} but {target} "
                                       f"takes {target.data_type.name}", "to")
            if target in taken:
                raise connection.error(f"input {target} is already connected to {taken[target]}", "to")
            taken[target] = source
            pairs.append((source, target))
        return pairs

    def _flow_order(self) -> list[Module]:
        """Producers before consumers (cycles, e.g. board <-> script, keep file order)."""
        upstream: dict[str, set[str]] = {name: set() for name in self.modules}
        for connection in self.experiment.connections:
            if connection.source_module != connection.target_module:
                upstream[connection.target_module].add(connection.source_module)
        order: list[str] = []
        remaining = list(self.modules)
        while remaining:
            ready = [n for n in remaining if not (upstream[n] - set(order))] or [remaining[0]]
            order.append(ready[0])
            remaining.remove(ready[0])
        return [self.modules[name] for name in order]

    # ----- running ---------------------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        if not self._stop_reason:
            self._stop_reason = reason
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
            self.stop_requested_usec = self.clock.now_usec()
        self._stop.set()

    def force(self) -> None:
        """A second Ctrl-C: stop waiting for modules, kill workers, still close the collection."""
        self._forced = True
        self._stop_reason = "forced"
        self.request_stop("forced")

    def _open_collection(self) -> None:
        boards = [board_attributes(m.board) for m in self.modules.values()
                  if isinstance(m, BoardModule) and m.board is not None]
        self.collection = Collection.create(self.output, generator=f"hwlink {__version__}",
                                            collection_id=uuid.UUID(bytes=self.run_uuid),
                                            attributes={"experiment": self.experiment.name, **host_attributes(),
                                                        "boards": boards})
        self._run_dataset = self.collection.create_dataset(RUN_DATASET)
        shutil.copyfile(self.experiment.path, self._run_dataset.set_data_file(
            self.experiment.path.name, summary="the experiment file of this run"))
        self._run_log = open(self._run_dataset.add_aux_file("run.log", key="run-log", summary="engine log"), "w",
                             encoding="utf-8")
        for module in self.modules.values():
            if isinstance(module, ScriptModule):
                path = self._run_dataset.add_aux_file(f"{module.name}.log", key=f"{module.name}-log",
                                                      summary=f"output of script {module.script.name}")
                self._logs[module.name] = open(path, "w", encoding="utf-8")

    def run(self) -> RunResult:
        """Run until a stop condition; always closes the collection. Raises ExperimentError before recording
        starts if the experiment does not fit together."""
        started_at = 0
        if self.output.exists() and any(self.output.iterdir()):
            raise HwlinkError(f"output directory {self.output} exists and is not empty")
        early = [m for m in self.modules.values() if not isinstance(m, ScriptModule)]
        try:
            for module in early:  # boards open before anything is written: a bad URL leaves no collection
                module.load()
        except BaseException:
            for module in early:
                self._guard(module, module.close)
            raise
        try:
            self._open_collection()
            self.log("engine", f"recording to {self.output}", "engine")
            for module in self.modules.values():
                if module not in early:
                    module.load()
            for module in self.modules.values():
                module.wait_loaded()
            if self.failure is None:
                for source, target in self._resolve_connections(final=True):
                    target.attach(source)
                for module in self._flow_order():
                    if self.failure is not None or self._stop.is_set():
                        break
                    self._step(module, module.prepare)
            if self.failure is None and not self._stop.is_set():
                self._start()
                started_at = self.clock.now_usec()
                self._wait_for_stop()
        except WorkerFailed:
            pass
        except KeyboardInterrupt:
            self.request_stop("interrupted")
        finally:
            self._shutdown()
        reason = "failed" if self.failure else (self._stop_reason or "finished")
        return RunResult(reason, self.failure, self.collection.path if self.collection else None,
                         self.clock.now_usec() - started_at if started_at or self._started else 0)

    def _start(self) -> None:
        self.clock.start_ns = clock_ns()  # time zero of the run; every module shares this clock
        self.clock_running = True
        order = self._flow_order()
        for module in [m for m in reversed(order) if not m.is_source] + [m for m in order if m.is_source]:
            if self.failure is not None:
                return
            self._started_modules.append(module)
            self._step(module, module.start)
        self._started = True
        if self.collection is not None:
            self.collection.update_attributes(clock_start_attributes(self.clock))
        zero = (self.clock.start_ns - self._log_origin_ns) / 1e9
        self.log("engine", f"started (master clock zero at log time {zero:.3f} s)", "engine")
        with self._print_lock:  # clock, priorities obtained, worker IPC: recorded in the run log, never dropped
            if self._run_log is not None:
                self._run_log.write(f"{(clock_ns() - self._log_origin_ns) / 1e9:10.3f} [engine] "
                                    f"{platform.summary()}\n")
                self._run_log.flush()
        if self.on_started is not None:
            self.on_started(self)

    def _wait_for_stop(self) -> None:
        deadline = None if self.duration_usec is None else self.duration_usec
        while not self._stop.is_set():
            remaining = None if deadline is None else (deadline - self.clock.now_usec()) / 1e6
            if remaining is not None and remaining <= 0:
                self.request_stop("duration")
                break
            self._stop.wait(0.2 if remaining is None else min(remaining, 0.2))

    def _shutdown(self) -> None:
        if self._stop_requested_at is None:
            self.request_stop("finished")
        order = self._flow_order()
        started = [m for m in order if m in self._started_modules]
        for module in [m for m in started if m.is_source] + [m for m in started if not m.is_source]:
            self._guard(module, module.stop)  # none waits: every module gets its stop request now
        for module in started:
            self._guard(module, module.wait_stopped)  # all share one deadline
        for module in order:
            self._guard(module, module.request_close)
        self._close_deadline = max(self.stop_deadline, time.monotonic() + CLOSE_ALLOWANCE_SEC)
        for module in order:
            self._guard(module, module.close)
        for module in list(self._recording_dirs):  # a processor that was killed before it finished recording
            try:
                self._finish_recording_dir(module)
            except Exception as error:
                self.log(module, f"cannot register what it recorded: {error}", "engine")
        self.log("engine", f"stopped ({self.failure and 'failed' or self._stop_reason or 'finished'})", "engine")
        for log in self._logs.values():
            log.close()
        if self._run_log is not None:
            self._run_log.close()
            self._run_log = None
        if self.collection is not None:
            reason = "failed" if self.failure else (self._stop_reason or "finished")
            ended: dict[str, Any] = {"end_reason": reason, "success": self.failure is None,
                                     "failed_module": self.failed_module, "failure_reason": self.failure}
            if self._started:
                ended["recording_length_msec"] = self.clock.now_usec() // 1000
            self._guard_collection(lambda: self.collection.update_attributes(ended))  # type: ignore[union-attr]
            self.collection.close()

    def _guard_collection(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as error:  # a full disk must not keep the collection from closing
            self.log("engine", f"error while writing the collection's attributes: {error}", "engine")

    def _step(self, module: Module, step: Callable[[], None]) -> None:
        """A module that cannot prepare or start (a device refusing a line mode, a full disk) fails the run."""
        try:
            step()
        except ExperimentError:
            raise
        except HwlinkError as error:
            self.fail(module.name, str(error))

    def _guard(self, module: Module, step: Callable[[], None]) -> None:
        """Stopping continues past a module that fails to stop: the rest of the data must be closed."""
        try:
            step()
        except KeyboardInterrupt:
            self.force()
        except Exception as error:
            self.log(module.name, f"error while stopping: {error}", "engine")


__all__ = ["Engine", "ExperimentError", "MODULE_KINDS", "RunResult", "build_modules"]
