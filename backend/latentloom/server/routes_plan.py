"""`POST /api/plan`: before a queue, what each node of a workflow would do — run, come from
the cache, be skipped by a mode, or not be needed by the targets.

The outputs cache lives with the engine that runs jobs (by default in the worker child
process), so the server does not read it; it knows instead which nodes the recent jobs ran
or served from cache (the ledger's `node_states`) and computes their cache keys exactly as
the executor does (`engine/keys.py`: same registry, same model-folder fingerprints). A
node of the new workflow is "cached" when its key is among those. It is an estimate the
user sees before paying, not a promise: jobs finished before the worker last (re)started
do not count, and a cache over its byte budget may have evicted an old entry, in which
case the node runs after all. With the in-process worker the engine's own cache answers
too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from latentloom.engine.executor import Engine
from latentloom.engine.keys import node_key
from latentloom.graph.modes import apply_modes
from latentloom.graph.plan import plan
from latentloom.graph.validate import Problem
from latentloom.graph.workflow import Link, Workflow, WorkflowFormatError, parse_workflow
from latentloom.server.api_models import InvalidWorkflow
from latentloom.server.routes_jobs import StrictJsonRoute
from latentloom.server.services import Services

router = APIRouter(prefix="/api", tags=["jobs"], route_class=StrictJsonRoute)

NodePlan = Literal["run", "cached", "skipped", "unneeded"]
RECENT_JOBS = 50  # how many finished jobs' keys count as "in the cache"
KEY_MEMO = 200  # jobs whose keys are remembered (their documents never change)


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: dict[str, Any] = Field(description="A workflow document (schema latentloom/workflow)")
    targets: list[str] | None = Field(
        None, description="Plan only what these nodes need (default: every output node)"
    )


class PlanView(BaseModel):
    nodes: dict[str, NodePlan] = Field(
        description="run: will execute; cached: its outputs are in the cache; skipped: muted, "
        "bypassed or needing such a node; unneeded: no target needs it"
    )
    run: int = Field(description="How many nodes would execute")
    cached: int = Field(description="How many would come from the cache")


def workflow_keys(
    engine: Engine, workflow: Workflow, targets: Iterable[str] | None
) -> tuple[dict[str, str], set[str]]:
    """The cache key of every node the targets need (as the executor computes them), and the
    nodes modes skip. The workflow must be valid."""
    applied = apply_modes(workflow, engine.registry)
    runnable = applied.workflow
    specs = engine.registry.specs
    if targets is None:
        targets = [n for n, node in runnable.nodes.items() if specs[node.type].output_node]
    chosen = [node_id for node_id in targets if node_id in runnable.nodes]
    keys: dict[str, str] = {}
    fingerprint = engine.settings.folders.fingerprint
    for node_id in plan(runnable, chosen):
        node = runnable.nodes[node_id]
        upstream = {v.node: keys[v.node] for v in node.inputs.values() if isinstance(v, Link)}
        keys[node_id] = node_key(specs[node.type], node, upstream, fingerprint)
    return keys, {skipped.node for skipped in applied.skipped}


class KnownKeys:
    """Keys the running engine holds, as far as the ledger tells: see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memo: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._since = time.time()  # made at server start: a fresh engine and an empty cache
        self._restarts: Any = None

    def _epoch(self, state: Services) -> float:
        """Since when finished jobs count: the current worker process's start where the
        dispatcher reports one, else the server's start, moved on whenever the restart count
        of workers that report only that (a Ray pool) changes."""
        status = state.worker_status() or {}
        if "started_at" in status:
            started = status["started_at"]
            return float(started) if started is not None else time.time()
        restarts = status.get("restarts")
        with self._lock:
            if self._restarts is not None and restarts != self._restarts:
                self._since = time.time()
            self._restarts = restarts
            return self._since

    def collect(self, state: Services, engine: Engine) -> set[str]:
        since = self._epoch(state)
        records, _ = state.ledger.list(["succeeded", "failed", "cancelled"], limit=RECENT_JOBS)
        known: set[str] = set()
        for record in records:
            if record.finished_at is None or record.finished_at < since:
                continue
            known |= self._keys_of(engine, record.id, record.workflow, record.node_states)
        return known

    def _keys_of(
        self, engine: Engine, job_id: str, document: dict[str, Any], states: Mapping[str, str]
    ) -> frozenset[str]:
        with self._lock:
            if job_id in self._memo:
                self._memo.move_to_end(job_id)
                return self._memo[job_id]
        try:
            targets = (document.get("meta") or {}).get("run_targets")
            keys, _ = workflow_keys(engine, parse_workflow(document), targets)
        except (WorkflowFormatError, KeyError, ValueError):
            keys = {}  # a job the current registry cannot read: it contributes nothing
        done = frozenset(
            key for node, key in keys.items() if states.get(node) in {"cached", "finished"}
        )
        with self._lock:
            self._memo[job_id] = done
            while len(self._memo) > KEY_MEMO:
                self._memo.popitem(last=False)
        return done


def known_keys(request: Request) -> KnownKeys:
    return request.app.state.known_keys  # type: ignore[no-any-return]


def _invalid(problems: list[Problem]) -> JSONResponse:
    body = InvalidWorkflow(
        detail=f"the workflow is invalid: {len(problems)} problem(s)", problems=problems
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=422)


@router.post("/plan", response_model=PlanView, responses={422: {"model": InvalidWorkflow}})
async def plan_workflow(request: Request, body: PlanRequest) -> PlanView | JSONResponse:
    """What queueing this workflow (or running it to `targets`) would execute, without queueing."""
    state: Services = request.app.state.services
    engine = await state.wait_for_engine()
    try:
        workflow = await asyncio.to_thread(parse_workflow, body.workflow)
    except WorkflowFormatError as error:
        return _invalid([Problem(node=None, input=None, code="format", message=str(error))])
    unknown = [target for target in body.targets or [] if target not in workflow.nodes]
    if unknown:
        message = f"targets name nodes the workflow lacks: {unknown}; use ids from its nodes"
        return _invalid(
            [Problem(node=None, input="targets", code="unknown_target", message=message)]
        )
    problems = await asyncio.to_thread(engine.validate, workflow)
    if problems:
        return _invalid(problems)
    memo = known_keys(request)

    def compute() -> PlanView:
        keys, skipped = workflow_keys(engine, workflow, body.targets)
        known = memo.collect(state, engine)
        nodes: dict[str, NodePlan] = {}
        for node_id in workflow.nodes:
            if node_id in skipped:
                nodes[node_id] = "skipped"
            elif node_id not in keys:
                nodes[node_id] = "unneeded"
            else:
                key = keys[node_id]
                nodes[node_id] = "cached" if key in known or key in engine.cache else "run"
        counts = list(nodes.values())
        return PlanView(nodes=nodes, run=counts.count("run"), cached=counts.count("cached"))

    return await asyncio.to_thread(compute)
