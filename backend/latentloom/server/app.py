"""The FastAPI application: routes as an explicit list, guarded by the security middleware.

Layers, outermost first: security headers (headers.py), Host/Origin/token guard, body-size
limit, then the routes. The built editor is served at `/` when it exists; the API docs at
`/docs` from local files (docs.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import latentloom
from latentloom.interop.comfy import routes_http as comfy_http
from latentloom.jobs.worker_spawn import SpawnedWorker
from latentloom.server import (
    routes_catalog,
    routes_files,
    routes_jobs,
    routes_library,
    routes_plan,
    routes_settings,
    routes_workflows,
    routes_ws,
)
from latentloom.server.body_limit import BodyLimit
from latentloom.server.docs import docs_routes
from latentloom.server.headers import SecurityHeaders
from latentloom.server.login import login_routes
from latentloom.server.routes_plan import KnownKeys
from latentloom.server.security import HostOriginGuard
from latentloom.server.services import EngineUnavailable, Services
from latentloom.server.settings import ServerSettings
from latentloom.warmup import WarmupStep

ROUTERS = [
    routes_jobs.router,
    routes_jobs.queue_router,
    routes_plan.router,
    routes_catalog.router,
    routes_files.router,
    routes_library.router,  # before the workflows router: its /{name}/versions paths
    routes_settings.router,
    routes_workflows.router,
    routes_ws.router,
    comfy_http.router,  # ComfyUI's API; after ours, so ours win any clash
]
# Routes whose bodies are multipart files: the upload limit, plus room for the framing.
MULTIPART_UPLOADS = ("/api/uploads", "/upload/", "/api/upload/")
REPO_FRONTEND_DIST = Path(__file__).resolve().parents[3] / "frontend" / "dist"
# An installed package carries the built editor inside it (copied there by setup.py's build).
PACKAGED_FRONTEND_DIST = Path(__file__).resolve().parents[1] / "_editor"
EDITOR_MISSING = """<!doctype html><meta charset="utf-8"><title>Latentloom</title>
<h1>Latentloom</h1><p>The server is running, but the editor has not been built
(<code>make run</code> builds it). The API is documented at <a href="/docs">/docs</a>.</p>"""


def create_app(
    settings: ServerSettings,
    *,
    warm_up_steps: list[tuple[str, WarmupStep]] | None = None,
    early_worker: SpawnedWorker | None = None,
) -> FastAPI:
    """`warm_up_steps` replace the thread worker's engine-stack warm-up (tests gate it);
    `early_worker` is a worker child already spawned for these settings (early_worker.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.open(settings, asyncio.get_running_loop())
        services.warm_up_steps, services.early_worker = warm_up_steps, early_worker
        # Event ids (and workflow revisions) continue above every id of earlier runs.
        services.hub.begin_epoch(services.ledger.begin_event_epoch())
        app.state.services = services
        app.state.known_keys = KnownKeys()  # what POST /api/plan counts as cached
        services.warm_up_in_background()
        try:
            yield
        finally:
            await asyncio.to_thread(services.close)

    app = FastAPI(
        title="Latentloom",
        version=latentloom.__version__,
        lifespan=lifespan,
        docs_url=None,  # docs.py serves them from local files
        redoc_url=None,
    )
    for router in ROUTERS:
        app.include_router(router)
    for route in [*login_routes(), *docs_routes(app.title)]:
        app.router.routes.append(route)
    app.add_exception_handler(EngineUnavailable, _engine_unavailable)
    _mount_editor(app, settings.frontend_dist or default_frontend_dist())
    app.add_middleware(
        BodyLimit,
        default_bytes=settings.max_request_bytes,
        per_path={
            **{prefix: settings.max_upload_bytes + 64 * 1024 for prefix in MULTIPART_UPLOADS},
            "/api/workflows/import": settings.max_upload_bytes,  # the raw file
        },
    )
    app.add_middleware(
        HostOriginGuard,
        allowed_hosts=settings.hosts(),
        allowed_origins=settings.origins(),
        token=settings.token,
        cookie_name=settings.cookie_name(),
    )
    app.add_middleware(SecurityHeaders)
    return app


async def _engine_unavailable(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"the engine is not available: {error}"}, status_code=503)


def default_frontend_dist() -> Path:
    """The editor inside the installed package, else the source tree's build."""
    packaged = PACKAGED_FRONTEND_DIST / "index.html"
    return PACKAGED_FRONTEND_DIST if packaged.is_file() else REPO_FRONTEND_DIST


def _mount_editor(app: FastAPI, dist: Path) -> None:
    if (dist / "index.html").is_file():
        app.mount("/", StaticFiles(directory=dist, html=True), name="editor")
        return

    @app.get("/", include_in_schema=False)
    async def editor_missing() -> HTMLResponse:
        return HTMLResponse(EDITOR_MISSING)
