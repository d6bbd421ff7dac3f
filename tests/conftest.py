"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Lab Streaming Layer stays on this machine: liblsl reads LSLAPICFG once, when pylsl first loads, so it is set
# here, before any test module imports pylsl (and inherited by every hwlink process a test starts).
LSL_CONFIG = PROJECT_ROOT / "hwlink" / "drivers" / "lsl_loopback.cfg"
os.environ["LSLAPICFG"] = str(LSL_CONFIG)

from hwlink.drivers import Board, open_board  # noqa: E402 - after LSLAPICFG

SHARED = PROJECT_ROOT.parent / "shared"


@pytest.fixture
def open_sim() -> Iterator:
    """Open sim:// boards that are closed after the test whatever happens."""
    boards: list[Board] = []

    def opener(query: str = "") -> Board:
        board = open_board(f"sim://?{query}" if query else "sim://")
        boards.append(board)
        return board

    yield opener
    for board in boards:
        board.close()


# ===== issue 21: shared test helpers (the shared-data path, decompressed samples, the CLI runner, waiting) =====
# Kept in one block of their own so other conftest additions merge cleanly.
import functools  # noqa: E402
import lzma  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

if "HWLINK_SHARED" in os.environ:
    SHARED = Path(os.environ["HWLINK_SHARED"])
elif not SHARED.is_dir():  # tests run from a copy one level deeper (mutmut's mutants/ tree) find it further up
    SHARED = next((parent / "shared" for parent in PROJECT_ROOT.parents if (parent / "shared").is_dir()), SHARED)
SYNTALOS_TSYNC_XZ = SHARED / "data" / "tsync" / "syntalos-3.x-valid.tsync.xz"


@functools.lru_cache(maxsize=None)
def _decompressed(path: Path) -> bytes:
    return lzma.decompress(path.read_bytes())


def decompress_sample(xz_path: Path, directory: Path, name: str | None = None) -> Path:
    """A writable decompressed copy of a shared ``.xz`` sample in ``directory`` (decompressed once per session)."""
    target = directory / (name or xz_path.name.removesuffix(".xz"))
    target.write_bytes(_decompressed(xz_path))
    return target


@pytest.fixture(scope="module")
def syntalos_tsync_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Syntalos' 3.x video .tsync sample, one copy per test module: for tests that only read it."""
    return decompress_sample(SYNTALOS_TSYNC_XZ, tmp_path_factory.mktemp("sample"))


@pytest.fixture
def syntalos_tsync(tmp_path: Path) -> Path:
    """Syntalos' 3.x video .tsync sample as ``video.tsync`` in the test's own tmp_path: free to change."""
    return decompress_sample(SYNTALOS_TSYNC_XZ, tmp_path, "video.tsync")


def invoke_cli(*args: str | os.PathLike[str], env: dict[str, str] | None = None, input: str | None = None,
               catch_exceptions: bool = False):
    """Run ``hwlink ARGS`` in-process through click's runner; an unexpected exception fails the test with its
    traceback instead of hiding in ``result.exception``."""
    from click.testing import CliRunner

    from hwlink.cli.main import cli

    return CliRunner().invoke(cli, [str(arg) for arg in args], env=env, input=input,
                              catch_exceptions=catch_exceptions)


def wait_for(predicate: Callable[[], object], timeout: float = 3.0, interval: float = 0.002) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; its final value decides."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# ===== end issue 21 block =====
