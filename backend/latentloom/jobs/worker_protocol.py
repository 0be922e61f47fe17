"""The messages between a job server and an engine worker, as plain picklable records.

A worker is a loop that owns an `Engine` (so models stay resident between jobs) and runs one
job at a time. Whatever carries the messages — a `multiprocessing` pipe to a child process
today, a Ray actor's method calls and streaming generator later — they are these:

    server -> worker   RunJob(job_id, workflow)     run this document (the ledger's JSON)
                       CancelJob(job_id)            set that run's cancel token
                       Shutdown()                   cancel what runs, then exit
    worker -> server   Ready(pid, device, ...)      warm: imports done, registry and engine built
                       StartupFailed(error)         the engine could not be built; the worker exits
                       EventOut(job_id, json)       one `engine.events` model, as JSON
                       PreviewOut(job_id, ...)      a preview latent as float16 bytes (throttled)
                       Outcome(job_id, status, ...) succeeded(reports) / failed(error, node) /
                                                    cancelled; always the last word on a job

Every field is a str, number, bytes or JSON-ready dict, so a message pickles the same in
any Python and never carries a tensor (torch's multiprocessing pickler would move those
through shared memory tied to the sending process). The ledger is not in this protocol:
only the server reads and writes it, and it learns everything from the messages.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from latentloom.fast_path import FastPathSettings  # imports no torch

if TYPE_CHECKING:
    import torch

OutcomeStatus = Literal["succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to build its engine (`engine.setup.make_engine` keywords)."""

    model_dirs: tuple[Path, ...]
    output_dir: Path
    input_dir: Path
    device: str | None = None
    node_packs: tuple[Path, ...] = ()
    cost_budget: dict[str, Any] = field(default_factory=dict)  # the `*_budget_*` keywords
    previews_per_second: float = 4.0  # the worker sends no more than this many per job
    # RLIMIT_AS for the worker, on top of the address space it holds once warm; None: no limit.
    memory_limit_bytes: int | None = None
    # Channels-last / compile for each loaded UNet (fast_path.py).
    fast_path: FastPathSettings = field(default_factory=FastPathSettings)


# --- server -> worker ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunJob:
    job_id: str
    workflow: dict[str, Any]


@dataclass(frozen=True)
class CancelJob:
    job_id: str


@dataclass(frozen=True)
class Shutdown:
    pass


# --- worker -> server ----------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    pid: int
    device: str
    dtype: str
    seconds: float  # how long the warm-up took
    node_names: dict[str, str]  # node type id -> display name, to name a node in errors


@dataclass(frozen=True)
class StartupFailed:
    error: str


@dataclass(frozen=True)
class EventOut:
    job_id: str
    event_json: str  # an `engine.events.Event`, `model_dump_json()`


@dataclass(frozen=True)
class PreviewOut:
    job_id: str
    node: str
    step: int
    family: str | None
    shape: tuple[int, ...]
    data: bytes  # float16, C order


@dataclass(frozen=True)
class Outcome:
    job_id: str
    status: OutcomeStatus
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # when succeeded
    error: str | None = None  # when failed
    node: str | None = None  # the node that failed, when one did
    cache_used_bytes: int = 0  # the worker's output cache after the job
    # The worker engine's model residency after the job (Residency.status), for /api/system.
    device_memory: dict[str, Any] | None = None


ToWorker = RunJob | CancelJob | Shutdown
FromWorker = Ready | StartupFailed | EventOut | PreviewOut | Outcome


def encode_latent(latent: torch.Tensor) -> tuple[tuple[int, ...], bytes]:
    """A preview latent as (shape, float16 bytes): half the size, plenty for a preview.

    Only the first item of the batch (the one previews show), cast on its own device, so a
    GPU hands over one small fp16 latent, not the batch in fp32."""
    import torch

    values = latent[:1].detach().to(dtype=torch.float16).to("cpu").contiguous()
    return tuple(values.shape), values.numpy().tobytes()


def decode_latent(shape: tuple[int, ...], data: bytes) -> torch.Tensor:
    import torch

    return torch.frombuffer(bytearray(data), dtype=torch.float16).reshape(shape).float()


def describe_exit(exitcode: int | None) -> str:
    """How a worker process ended, as a phrase: "killed by signal 9 (SIGKILL)"."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"killed by signal {-exitcode}"
        return f"killed by signal {-exitcode} ({name})"
    return f"exited with status {exitcode}"
