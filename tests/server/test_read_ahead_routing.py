"""A job queued while the worker child starts: its checkpoints go to the worker to convert
(models/weight_prefetch.py), its other model files to the server's read-ahead."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from latentloom.engine.setup import make_engine
from latentloom.server.services import files_to_read_ahead
from tests.support import load_example


class Prefetching:
    """What the dispatcher is asked to prefetch (the worker process sends it on its pipe)."""

    def __init__(self) -> None:
        self.asked: list[list[Path]] = []

    def prefetch(self, paths: Sequence[Path]) -> None:
        self.asked.append(list(paths))


def test_checkpoints_go_to_the_worker_and_the_rest_is_read_ahead(
    models_dir: Path, tmp_path: Path
) -> None:
    engine = make_engine(
        model_dirs=[models_dir], output_dir=tmp_path, input_dir=tmp_path, device="cpu"
    )
    workflow = load_example("lora.json").to_json()
    checkpoint = models_dir / "checkpoints" / "tiny-sd15.safetensors"
    lora = models_dir / "loras" / "tiny-lora-sd15.safetensors"
    worker = Prefetching()
    assert files_to_read_ahead(workflow, engine, worker) == [lora]
    assert worker.asked == [[checkpoint]]
    # A dispatcher that cannot prefetch (Ray, the thread worker): everything is read ahead.
    assert files_to_read_ahead(workflow, engine, None) == [checkpoint, lora]
