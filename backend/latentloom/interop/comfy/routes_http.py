"""ComfyUI's HTTP API on our server: queue, history, interrupt, node and model listings.

The routes are an explicit list (`ROUTES`), mounted at the root as ComfyUI serves them and
again under `/api`, as newer ComfyUI clients call them, except where that would shadow one of
our own `/api` routes (`/api/models` is ours). Everything reads and writes the same ledger and
queue as our own API: a prompt queued here is an ordinary job (our queue panel shows it, it
survives a restart), and our own jobs show up in ComfyUI's queue and history. The request
bodies are parsed as JSON whatever their Content-Type, as ComfyUI does. Files (`/view`,
`/upload/*`) are in `routes_files.py`; the websocket in `routes_ws.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

import latentloom
from latentloom.interop.comfy import routes_files
from latentloom.interop.comfy.jobs_view import history_entry, queue_item
from latentloom.interop.comfy.object_info import object_info
from latentloom.interop.comfy.submit import PromptRefused, error_body, prepare, read_request
from latentloom.jobs.ledger import JobExists, QueueFull
from latentloom.jobs.queue import JobQueue
from latentloom.jobs.records import TERMINAL, JobRecord
from latentloom.models.folders import SUBFOLDERS
from latentloom.server.offload import in_ledger_thread
from latentloom.server.services import Services

# The ComfyUI release whose API shapes these routes follow (reported by /system_stats).
COMFYUI_API_VERSION: Final = "0.3.64"
EMBEDDINGS: Final = "embeddings"
EMBEDDING_SUFFIXES: Final = (".safetensors",)
NOT_ALIASED: Final = frozenset({"/models"})  # /api/models is our own route


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def json_body(request: Request, default: Any = None) -> Any:
    """The body as JSON whatever the Content-Type; `default` when empty; 400 when not JSON."""
    body = await request.body()
    if not body.strip():
        return default
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HTTPException(400, f"the request body is not JSON: {error}") from None


def queue_remaining(state: Services) -> int:
    return state.ledger.count("queued") + state.ledger.count("running")


# --- the queue ---------------------------------------------------------------------------


async def post_prompt(request: Request) -> Response:
    """Queue a ComfyUI API prompt as an ordinary job; ComfyUI's 400 shape when invalid."""
    state = services(request)
    try:
        prompt_request = read_request(await request.body())
        engine = await state.wait_for_engine()
        prepared = await asyncio.to_thread(
            prepare, prompt_request, engine.registry, engine.validate
        )
    except PromptRefused as refused:
        return JSONResponse(refused.body, status_code=refused.status)
    extra_data = dict(prompt_request.extra_data)
    if prompt_request.client_id is not None:
        extra_data["client_id"] = prompt_request.client_id
    queue = await state.wait_for_queue()
    try:
        [record] = await in_ledger_thread(
            queue.submit,
            prepared.workflow,
            front=prompt_request.front and prompt_request.number is None,
            client_id=prompt_request.client_id,
            job_id=prompt_request.prompt_id,
            sequence=prompt_request.number,
            max_queue=state.settings.max_queue,  # checked inside the insert transaction
        )
    except JobExists as error:
        return JSONResponse(error_body("invalid_prompt", str(error)), status_code=400)
    except QueueFull as error:
        return JSONResponse(error_body("queue_full", str(error)), status_code=429)
    return JSONResponse({"prompt_id": record.id, "number": record.sequence, "node_errors": {}})


async def get_prompt(request: Request) -> dict[str, Any]:
    remaining = await in_ledger_thread(queue_remaining, services(request))
    return {"exec_info": {"queue_remaining": remaining}}


async def get_queue(request: Request) -> dict[str, Any]:
    # Reads and dumps every queued prompt: off the event loop.
    return await asyncio.to_thread(_queue_listing, services(request))


def _queue_listing(state: Services) -> dict[str, Any]:
    limit = state.settings.max_queue
    running, _ = state.ledger.list({"running"}, limit=limit, offset=0)
    pending, _ = state.ledger.list({"queued"}, limit=limit, offset=0)
    return {
        "queue_running": [queue_item(record) for record in running],
        "queue_pending": [queue_item(record) for record in pending],
    }


