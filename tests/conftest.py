"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hwlink.drivers import Board, open_board

PROJECT_ROOT = Path(__file__).resolve().parents[1]
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
