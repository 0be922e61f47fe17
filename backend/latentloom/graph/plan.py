"""Planning: which nodes a run needs, in what order, and where the graph loops back on itself."""

from __future__ import annotations

from collections.abc import Iterable

from latentloom.graph.workflow import Link, Workflow


def upstream_ids(workflow: Workflow, node_id: str) -> list[str]:
    """Ids of the nodes feeding this one (present in the workflow), in input order."""
    node = workflow.nodes[node_id]
    return [
        v.node for v in node.inputs.values() if isinstance(v, Link) and v.node in workflow.nodes
    ]


def find_cycle(workflow: Workflow) -> list[str] | None:
    """One cycle as a list of node ids (first == last), or None. Iterative DFS: no recursion limit."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in sorted(workflow.nodes):
        if root in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, list[str]]] = [(root, upstream_ids(workflow, root))]
        state[root] = 1
        path.append(root)
        while stack:
            node_id, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                state[node_id] = 2
                continue
            next_id = pending.pop(0)
            if state.get(next_id) == 1:
                return [*path[path.index(next_id) :], next_id]
            if next_id not in state:
                state[next_id] = 1
                path.append(next_id)
                stack.append((next_id, upstream_ids(workflow, next_id)))
    return None


def plan(workflow: Workflow, targets: Iterable[str]) -> list[str]:
    """The targets and everything they depend on, dependencies first. The graph must be acyclic."""
    order: list[str] = []
    seen: set[str] = set()
    for target in sorted(targets):
        stack: list[tuple[str, bool]] = [(target, False)]
        while stack:
            node_id, dependencies_done = stack.pop()
            if dependencies_done:
                order.append(node_id)
                continue
            if node_id in seen:
                continue
            seen.add(node_id)
            stack.append((node_id, True))
            stack.extend(
                (dep, False) for dep in reversed(upstream_ids(workflow, node_id)) if dep not in seen
            )
    return order