async def post_queue(request: Request) -> Response:
    """`{"clear": true}` cancels every queued job; `{"delete": [ids]}` those queued jobs."""
    state = services(request)
    body = await json_body(request, {})
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object with 'clear' or 'delete'")
    queue = await state.wait_for_queue()
    await in_ledger_thread(
        _delete_queued, state, queue, bool(body.get("clear")), _ids(body.get("delete"))
    )
    return Response(status_code=200)


def _delete_queued(state: Services, queue: JobQueue, clear: bool, ids: list[str]) -> None:
    targets: list[str] = []
    if clear:
        queued, _ = state.ledger.summaries({"queued"}, limit=state.settings.max_queue, offset=0)
        targets.extend(record.id for record in queued)
    targets.extend(ids)
    for job_id in targets:
        record = state.ledger.get_summary(job_id)
        if record is not None and record.status == "queued":  # ComfyUI deletes pending only
            queue.cancel(job_id)


def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HTTPException(400, "'delete' must be a list of prompt ids")
    return value


async def post_interrupt(request: Request) -> Response:
    """Interrupt the running job, or only `{"prompt_id"}` when it is the one running."""
    state = services(request)
    body = await json_body(request, {})
    wanted = body.get("prompt_id") if isinstance(body, dict) else None
    queue = await state.wait_for_queue()
    running, _ = await in_ledger_thread(state.ledger.summaries, {"running"}, 100, 0)
    for record in running:
        if wanted is None or record.id == wanted:
            await in_ledger_thread(queue.cancel, record.id)
    return Response(status_code=200)


# --- history -----------------------------------------------------------------------------


async def get_history(request: Request) -> dict[str, Any]:
    """Ended jobs, oldest first as ComfyUI lists them; `max_items` keeps the newest ones."""
    state = services(request)
    limit = _int_query(request, "max_items", state.settings.history_limit)
    offset = _int_query(request, "offset", 0)
    return await asyncio.to_thread(_history_listing, state, max(limit, 1), offset)


def _history_listing(state: Services, limit: int, offset: int) -> dict[str, Any]:
    """Reads every listed job's document: off the event loop."""
    records, _ = state.ledger.list({str(status) for status in TERMINAL}, limit, offset)
    return {r.id: history_entry(r) for r in reversed(records) if _in_history(r)}


def _in_history(record: JobRecord) -> bool:
    """Ended, and ran at all: ComfyUI forgets a prompt deleted from its queue before it ran."""
    return record.status in TERMINAL and record.started_at is not None


