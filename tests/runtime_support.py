"""Helpers of the runtime tests: write an experiment file, run it in-process, act on it while it runs."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path

from hwlink.runtime import Engine, RunResult
from tests.conftest import PROJECT_ROOT, SHARED

USER_SCRIPTS = SHARED / "user-scripts"
EXAMPLES = PROJECT_ROOT / "examples"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class Run:
    """One finished run: its result, the engine (modules stay inspectable), and everything it printed."""

    def __init__(self, result: RunResult, engine: Engine, output: str, during_error: BaseException | None) -> None:
        self.result = result
        self.engine = engine
        self.output = output
        self.during_error = during_error
        self.path = result.collection_path

    def log(self, module: str) -> str:
        assert self.path is not None
        return (self.path / "hwlink-run" / f"{module}.log").read_text()


def run_experiment(experiment: Path, output: Path, *, duration: str | None = None,
                   during: Callable[[Engine], None] | None = None) -> Run:
    """Run ``experiment``; ``during(engine)`` runs in a thread once started, and the run stops when it returns
    (or at ``duration``)."""
    from hwlink.units import parse_duration_usec

    printed = io.StringIO()
    engine = Engine(experiment, output, duration_usec=parse_duration_usec(duration) if duration else None,
                    out=printed)
    errors: list[BaseException] = []

    def act(engine: Engine) -> None:
        try:
            if during is not None:
                during(engine)
        except BaseException as error:  # reported by the test after the run closed
            errors.append(error)
        finally:
            if duration is None:
                engine.request_stop("test")

    if during is not None or duration is None:
        engine.on_started = lambda e: threading.Thread(target=act, args=(e,), daemon=True).start()
    result = engine.run()
    return Run(result, engine, printed.getvalue(), errors[0] if errors else None)
