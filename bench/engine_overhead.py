"""Engine overhead: a graph of 1,000 trivial nodes, run cold and from cache.

Prints microseconds per node for validation + planning + execution, next to the baseline of
calling the same node functions directly in a loop, measured in the same run.

    .venv/bin/python -m bench.engine_overhead
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from latentloom.engine.cache import OutputCache
from latentloom.engine.context import RunSettings
from latentloom.engine.executor import Engine
from latentloom.engine.folders import Folders
from latentloom.graph.workflow import parse_workflow
from latentloom.models.folders import ModelFolders
from latentloom.registry import Registry, load_pack_folder

ARITH = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "packs" / "arith"
NODES = 1000


def chain_workflow(count: int) -> dict:
    """number -> add -> add -> ... -> sink: every node depends on the previous one."""
    nodes: dict[str, dict] = {"n0": {"type": "arith.number", "inputs": {"value": 1}}}
    for index in range(1, count - 1):
        nodes[f"n{index}"] = {
            "type": "arith.add",
            "inputs": {"a": {"node": f"n{index - 1}", "output": "value"}, "b": 1},
        }
    nodes["sink"] = {
        "type": "arith.sink",
        "inputs": {"value": {"node": f"n{count - 2}", "output": "value"}},
    }
    return {"schema": "latentloom/workflow", "version": 1, "nodes": nodes}


def direct_baseline(registry: Registry, count: int) -> float:
    add = registry.specs["arith.add"].function
    started = time.perf_counter()
    value = 1
    for _ in range(count):
        value = add(None, value, 1)["value"]
    return time.perf_counter() - started


def main() -> None:
    registry = Registry()
    load_pack_folder(registry, ARITH)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        settings = RunSettings(
            torch.device("cpu"), torch.float32, Folders(ModelFolders.of([root]), root), root
        )
        document = chain_workflow(NODES)
        cold, cached, validate, baseline = [], [], [], []
        for _ in range(5):
            engine = Engine(registry, settings, OutputCache(2**30))
            workflow = parse_workflow(document)
            started = time.perf_counter()
            engine.validate(workflow)
            validate.append(time.perf_counter() - started)
            cold.append(engine.run(workflow).seconds)
            cached.append(engine.run(workflow).seconds)
            baseline.append(direct_baseline(registry, NODES))

    def per_node(samples: list[float]) -> float:
        return statistics.median(samples) / NODES * 1e6

    print(f"engine overhead, {NODES}-node chain (median of 5), python {sys.version.split()[0]}")
    print(f"  validate only          {per_node(validate):8.1f} us/node")
    print(f"  cold run (all execute) {per_node(cold):8.1f} us/node")
    print(f"  re-run (all cached)    {per_node(cached):8.1f} us/node")
    print(f"  direct function calls  {per_node(baseline):8.3f} us/node (baseline)")
    print(
        f"  ratio cold run / direct calls: {statistics.median(cold) / statistics.median(baseline):.0f}x"
    )


if __name__ == "__main__":
    main()
