"""What the editor's library panels list: model files with size and family, and the kept
versions of a saved workflow with a restore.

`GET /api/library/models` walks the same folders as the loaders' choices and, for each
single-file checkpoint, reads only the safetensors header (never the weights) to name its
family (SD 1.x, SD 2.x, SDXL, SD 3, FLUX); results are cached by path, size and mtime, so
a second listing reads nothing. A file whose layout no rule knows has family null and the
reason. `GET /api/workflows/{name}/versions` lists `.history/` (newest first);
`POST .../versions/{version}/restore` makes a version current through the same path as an
explicit save (kept in history, sent to every tab editing it live).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, HTTPException, Request

from latentloom.graph.workflow import WorkflowFormatError
from latentloom.server.paths import PathRefused
from latentloom.server.routes_jobs import StrictJsonRoute
from latentloom.server.services import Services
from latentloom.server.workflow_store import DELETED_TAG, SAVED_TAG, SUFFIX, WorkflowExists

router = APIRouter(tags=["library"])
# The folders the models panel shows, in the order it shows them.
MODEL_FOLDERS: Final = (
    "checkpoints",
    "unet",
    "vae",
    "loras",
    "clip",
    "controlnet",
    "upscale_models",
    "embeddings",
    "clip_vision",
    "ipadapter",
)
_FAMILY_CACHE: dict[tuple[str, int, int], tuple[str | None, str | None]] = {}


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def checkpoint_family(path: Path) -> tuple[str | None, str | None]:
    """(family name, None) or (None, why not), from the file's header keys only."""
    if path.is_dir():
        return None, "a diffusers folder: its family shows when it loads"
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _FAMILY_CACHE:
        return _FAMILY_CACHE[key]
    from latentloom.models.detect import detect_family
    from latentloom.models.errors import CheckpointError
    from latentloom.models.flux_model import is_flux_file
    from latentloom.models.safetensors_file import SafetensorsFile
    from latentloom.models.sd3_keys import is_sd3

    try:
        with SafetensorsFile(path) as file:
            keys = list(file.keys())
        if is_sd3(keys):
            answer: tuple[str | None, str | None] = ("sd3", None)
        elif is_flux_file(keys):
            answer = ("flux", None)
        else:
            answer = (detect_family(keys, path).name, None)
    except CheckpointError as error:
        answer = (None, str(error))
    _FAMILY_CACHE[key] = answer
    return answer


