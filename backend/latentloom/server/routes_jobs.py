"""Jobs: queue workflows, list and inspect them, cancel, retry and reorder.

JSON bodies here are read by `StrictJsonRoute`, off the event loop and under the document
bounds (no NaN or Infinity, bounded depth): a hostile body is a 422 naming the bound, before
FastAPI's own reader (which accepts NaN) or its error echo (which cannot write it) sees it.

Nothing here blocks the event loop: ledger calls run on the ledger pool (`offload.py`),
parsing, validation and dumping on the default pool. `GET /api/jobs` reads job summaries
(title and document hash are columns), never a stored document; `GET /api/jobs/{id}`, the
one route that returns a document, dumps it in a worker thread. The queue-full check is
made by the ledger inside the insert transaction, for new jobs and retries alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from latentloom.graph.document_bounds import DocumentBoundsError, dump_json, load_json
from latentloom.graph.subgraphs import flatten
from latentloom.graph.validate import Problem
from latentloom.graph.workflow import Workflow, WorkflowFormatError, parse_workflow
from latentloom.jobs.ledger import QueueFull
from latentloom.jobs.queue import JobQueue
from latentloom.jobs.records import JobRecord
from latentloom.server.api_models import (
    Detail,
    HistoryPrune,
    InvalidWorkflow,
    JobList,
    JobRequest,
    JobsCreated,
    JobStatusName,
    JobView,
    PriorityChange,
    job_view,
)
from latentloom.server.offload import in_heavy_thread, in_ledger_thread
from latentloom.server.services import Services


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is parsed under the document bounds, in a worker thread."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            body = await request.body()
            if body and "json" in request.headers.get("content-type", "json"):
                try:
                    parsed = await in_heavy_thread(load_json, body)
                except DocumentBoundsError as error:
                    return JSONResponse({"detail": f"the request body: {error}"}, 422)
                request._json = parsed  # Starlette's cache: FastAPI reads this, not the bytes
            return await handler(request)

        return strict


router = APIRouter(prefix="/api/jobs", tags=["jobs"], route_class=StrictJsonRoute)
TERMINAL = {"succeeded", "failed", "cancelled"}
RUN_TARGETS = "run_targets"  # jobs/run_job.py reads it
WAIT_LIMIT_SECONDS = 3600.0


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def _not_found(job_id: str) -> HTTPException:
    return HTTPException(404, f"no job with id {job_id!r}")


@router.post(
    "",
    status_code=201,
    response_model=JobsCreated,
    responses={422: {"model": InvalidWorkflow}, 429: {"model": Detail}},
)
async def queue_jobs(
    request: Request, body: JobRequest, wait: bool = False
) -> JobsCreated | JSONResponse:
    """Validate and queue a workflow; nothing is queued if anything is wrong with it.

    With `wait=true` the response comes when every queued job has ended.
    """
    state = services(request)
    engine = await state.wait_for_engine()
    try:
        workflow = await in_heavy_thread(parse_workflow, body.workflow)
    except WorkflowFormatError as error:
        problems = [Problem(node=None, input=None, code="format", message=str(error))]
        return _invalid(problems)
    problems = await in_heavy_thread(engine.validate, workflow)
    # Inner nodes of subgraphs run (and are targeted) by their flattened ids ("render:sampler").
    known = set(workflow.nodes) | (set(flatten(workflow).nodes) if workflow.subgraphs else set())
    unknown = [target for target in body.targets or [] if target not in known]
    if unknown:
        message = f"targets name nodes the workflow lacks: {unknown}; use ids from its nodes"
        problems.append(Problem(node=None, input="targets", code="unknown_target", message=message))
    if problems:
        return _invalid(problems)
    settings = state.settings
    if body.runs > settings.max_runs_per_request:
        raise HTTPException(
            422,
            f"runs={body.runs} is more than the {settings.max_runs_per_request} allowed per request",
        )
    queue = await state.wait_for_queue()
    document, text = await in_heavy_thread(_dumped, workflow, body.targets)
    try:
        records = await in_ledger_thread(_submit, queue, document, text, body, settings.max_queue)
    except QueueFull as error:
        raise HTTPException(429, str(error)) from None
    views = [job_view(record) for record in records]
    if wait:
        await _wait_until_ended(state, [record.id for record in records])
        ended = await in_ledger_thread(_summaries, state, [record.id for record in records])
        views = [job_view(record) for record in ended]
    return JobsCreated(jobs=views)


def _dumped(workflow: Workflow, targets: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """The stored document; run-to-here targets travel in `meta.run_targets` (set only here:
    a document that brings its own is not trusted), which the worker hands the executor."""
    document = workflow.to_json()
    meta = document.get("meta") or {}
    meta.pop(RUN_TARGETS, None)
    if targets is not None:
        meta[RUN_TARGETS] = list(targets)
    if meta or "meta" in document:
        document["meta"] = meta
    return document, dump_json(document)


def _submit(
    queue: JobQueue, document: dict[str, Any], text: str, body: JobRequest, limit: int
) -> list[JobRecord]:
    return queue.submit(
        document,
        document_text=text,
        runs=body.runs,
        priority=body.priority,
        front=body.front,
        client_id=body.client_id,
        max_queue=limit,
    )


def _summaries(state: Services, job_ids: list[str]) -> list[Any]:
    return [summary for job_id in job_ids if (summary := state.ledger.get_summary(job_id))]


def _invalid(problems: list[Problem]) -> JSONResponse:
    body = InvalidWorkflow(
        detail=f"the workflow is invalid: {len(problems)} problem(s)", problems=problems
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=422)


async def _wait_until_ended(state: Services, job_ids: list[str]) -> None:
    waiters = [state.hub.end_waiter(job_id) for job_id in job_ids]  # registered before checking
    for job_id, waiter in zip(job_ids, waiters, strict=True):
        record = await in_ledger_thread(state.ledger.get_summary, job_id)
        if record is not None and str(record.status) in TERMINAL:
            continue
        await asyncio.wait_for(waiter.wait(), WAIT_LIMIT_SECONDS)


@router.get("", response_model=JobList)
async def list_jobs(
    request: Request,
    status: Annotated[list[JobStatusName] | None, Query(description="Filter; repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The queue (in run order) and the history (newest first); no workflow documents."""
    state = services(request)
    chosen = set(status) if status else None
    body = await state.job_pages.page(state.ledger, chosen, limit, offset)
    return Response(body, media_type="application/json")


