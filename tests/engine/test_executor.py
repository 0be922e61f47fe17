"""The executor on a trivial node pack: planning, caching, events, failures, cancellation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from latentloom.engine.cache import OutputCache
from latentloom.engine.context import Cancelled, CancelToken
from latentloom.engine.events import NodeCached, NodeFailed, NodeFinished, NodeProgress, NodeStarted
from latentloom.engine.executor import Engine, NodeExecutionError
from latentloom.graph.validate import WorkflowInvalid
from latentloom.graph.workflow import parse_workflow
from tests.support import make_arith_engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_arith_engine(tmp_path)


def workflow(nodes: dict) -> object:
    return parse_workflow({"schema": "latentloom/workflow", "version": 1, "nodes": nodes})


def link(node: str, output: str = "value") -> dict:
    return {"node": node, "output": output}


SUM = {
    "one": {"type": "arith.number", "inputs": {"value": 1}},
    "two": {"type": "arith.number", "inputs": {"value": 2}},
    "sum": {"type": "arith.add", "inputs": {"a": link("one"), "b": link("two")}},
    "out": {"type": "arith.sink", "inputs": {"value": link("sum")}},
    "unused": {"type": "arith.number", "inputs": {"value": 99}},
}


def test_runs_only_what_output_nodes_need_in_dependency_order(engine: Engine) -> None:
    result = engine.run(workflow(SUM))
    assert result.executed == ["one", "two", "sum", "out"]
    assert result.reports == {"out": {"values": [3]}}


def test_unchanged_rerun_executes_nothing_and_a_change_reruns_only_downstream(
    engine: Engine,
) -> None:
    engine.run(workflow(SUM))
    again = engine.run(workflow(SUM))
    assert again.executed == []
    assert again.cached == ["one", "two", "sum", "out"]
    assert again.reports == {"out": {"values": [3]}}
    changed = dict(SUM, two={"type": "arith.number", "inputs": {"value": 5}})
    assert engine.run(workflow(changed)).executed == ["two", "sum", "out"]


def test_editor_state_and_explicit_defaults_do_not_change_cache_keys(engine: Engine) -> None:
    engine.run(workflow(SUM))
    moved = {k: dict(v, ui={"pos": [10, 20]}, title="renamed") for k, v in SUM.items()}
    moved["sum"] = dict(moved["sum"])
    assert engine.run(workflow(moved)).executed == []
    implicit = dict(SUM, one={"type": "arith.number", "inputs": {}})
    explicit = dict(SUM, one={"type": "arith.number", "inputs": {"value": 0}})
    engine.run(workflow(implicit))
    assert engine.run(workflow(explicit)).executed == []


def test_events_in_order(engine: Engine) -> None:
    events: list[object] = []
    engine.run(workflow(SUM), on_event=events.append)
    kinds = [(type(e).__name__, e.node) for e in events]
    assert kinds[:2] == [("NodeStarted", "one"), ("NodeFinished", "one")]
    assert kinds[-1] == ("NodeFinished", "out")
    assert isinstance(events[-1], NodeFinished) and events[-1].outputs == {"values": [3]}
    events.clear()
    engine.run(workflow(SUM), on_event=events.append)
    assert [type(e) for e in events] == [NodeCached] * 4
    assert events[-1].outputs == {"values": [3]}  # cached output nodes still report their results


def test_node_failure_names_node_type_and_cause(engine: Engine) -> None:
    events: list[object] = []
    broken = {
        "n": {"type": "arith.number", "inputs": {"value": 7}},
        "boom": {"type": "arith.explode", "inputs": {"value": link("n")}},
        "out": {"type": "arith.sink", "inputs": {"value": link("boom")}},
    }
    with pytest.raises(NodeExecutionError) as error:
        engine.run(workflow(broken), on_event=events.append)
    assert (
        str(error.value)
        == 'node "boom" (Explode, arith.explode) failed: RuntimeError: cannot handle 7'
    )
    assert any(isinstance(e, NodeFailed) and e.node == "boom" for e in events)


def test_invalid_workflow_runs_nothing(engine: Engine) -> None:
    events: list[object] = []
    bad = dict(SUM, sum={"type": "arith.add", "inputs": {"a": link("one"), "b": link("missing")}})
    with pytest.raises(WorkflowInvalid) as error:
        engine.run(workflow(bad), on_event=events.append)
    assert [p.code for p in error.value.problems] == ["missing_node"]
    assert events == []


def test_cancellation_stops_a_running_node_within_one_step(engine: Engine) -> None:
    slow = {
        "count": {
            "type": "arith.count_slowly",
            "inputs": {"steps": 1000, "seconds_per_step": 0.01},
        },
        "out": {"type": "arith.sink", "inputs": {"value": link("count")}},
    }
    cancel = CancelToken()
    steps: list[int] = []

    def on_event(event: object) -> None:
        if isinstance(event, NodeProgress):
            steps.append(event.step)
            if event.step == 3:
                cancel.cancel()

    with pytest.raises(Cancelled):
        engine.run(workflow(slow), on_event=on_event, cancel=cancel)
    assert steps == [1, 2, 3]


def test_cancel_from_another_thread_between_nodes(engine: Engine) -> None:
    cancel = CancelToken()
    started: list[str] = []

    def on_event(event: object) -> None:
        if isinstance(event, NodeStarted):
            started.append(event.node)
            threading.Thread(target=cancel.cancel).start()
            threading.Event().wait(0.05)

    with pytest.raises(Cancelled):
        engine.run(workflow(SUM), on_event=on_event, cancel=cancel)
    assert started == ["one"]


def test_cache_budget_evicts_least_recently_used() -> None:
    cache = OutputCache(budget_bytes=3 * 4096)
    tensors = {name: torch.zeros(1024) for name in "abcd"}  # 4 KiB each
    for name, tensor in tensors.items():
        cache.put(name, {"t": tensor})
    assert "a" not in cache and all(k in cache for k in "bcd")
    cache.get("b")
    cache.put("e", {"t": torch.zeros(1024)})
    assert "c" not in cache and "b" in cache


def test_shared_tensors_count_once() -> None:
    cache = OutputCache(budget_bytes=10 * 4096)
    shared = torch.zeros(1024)
    cache.put("a", {"t": shared})
    cache.put("b", {"t": shared, "u": shared})
    assert cache.used_bytes == 4096
