"""Reading a workflow's model files ahead while the engine stack imports (engine/read_ahead.py)."""

from __future__ import annotations

from pathlib import Path

from latentloom.engine.executor import Engine
from latentloom.engine.read_ahead import ReadAhead, model_files, read_into_page_cache
from latentloom.jobs.ledger import Ledger
from latentloom.jobs.queue import JobQueue
from tests.support import load_example


def test_the_files_a_workflow_names_resolve_as_the_loaders_resolve_them(
    engine: Engine, models_dir: Path
) -> None:
    folders, registry = engine.settings.folders, engine.registry
    checkpoint = models_dir / "checkpoints" / "tiny-sd15.safetensors"
    lora = models_dir / "loras" / "tiny-lora-sd15.safetensors"
    assert model_files(load_example("txt2img.json"), registry, folders) == [checkpoint]
    assert model_files(load_example("lora.json"), registry, folders) == [checkpoint, lora]
    missing = load_example("txt2img.json").with_input(
        "checkpoint", "checkpoint", "nope.safetensors"
    )
    assert model_files(missing, registry, folders) == []  # validation names it, not this
    outside = load_example("txt2img.json").with_input(
        "checkpoint", "checkpoint", "../../etc/passwd"
    )
    assert model_files(outside, registry, folders) == []  # confined as the loader is


def test_each_file_is_read_whole_and_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    first.write_bytes(b"x" * 20_000_000)  # many chunks
    second.write_bytes(b"y" * 10)
    assert read_into_page_cache([first, second, tmp_path / "gone"]) == 20_000_010
    ahead = ReadAhead()
    assert ahead.read(lambda: [first]) == 20_000_000
    assert ahead.read(lambda: [first, second]) == 10  # the first file was read already
    assert ahead.read(lambda: 1 / 0) == 0  # a workflow it cannot read: nothing, no error


def test_the_queue_hands_each_submitted_workflow_on(tmp_path: Path) -> None:
    class Idle:
        def wake(self) -> None:
            pass

    seen: list[dict[str, object]] = []
    workflow = load_example("txt2img.json").to_json()
    with Ledger(tmp_path / "jobs.sqlite") as ledger:
        queue = JobQueue(ledger, Idle(), lambda event: None, on_queued=seen.append)  # type: ignore[arg-type]
        queue.submit(workflow, runs=3)
    assert seen == [workflow]
