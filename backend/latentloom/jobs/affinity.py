"""Which worker runs a job: routing by model affinity, as a pure function.

Loading a checkpoint costs seconds to minutes; running a job on a worker that already holds
its models costs nothing extra. So the dispatcher, having claimed the head of the queue,
asks `choose_worker` where it goes, in this order:

1. an idle worker that has every model the job names resident;
2. the idle worker that has the most of them resident (at least one);
3. a short wait (`max_wait_s`) for a busy worker that has them all resident;
4. the least recently used idle worker (spreads models over the pool).

Ties go to the least recently used worker, so two equal workers share the work. The queue's
order and priorities stay in the ledger: this only picks where the head goes. A job's
models are the model files its document names (`models_named`), matched by file name, as
each worker reports the files its engine holds; a job that names none (a workflow of image
tools) goes by rule 4 at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

# The suffixes of the files a model folder holds: what a literal input naming one ends in.
MODEL_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf")


@dataclass(frozen=True)
class WorkerView:
    """What routing sees of one worker."""

    name: str
    idle: bool
    resident: frozenset[str]  # model file names its engine holds
    last_used: float  # when it last took a job (monotonic seconds; 0: never)


@dataclass(frozen=True)
class Route:
    """Run the job on `worker` now; `rule` is the number of the rule that chose it (1-4)."""

    worker: str
    rule: int


@dataclass(frozen=True)
class Wait:
    """Keep the job a little: `worker`, busy, has its models (rule 3)."""

    worker: str


def model_name(path: str) -> str:
    """A model file as routing compares it: its file name ("sd/a.safetensors" -> "a.safetensors")."""
    return PurePosixPath(path.replace("\\", "/")).name


def models_named(workflow: Mapping[str, Any]) -> frozenset[str]:
    """The model files a workflow document names in its literal inputs, by file name."""
    names: set[str] = set()
    nodes = workflow.get("nodes")
    if not isinstance(nodes, Mapping):
        return frozenset()
    for node in nodes.values():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        for value in inputs.values():
            if isinstance(value, str) and value.lower().endswith(MODEL_SUFFIXES):
                names.add(model_name(value))
    return frozenset(names)


def choose_worker(
    models: frozenset[str],
    workers: Sequence[WorkerView],
    *,
    waited_s: float = 0.0,
    max_wait_s: float = 3.0,
) -> Route | Wait | None:
    """Where a job naming `models` goes now; None when no worker is idle and none is worth
    waiting for (the caller claims only with an idle worker, so that is the rare race)."""
    idle = sorted((w for w in workers if w.idle), key=_lru)
    if models:
        holding_all = [w for w in idle if models <= w.resident]
        if holding_all:
            return Route(holding_all[0].name, 1)
        overlap = max((len(models & w.resident) for w in idle), default=0)
        if overlap > 0:
            best = next(w for w in idle if len(models & w.resident) == overlap)
            return Route(best.name, 2)
        if waited_s < max_wait_s:
            busy = sorted((w for w in workers if not w.idle and models <= w.resident), key=_lru)
            if busy:
                return Wait(busy[0].name)
    if idle:
        return Route(idle[0].name, 4)
    return None


def _lru(worker: WorkerView) -> tuple[float, str]:
    return (worker.last_used, worker.name)


def resident_names(sources: Iterable[str]) -> frozenset[str]:
    """Loaded handles' `source` paths as the file names routing compares."""
    return frozenset(model_name(source) for source in sources if source)
