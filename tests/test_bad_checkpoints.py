"""Broken and hostile checkpoint files, used through the Load Checkpoint node.

Each gives a clear error that names the node and the problem, nothing downstream runs, and
nothing in the file is executed (the pickle below would create a marker file if it were).
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from latentloom.engine.executor import Engine, NodeExecutionError
from tests.support import load_example, make_engine


class _Exploit:
    """Unpickling this creates `marker`: proof that a file was (or was not) unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


@pytest.fixture
def bad_models(models_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    good = (models_dir / "checkpoints" / "tiny-sd15.safetensors").read_bytes()
    (root / "checkpoints" / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (root / "checkpoints" / "garbage.safetensors").write_bytes(b"\xff" * 64)
    exploit = {"state_dict": {"weight": torch.zeros(2)}, "payload": _Exploit(tmp_path / "pwned")}
    torch.save(exploit, root / "checkpoints" / "renamed-pickle.safetensors")
    with (root / "checkpoints" / "model.ckpt").open("wb") as file:
        pickle.dump(_Exploit(tmp_path / "pwned"), file)
    shutil.copy(models_dir / "checkpoints" / "tiny-sd15.safetensors", root / "checkpoints")
    return root


def run_with_checkpoint(engine: Engine, name: str) -> tuple[NodeExecutionError, list[str]]:
    started: list[str] = []
    workflow = load_example("txt2img.json").with_input("checkpoint", "checkpoint", name)
    with pytest.raises(NodeExecutionError) as error:
        engine.run(workflow, on_event=lambda event: started.append(getattr(event, "node", "")))
    return error.value, started


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("truncated.safetensors", "truncated"),
        ("garbage.safetensors", "header"),
        ("renamed-pickle.safetensors", "pickle"),
        ("model.ckpt", "pickle checkpoints and are not loaded"),
    ],
)
def test_bad_checkpoint_fails_cleanly_and_runs_nothing_from_it(
    bad_models: Path, tmp_path: Path, input_dir: Path, name: str, expected: str
) -> None:
    engine = make_engine(bad_models, tmp_path / "output", input_dir)
    error, started = run_with_checkpoint(engine, name)
    message = str(error)
    assert message.startswith('node "checkpoint" (Load Checkpoint, loaders.checkpoint) failed: ')
    assert expected in message and name in message
    assert set(started) == {"checkpoint"}  # failed before anything downstream started
    assert not (tmp_path / "pwned").exists()
    assert not list((tmp_path / "output").glob("*.png"))


def test_pickle_errors_say_how_to_convert(
    bad_models: Path, tmp_path: Path, input_dir: Path
) -> None:
    engine = make_engine(bad_models, tmp_path / "output", input_dir)
    error, _ = run_with_checkpoint(engine, "renamed-pickle.safetensors")
    assert "weights_only=True" in str(error) and "save_file" in str(error)


def test_the_engine_keeps_working_after_a_bad_checkpoint(
    bad_models: Path, tmp_path: Path, input_dir: Path
) -> None:
    engine = make_engine(bad_models, tmp_path / "output", input_dir)
    run_with_checkpoint(engine, "truncated.safetensors")
    result = engine.run(load_example("txt2img.json"))
    assert "save" in result.reports
