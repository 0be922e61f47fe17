"""The worker child's reader takes `Prefetch` requests while the engine is still being built:
they wait for its dtype, then convert, and the first load takes the converted tensors."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from latentloom.jobs.worker_main import _EarlyPrefetch, _Worker
from latentloom.jobs.worker_protocol import Prefetch, Shutdown
from latentloom.models import weight_prefetch
from latentloom.models.load import load_checkpoint


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    yield
    weight_prefetch.drop_all()


def test_a_prefetch_sent_before_the_engine_exists_converts_for_the_first_load(
    models_dir: Path,
) -> None:
    checkpoint = models_dir / "checkpoints" / "tiny-sd15.safetensors"
    ours, theirs = multiprocessing.Pipe(duplex=True)
    worker = _Worker(theirs, previews_per_second=1.0)
    prefetch = _EarlyPrefetch()
    worker.start_reading(prefetch)
    ours.send(Prefetch((str(checkpoint),)))
    time.sleep(0.2)  # the reader has it; no dtype yet, so nothing may start
    assert weight_prefetch.pending(checkpoint) is None
    prefetch.open(torch.float32)  # what the child does once make_engine chose the dtype
    started = weight_prefetch.pending(checkpoint)
    assert started is not None and started.wait_converted(60)
    load_checkpoint(checkpoint, device="cpu", dtype=torch.float32)
    assert started.handed == len(started.keys) > 0
    ours.send(Prefetch((str(checkpoint),)))  # later requests start at once
    deadline = time.monotonic() + 10
    while weight_prefetch.pending(checkpoint) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert weight_prefetch.pending(checkpoint) is not None
    ours.send(Shutdown())  # the reader ends (an end of file would end this process)
    assert worker._jobs.get(timeout=10) is None