def list_models(folders: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for kind in MODEL_FOLDERS:
        for name in folders.list(kind):
            path = folders.models.resolve(kind, name)
            size = path.stat().st_size if path.is_file() else _folder_size(path)
            entry: dict[str, Any] = {"folder": kind, "name": name, "size": size, "family": None}
            if kind == "checkpoints":
                entry["family"], reason = checkpoint_family(path)
                if reason is not None:
                    entry["family_unknown"] = reason
            entries.append(entry)
    return entries


def _folder_size(folder: Path) -> int:
    return sum(item.stat().st_size for item in folder.rglob("*") if item.is_file())


@router.get("/api/library/models")
async def models(request: Request) -> dict[str, Any]:
    """Every model file by folder: name, size in bytes, and a checkpoint's family."""
    engine = await services(request).wait_for_engine()
    return {"models": await asyncio.to_thread(list_models, engine.settings.folders)}


def _version_json(path: Path) -> dict[str, Any]:
    stem = path.name.removesuffix(SUFFIX)
    kind = (
        "saved" if stem.endswith(SAVED_TAG) else "deleted" if stem.endswith(DELETED_TAG) else "edit"
    )
    moment, _, rest = path.name.partition(".")
    when = datetime.strptime(moment, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    seconds = when.timestamp() + int(rest[:9]) / 1e9
    return {
        "version": path.name,
        "kind": kind,
        "saved_at": datetime.fromtimestamp(seconds, UTC).isoformat(),
        "size": path.stat().st_size,
    }


def _versions(request: Request, name: str) -> list[Path]:
    try:
        return services(request).workflows.history(name)
    except PathRefused as error:
        raise HTTPException(422, str(error)) from None


@router.get("/api/workflows/{name}/versions")
async def versions(request: Request, name: str) -> dict[str, Any]:
    """Kept versions of a saved workflow, newest first."""
    paths = await asyncio.to_thread(_versions, request, name)
    return {"name": name, "versions": [_version_json(path) for path in reversed(paths)]}


@router.post("/api/workflows/{name}/versions/{version}/restore")
async def restore(request: Request, name: str, version: str) -> dict[str, Any]:
    """Make a kept version the current document (the one it replaces is kept too)."""
    paths = {path.name: path for path in await asyncio.to_thread(_versions, request, name)}
    path = paths.get(version)
    if path is None:
        raise HTTPException(
            404, f"workflow {name!r} has no kept version {version!r} (it has {len(paths)})"
        )
    document = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    try:
        info, revision = await services(request).workflow_sync.replace(name, document)
    except (PathRefused, WorkflowFormatError, WorkflowExists) as error:
        raise HTTPException(422, str(error)) from None
    return {"name": info.name, "restored": version, "revision": revision}


# ---- node packs and components ------------------------------------------------------------

COMPONENT_SCHEMA: Final = "latentloom/component"
_COMPONENT_SLOT: Final = "component"


@router.get("/api/library/packs")
async def packs(request: Request) -> dict[str, Any]:
    """Which pack registered each node type (the node library groups by it)."""
    engine = await services(request).wait_for_engine()
    return {"packs": dict(sorted(engine.registry.pack_of.items()))}


def _components_dir(request: Request) -> Path:
    return Path(services(request).settings.data) / "components"


def _component_path(request: Request, name: str) -> Path:
    from latentloom.server.paths import confined
    from latentloom.server.workflow_store import workflow_name

    try:
        return confined(_components_dir(request), workflow_name(name) + SUFFIX)
    except PathRefused as error:
        raise HTTPException(422, str(error)) from None


def check_component(body: Any) -> str | None:
    """Why `body` is not a component file, or None. A component is one subgraph definition
    plus the definitions its nodes use; it is checked as a workflow holding one instance."""
    from latentloom.graph.workflow import parse_workflow

    if not isinstance(body, dict) or body.get("schema") != COMPONENT_SCHEMA:
        return f'a component is {{"schema": "{COMPONENT_SCHEMA}", "definition", "subgraphs"?}}'
    nested = body.get("subgraphs", {})
    if not isinstance(nested, dict) or _COMPONENT_SLOT in nested:
        return f'"subgraphs" is an object of definitions by id, without the id {_COMPONENT_SLOT!r}'
    document = {
        "schema": "latentloom/workflow",
        "version": 3,
        "nodes": {"c": {"type": f"subgraph:{_COMPONENT_SLOT}", "inputs": {}}},
        "subgraphs": {**nested, _COMPONENT_SLOT: body.get("definition")},
    }
    try:
        parse_workflow(document)
    except WorkflowFormatError as error:
        return str(error)
    return None


def _component_summary(name: str, body: dict[str, Any]) -> dict[str, Any]:
    definition = body["definition"]
    return {
        "name": name,
        "title": definition.get("name", name),
        "description": definition.get("description"),
        "revision": definition.get("revision", 1),
        "inputs": [item["name"] for item in definition.get("inputs", [])],
        "outputs": [item["name"] for item in definition.get("outputs", [])],
        "nodes": len(definition.get("nodes", {})),
    }


def _list_components(folder: Path) -> list[dict[str, Any]]:
    summaries = []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if check_component(body) is None:
            summaries.append(_component_summary(path.name.removesuffix(SUFFIX), body))
    return summaries


@router.get("/api/library/components")
async def components(request: Request) -> dict[str, Any]:
    """Saved subgraphs (reusable across workflows), as the node library lists them."""
    return {"components": await asyncio.to_thread(_list_components, _components_dir(request))}


@router.get("/api/library/components/{name}")
async def get_component(request: Request, name: str) -> dict[str, Any]:
    path = _component_path(request, name)
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except FileNotFoundError:
        raise HTTPException(404, f"no component named {name!r}") from None
    body: dict[str, Any] = json.loads(text)
    return body


async def put_component(request: Request, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Save (or replace with a newer revision) a component."""
    problem = await asyncio.to_thread(check_component, body)
    if problem is not None:
        raise HTTPException(422, problem)
    path = _component_path(request, name)
    await asyncio.to_thread(_write_json, path, body)
    return _component_summary(name, body)


def _write_json(path: Path, body: dict[str, Any]) -> None:
    from latentloom.server.routes_settings import write_settings

    write_settings(path, body)  # the same atomic write


# Its JSON body is parsed under the document bounds, like a workflow's.
router.add_api_route(
    "/api/library/components/{name}",
    put_component,
    methods=["PUT"],
    route_class_override=StrictJsonRoute,
)