def _int_query(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise HTTPException(400, f"{name} must be a whole number, got {value!r}")
    return int(value)


async def get_history_item(request: Request) -> dict[str, Any]:
    prompt_id = request.path_params["prompt_id"]
    record = await in_ledger_thread(services(request).ledger.get, prompt_id)
    if record is None or not _in_history(record):
        return {}  # ComfyUI answers {} until the prompt has ended
    return {record.id: history_entry(record)}


async def post_history(request: Request) -> Response:
    """`{"clear": true}` forgets every ended job, `{"delete": [ids]}` those; files stay."""
    state = services(request)
    body = await json_body(request, {})
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object with 'clear' or 'delete'")
    if body.get("clear"):
        await in_ledger_thread(state.ledger.prune, 0)
    await in_ledger_thread(state.ledger.forget, _ids(body.get("delete")))
    return Response(status_code=200)


# --- what the server offers --------------------------------------------------------------


async def get_object_info(request: Request) -> dict[str, Any]:
    engine = await services(request).wait_for_engine()
    return await asyncio.to_thread(object_info, engine.registry, engine.list_choices)


async def get_object_info_class(request: Request) -> dict[str, Any]:
    engine = await services(request).wait_for_engine()
    only = request.path_params["node_class"]
    return await asyncio.to_thread(object_info, engine.registry, engine.list_choices, only)


def _model_roots(state: Services) -> list[Path]:
    engine = state.engine
    return list(engine.settings.folders.models.roots) if engine is not None else []


def list_embeddings(roots: list[Path]) -> list[str]:
    """Names (without suffix) of the safetensors files under each root's `embeddings/`."""
    names: set[str] = set()
    for root in roots:
        folder = root / EMBEDDINGS
        if not folder.is_dir():
            continue
        for directory, _, files in os.walk(folder):
            for name in files:
                path = Path(directory, name)
                if path.suffix.lower() in EMBEDDING_SUFFIXES:
                    names.add(path.relative_to(folder).with_suffix("").as_posix())
    return sorted(names)


async def get_embeddings(request: Request) -> list[str]:
    state = services(request)
    await state.wait_for_engine()
    return await asyncio.to_thread(list_embeddings, _model_roots(state))


async def get_model_folders(request: Request) -> list[str]:
    return list(dict.fromkeys([*SUBFOLDERS, EMBEDDINGS]))  # embeddings is a model kind too


async def get_models(request: Request) -> list[str]:
    state = services(request)
    engine = await state.wait_for_engine()
    folder = request.path_params["folder"]
    if folder == EMBEDDINGS:
        return await asyncio.to_thread(list_embeddings, _model_roots(state))
    if folder not in SUBFOLDERS:
        known = ", ".join(dict.fromkeys([*SUBFOLDERS, EMBEDDINGS]))
        raise HTTPException(404, f"no model folder {folder!r}; the folders are: {known}")
    return await asyncio.to_thread(engine.list_choices, folder)


async def get_system_stats(request: Request) -> dict[str, Any]:
    from latentloom.server.routes_catalog import _memory

    state = services(request)
    engine = await state.wait_for_engine()
    import torch

    memory = _memory()
    device = engine.settings.device
    vram_total = vram_free = 0
    if device.type == "cuda":
        vram_free, vram_total = torch.cuda.mem_get_info(device)
    return {
        "system": {
            "os": os.name,
            "ram_total": memory.get("total_bytes", 0),
            "ram_free": memory.get("available_bytes", 0),
            "comfyui_version": COMFYUI_API_VERSION,
            "latentloom_version": latentloom.__version__,
            "python_version": sys.version,
            "pytorch_version": torch.__version__,
            "embedded_python": False,
            "argv": [],
            "platform": platform.platform(),
        },
        "devices": [
            {
                "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "type": device.type,
                "index": device.index,
                "vram_total": vram_total,
                "vram_free": vram_free,
                "torch_vram_total": vram_total,
                "torch_vram_free": vram_free,
            }
        ],
    }


Handler = Callable[..., Any]
ROUTES: Final[list[tuple[str, str, Handler]]] = [
    ("POST", "/prompt", post_prompt),
    ("GET", "/prompt", get_prompt),
    ("GET", "/queue", get_queue),
    ("POST", "/queue", post_queue),
    ("POST", "/interrupt", post_interrupt),
    ("GET", "/history", get_history),
    ("GET", "/history/{prompt_id}", get_history_item),
    ("POST", "/history", post_history),
    ("GET", "/object_info", get_object_info),
    ("GET", "/object_info/{node_class}", get_object_info_class),
    ("GET", "/embeddings", get_embeddings),
    ("GET", "/models", get_model_folders),
    ("GET", "/models/{folder}", get_models),
    ("GET", "/system_stats", get_system_stats),
    *routes_files.ROUTES,
]


def make_router() -> APIRouter:
    """Every route at the root, and under `/api` where that shadows nothing of ours."""
    router = APIRouter(tags=["comfyui"])
    for prefix in ("", "/api"):
        for method, path, handler in ROUTES:
            if prefix and path in NOT_ALIASED:
                continue
            router.add_api_route(
                prefix + path,
                handler,
                methods=[method],
                response_model=None,
                include_in_schema=not prefix,
                name=f"comfyui{prefix.replace('/', '_')}_{handler.__name__}",
            )
    return router


router = make_router()
