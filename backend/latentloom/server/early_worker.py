"""The job worker's configuration, and spawning it before the web stack loads.

A cold `latentloom serve` spent ~1.5 s importing FastAPI, uvicorn and the routes before it
spawned the worker child, which then needs ~4.5 s of its own (torch, diffusers,
transformers) before it takes a job. Spawned first, the child imports while this process
does, on the other core, and a job queued the moment the socket answers waits that much
less. The server's `WorkerProcess` adopts the child (`Services.early_worker`).

Only light imports here: this runs before the socket opens and must not load torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from latentloom.jobs.worker_protocol import WorkerConfig
from latentloom.jobs.worker_spawn import SpawnedWorker, spawn_worker
from latentloom.server.settings import ServerSettings


def needs_demo_checkpoint(settings: ServerSettings) -> bool:
    """The model folders hold no checkpoint and the tiny demo one is offered instead."""
    from latentloom.models.folders import ModelFolders

    return settings.demo_checkpoint and not ModelFolders.of(list(settings.models)).list(
        "checkpoints"
    )


def worker_config(settings: ServerSettings, model_dirs: Sequence[Path]) -> WorkerConfig:
    """What a worker child (or Ray worker) is started with."""
    return WorkerConfig(
        model_dirs=tuple(model_dirs),
        output_dir=settings.output_dir,
        input_dir=settings.input_dir,
        device=settings.device,
        node_packs=tuple(settings.node_packs),
        cost_budget=settings.cost_budget(),
        previews_per_second=settings.previews_per_second,
        memory_limit_bytes=settings.worker_memory_limit_bytes,
        fast_path=settings.fast_path(),
    )


def spawn_early(settings: ServerSettings) -> SpawnedWorker | None:
    """The worker child, spawned now; None where the server starts its workers later: Ray
    workers, the in-process thread worker, or folders without a checkpoint (the demo
    checkpoint is written first, and writing it loads torch)."""
    if settings.ray is not None or settings.worker != "process":
        return None
    if needs_demo_checkpoint(settings):
        return None
    return spawn_worker(worker_config(settings, list(settings.models)))
