"""Every file in examples/ runs from a copy of the directory with nothing beside it (no shared/, no tests/), as
it would from a fresh clone or next to an installed package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwlink.cli.main import cli
from hwlink.edl import Collection

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXPECTED_DATA = {  # example -> datasets that must hold data after a short run
    "beep": ["speaker"],
    "frame_forward": ["video", "events/frame-stamps"],
    "bandpass": [],
    "pulse_on_rise": ["lines"],
    "pulse_train": ["edges"],
}


def test_the_list_covers_every_example_and_none_reaches_outside() -> None:
    assert sorted(path.stem for path in EXAMPLES.glob("*.toml")) == sorted(EXPECTED_DATA)
    for path in EXAMPLES.rglob("*"):
        if path.is_file():
            assert "shared/" not in path.read_text() and "../" not in path.read_text(), path


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(EXAMPLES, root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    assert not (root.parent / "shared").exists() and not (root / "shared").exists()
    return root / "examples"


@pytest.mark.parametrize("example", sorted(EXPECTED_DATA))
def test_example_runs_alone(clone: Path, tmp_path: Path, example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(clone.parent)
    out = tmp_path / example
    result = CliRunner().invoke(cli, ["run", f"examples/{example}.toml", "--duration", "1500ms", "-o", str(out)])
    assert result.exit_code == 0, result.output
    collection = Collection.open(out)
    assert collection.attributes["success"] is True
    for name in EXPECTED_DATA[example]:
        dataset = collection[name]
        assert dataset.data is not None and all(path.stat().st_size > 0 for path in dataset.data.part_paths()), name
    verify = CliRunner().invoke(cli, ["edl", "verify", str(out)])
    assert verify.exit_code == 0 and verify.output.strip().endswith("0 error(s), 0 warning(s)"), verify.output
