"""Planning: only what targets need, dependencies first; cycles are found and named."""

from __future__ import annotations

from latentloom.graph.plan import find_cycle, plan
from latentloom.graph.workflow import parse_workflow


def graph(edges: dict[str, list[str]]) -> object:
    nodes = {
        node: {
            "type": "t.t",
            "inputs": {f"in{i}": {"node": up, "output": "o"} for i, up in enumerate(ups)},
        }
        for node, ups in edges.items()
    }
    return parse_workflow({"schema": "latentloom/workflow", "version": 1, "nodes": nodes})


def test_plan_orders_dependencies_first_and_skips_unneeded_nodes() -> None:
    workflow = graph({"a": [], "b": ["a"], "c": ["a", "b"], "d": ["c"], "unused": ["a"]})
    order = plan(workflow, ["d"])
    assert order == ["a", "b", "c", "d"]


def test_shared_dependencies_run_once() -> None:
    workflow = graph({"a": [], "b": ["a"], "c": ["a"], "out1": ["b"], "out2": ["c", "b"]})
    order = plan(workflow, ["out1", "out2"])
    assert sorted(order) == ["a", "b", "c", "out1", "out2"]
    assert all(
        order.index(dep) < order.index(n)
        for n, deps in {"b": ["a"], "c": ["a"], "out1": ["b"], "out2": ["c", "b"]}.items()
        for dep in deps
    )


def test_cycle_is_named() -> None:
    assert find_cycle(graph({"a": [], "b": ["a", "d"], "c": ["b"], "d": ["c"]})) == [
        "b",
        "d",
        "c",
        "b",
    ]
    assert find_cycle(graph({"a": [], "b": ["a"]})) is None


def test_deep_chain_needs_no_recursion() -> None:
    chain = {"n0": []} | {f"n{i}": [f"n{i - 1}"] for i in range(1, 5000)}
    workflow = graph(chain)
    assert find_cycle(workflow) is None
    assert plan(workflow, ["n4999"])[:3] == ["n0", "n1", "n2"]
