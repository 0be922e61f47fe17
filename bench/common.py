"""Shared set-up for benchmarks: a scratch model folder with tiny checkpoints, an engine."""

from __future__ import annotations

import argparse
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


def add_full_size_options(parser: argparse.ArgumentParser) -> None:
    """`--keep FILE` (the full-size SD 1.5 checkpoint, written once and reused) and `--rounds`."""
    parser.add_argument(
        "--keep", type=Path, help="write (or reuse) the checkpoint here instead of a temp dir"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")


def full_size_sd15(keep: Path | None, scratch: str) -> Path:
    """`keep`, or a file in `scratch`: a random-weight fp16 SD 1.5 checkpoint (~2.1 GB)."""
    path = keep or Path(scratch) / "sd15-random.safetensors"
    if not path.exists():
        from latentloom.models.tiny import make_sd15_checkpoint

        make_sd15_checkpoint(path)
    return path


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
