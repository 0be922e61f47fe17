"""The interactive API docs at /docs, served entirely by this server (no CDN).

FastAPI's own /docs page loads Swagger UI from a CDN: the docs would break offline, and a
third party would serve script into a page that can drive the API with the user's cookie.
Here Swagger UI's files come from the `swagger-ui-bundle-v2` package (Swagger UI 5's own
dist build, Apache-2.0; 5 is the first major version that reads the OpenAPI 3.1 FastAPI
writes). The page starts it from a script of ours rather than an inline one, and its CSP
allows scripts, styles and connections from this server only. ReDoc has no such package,
so /redoc redirects to /docs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

DOCS_PATH: Final = "/docs"
ASSETS_PATH: Final = "/docs/assets"
# The files the page uses, and their types; nothing else of the package is served.
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
}
PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{docs}/start.js"></script>
</body></html>
"""
START_SCRIPT: Final = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis],
});
"""
MISSING_ASSETS: Final = (
    "Swagger UI's files are missing: the swagger-ui-bundle-v2 package is not installed; "
    "reinstall latentloom (pip install .) to get it. The API description is at /openapi.json."
)


def swagger_ui_folder() -> Path | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(str(swagger_ui_path))


def docs_routes(title: str) -> list[Route]:
    """/docs, its start script and assets, and /redoc (a redirect)."""
    folder = swagger_ui_folder()

    async def page(request: Request) -> Response:
        if folder is None:
            return HTMLResponse(MISSING_ASSETS, status_code=503, headers=PAGE_HEADERS)
        body = PAGE.format(title=title, assets=ASSETS_PATH, docs=DOCS_PATH)
        return HTMLResponse(body, headers=PAGE_HEADERS)

    async def start(request: Request) -> Response:
        return Response(START_SCRIPT, media_type="text/javascript; charset=utf-8")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if folder is None or name not in ASSETS:
            known = ", ".join(ASSETS)
            return JSONResponse({"detail": f"no docs asset {name!r}; there are {known}"}, 404)
        return FileResponse(
            folder / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"}
        )

    async def redoc(request: Request) -> Response:
        return RedirectResponse(DOCS_PATH, status_code=307)

    return [
        Route(DOCS_PATH, page, methods=["GET"], name="docs"),
        Route(f"{DOCS_PATH}/start.js", start, methods=["GET"], name="docs_start"),
        Route(f"{ASSETS_PATH}/{{name}}", asset, methods=["GET"], name="docs_asset"),
        Route("/redoc", redoc, methods=["GET"], name="redoc"),
    ]
