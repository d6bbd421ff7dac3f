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
