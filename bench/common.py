"""Shared set-up for benchmarks: a scratch model folder with tiny checkpoints, an engine."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from latentloom.engine.executor import Engine
from latentloom.engine.setup import make_engine
from latentloom.models.tiny import make_tiny_checkpoint

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"


def tiny_models(root: Path) -> Path:
    checkpoints = root / "models" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    make_tiny_checkpoint("sd15", checkpoints / "tiny-sd15.safetensors", seed=0)
    return root / "models"


def cpu_engine(root: Path) -> Engine:
    return make_engine(
        model_dirs=[root / "models"],
        output_dir=root / "output",
        input_dir=WORKFLOWS / "inputs",
        device="cpu",
    )


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