@router.get("/{job_id}", response_model=JobView, responses={404: {"model": Detail}})
async def get_job(request: Request, job_id: str) -> Response:
    """One job with its workflow document."""
    record = await in_ledger_thread(services(request).ledger.get, job_id)
    if record is None:
        raise _not_found(job_id)
    return await asyncio.to_thread(_job_response, record)


def _job_response(record: JobRecord) -> Response:
    return JSONResponse(job_view(record, with_workflow=True).model_dump(mode="json"))


@router.delete(
    "/{job_id}", response_model=JobView, responses={404: {"model": Detail}, 409: {"model": Detail}}
)
async def cancel_job(request: Request, job_id: str) -> JobView:
    """Cancel a queued job, or interrupt a running one (it stops within one sampler step)."""
    state = services(request)
    record = await in_ledger_thread(state.ledger.get_summary, job_id)
    if record is None:
        raise _not_found(job_id)
    queue = await state.wait_for_queue()
    cancelled = await in_ledger_thread(queue.cancel, job_id)
    if cancelled is None:
        raise HTTPException(
            409, f"job {job_id} has already ended ({record.status}); nothing to cancel"
        )
    return job_view(cancelled)


@router.post(
    "/{job_id}/retry",
    status_code=201,
    response_model=JobView,
    responses={404: {"model": Detail}, 409: {"model": Detail}, 429: {"model": Detail}},
)
async def retry_job(request: Request, job_id: str) -> JobView:
    """Queue a new job with the same workflow and priority as an ended one."""
    state = services(request)
    record = await in_ledger_thread(state.ledger.get_summary, job_id)
    if record is None:
        raise _not_found(job_id)
    if str(record.status) not in TERMINAL:
        raise HTTPException(409, f"job {job_id} is {record.status}; only ended jobs can be retried")
    queue = await state.wait_for_queue()
    try:
        retried = await in_ledger_thread(queue.retry, job_id, max_queue=state.settings.max_queue)
    except QueueFull as error:
        raise HTTPException(429, str(error)) from None
    return job_view(retried)


@router.patch(
    "/{job_id}", response_model=JobView, responses={404: {"model": Detail}, 409: {"model": Detail}}
)
async def reorder_job(request: Request, job_id: str, body: PriorityChange) -> JobView:
    """Change a queued job's priority (the editor's queue panel reorders with this)."""
    ledger = services(request).ledger
    if await in_ledger_thread(ledger.get_summary, job_id) is None:
        raise _not_found(job_id)
    record = await in_ledger_thread(ledger.set_priority, job_id, body.priority)
    if record is None:
        raise HTTPException(409, f"job {job_id} is no longer queued; its priority cannot change")
    return job_view(record)


queue_router = APIRouter(prefix="/api", tags=["jobs"], route_class=StrictJsonRoute)


@queue_router.post("/queue/clear")
async def clear_queue(request: Request) -> dict[str, int]:
    """Cancel every queued job (a running job keeps running: DELETE it to interrupt)."""
    state = services(request)
    queue = await state.wait_for_queue()
    return {"cancelled": await in_ledger_thread(_cancel_queued, queue, state.settings.max_queue)}


def _cancel_queued(queue: JobQueue, limit: int) -> int:
    queued, _ = queue.ledger.summaries({"queued"}, limit=limit, offset=0)
    return sum(queue.cancel(record.id) is not None for record in queued)


@queue_router.post("/history/prune")
async def prune_history(request: Request, body: HistoryPrune) -> dict[str, int]:
    """Forget ended jobs beyond the newest `keep` (their output files stay on disk)."""
    return {"removed": await in_ledger_thread(services(request).ledger.prune, body.keep)}
