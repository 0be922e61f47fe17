"""The node catalog, the model lists and the system report."""

from __future__ import annotations

import asyncio
import platform
import sys
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

import latentloom
from latentloom.server.services import Services

router = APIRouter(prefix="/api", tags=["catalog"])
MODEL_KINDS = ("checkpoints", "loras", "vae")


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


@router.get("/nodes")
async def nodes(request: Request) -> dict[str, Any]:
    """Every node type with its inputs, widgets (choices filled from the folders) and outputs."""
    from latentloom.catalog import catalog

    engine = await services(request).wait_for_engine()
    # Off the loop: the catalog fills its choices from the model folders.
    return {"nodes": await asyncio.to_thread(catalog, engine.registry, engine.list_choices)}


@router.get("/models")
async def models(request: Request) -> dict[str, list[str]]:
    engine = await services(request).wait_for_engine()
    return await asyncio.to_thread(
        lambda: {kind: engine.list_choices(kind) for kind in MODEL_KINDS}
    )


@router.get("/system")
async def system(request: Request) -> dict[str, Any]:
    """Answers at once, even while torch and the models are still loading."""
    state = services(request)
    report: dict[str, Any] = {
        "version": latentloom.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "engine": "ready"
        if state.engine is not None
        else ("failed" if state.startup_error else "starting"),
        "startup_error": state.startup_error,
        "demo_checkpoint": state.demo_checkpoint,
        "memory": _memory(),
        "queue": await state.queue_counts.get(),  # at most a moment old; never waits on SQLite
        "worker": state.worker_status(),  # pid, ready, restarts: jobs run in this worker
    }
    if state.engine is not None:
        import torch

        report["device"] = str(state.engine.settings.device)
        report["dtype"] = str(state.engine.settings.dtype).removeprefix("torch.")
        report["torch"] = torch.__version__
        report["cache"] = {
            "used_bytes": state.engine.cache.used_bytes,
            "budget_bytes": state.engine.cache.budget_bytes,
        }
        # Which models the engine that runs jobs keeps on the device (engine/residency.py):
        # a worker process reports its own after each job; else this process's engine.
        reported = (report["worker"] or {}).get("device_memory")
        report["device_memory"] = reported or state.engine.residency.status()
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            report["gpu"] = {
                "name": torch.cuda.get_device_name(),
                "free_bytes": free,
                "total_bytes": total,
            }
    return report


def _memory() -> dict[str, int]:
    """Total and available RAM from /proc/meminfo (Linux); empty elsewhere."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def to_bytes(key: str) -> int:
        return int(fields[key].strip().split()[0]) * 1024

    return {"total_bytes": to_bytes("MemTotal"), "available_bytes": to_bytes("MemAvailable")}
