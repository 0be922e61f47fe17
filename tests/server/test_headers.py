"""Security headers and the local API docs, on the real app over a real uvicorn socket."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.datastructures import MutableHeaders

from latentloom.server.docs import swagger_ui_folder
from latentloom.server.headers import add_security_headers
from tests.server.api_server import running_server
from tests.server.test_uploads import encoded

EDITOR_HTML = "<!doctype html><title>editor</title><p>the editor"


@dataclass
class App:
    url: str
    data: Path


@pytest.fixture(scope="module")
def app(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    root = tmp_path_factory.mktemp("headers")
    dist = root / "dist"
    dist.mkdir()
    (dist / "index.html").write_text(EDITOR_HTML)
    (dist / "app.js").write_text("console.log('editor')")
    data = root / "data"
    (data / "output" / "sub").mkdir(parents=True)
    (data / "output" / "sub" / "made.png").write_bytes(encoded("PNG"))
    with running_server(models_dir, data, frontend_dist=dist) as url:
        yield App(url, data)


def assert_not_frameable(response: httpx.Response) -> None:
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/index.html", "/docs", "/login"])
def test_every_html_page_refuses_to_be_framed(app: App, path: str) -> None:
    response = httpx.get(app.url + path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_not_frameable(response)


def test_the_editor_page_keeps_its_content_and_gets_only_frame_ancestors(app: App) -> None:
    response = httpx.get(app.url + "/")
    assert response.text == EDITOR_HTML
    # The editor's own scripts are not restricted by us: only framing is.
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    script = httpx.get(app.url + "/app.js")
    assert script.headers["x-frame-options"] == "DENY"
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in script.headers


def test_redoc_leads_to_the_local_docs(app: App) -> None:
    response = httpx.get(app.url + "/redoc")
    assert response.status_code == 307
    assert response.headers["location"] == "/docs"
    assert response.headers["x-frame-options"] == "DENY"


def test_outputs_and_uploads_are_same_origin_resources(app: App) -> None:
    output = httpx.get(app.url + "/api/outputs/sub/made.png")
    assert output.status_code == 200 and output.headers["content-type"] == "image/png"
    preview = httpx.get(app.url + "/api/outputs/sub/made.png", params={"preview": "webp"})
    view = httpx.get(
        app.url + "/view", params={"filename": "made.png", "subfolder": "sub", "type": "output"}
    )
    api_view = httpx.get(
        app.url + "/api/view",
        params={"filename": "made.png", "subfolder": "sub", "type": "output"},
    )
    upload = httpx.post(app.url + "/api/uploads", files={"file": ("in.png", encoded("PNG"))})
    comfy_upload = httpx.post(app.url + "/upload/image", files={"image": ("c.png", encoded("PNG"))})
    uploaded = httpx.get(app.url + "/view", params={"filename": "in.png", "type": "input"})
    missing = httpx.get(app.url + "/api/outputs/nothing.png")
    for response in (output, preview, view, api_view, upload, comfy_upload, uploaded, missing):
        assert response.headers["cross-origin-resource-policy"] == "same-origin", response.url
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert response.headers["x-frame-options"] == "DENY", response.url
    assert [r.status_code for r in (view, api_view, upload, comfy_upload, uploaded, missing)] == [
        200,
        200,
        201,
        200,
        200,
        404,
    ]
    # The route's own CSP for files stays, with frame-ancestors added.
    assert output.headers["content-security-policy"] == (
        "default-src 'none'; img-src 'self'; sandbox; frame-ancestors 'none'"
    )


def test_refusals_by_the_guard_carry_the_headers_too(app: App) -> None:
    port = app.url.rsplit(":", 1)[1]
    refused = httpx.get(app.url + "/api/system", headers={"Host": f"evil.example:{port}"})
    assert refused.status_code == 421
    assert refused.headers["x-frame-options"] == "DENY"
    assert refused.headers["cross-origin-resource-policy"] == "same-origin"
    assert refused.headers.get_list("x-content-type-options") == ["nosniff"]  # not twice


def test_docs_reference_no_other_host(app: App) -> None:
    page = httpx.get(app.url + "/docs")
    references = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert sorted(references) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/start.js",
    ]
    assert "//" not in page.text.replace("<!doctype html>", "")
    assert "<script>" not in page.text  # no inline script: the CSP allows none
    policy = page.headers["content-security-policy"]
    assert policy.startswith("default-src 'self';") and "frame-ancestors 'none'" in policy
    kinds = {}
    for reference in references:
        response = httpx.get(app.url + reference)
        assert response.status_code == 200, reference
        kinds[reference.rsplit(".", 1)[1]] = response.headers["content-type"]
        assert response.headers["cross-origin-resource-policy"] == "same-origin"
    assert kinds == {
        "png": "image/png",
        "js": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8",
    }
    assert "SwaggerUIBundle" in httpx.get(app.url + "/docs/assets/swagger-ui-bundle.js").text
    start = httpx.get(app.url + "/docs/start.js").text
    assert 'url: "/openapi.json"' in start
    assert httpx.get(app.url + "/openapi.json").json()["info"]["title"] == "Latentloom"


def test_the_docs_use_a_swagger_ui_that_reads_openapi_3_1(app: App) -> None:
    openapi = httpx.get(app.url + "/openapi.json").json()["openapi"]
    folder = swagger_ui_folder()
    assert folder is not None, "swagger-ui-bundle-v2 is a dependency"
    major = int(folder.name.removeprefix("swagger-ui-").split(".")[0])
    # Swagger UI 4 shows "Unable to render this definition" for a 3.1 document.
    assert openapi.startswith("3.1") and major >= 5


def test_only_the_docs_own_assets_are_served(app: App) -> None:
    for name in ("index.j2", "swagger-ui.js.map", "..%2f__init__.py", "oauth2-redirect.html"):
        response = httpx.get(app.url + f"/docs/assets/{name}")
        assert response.status_code == 404, name
    assert httpx.get(app.url + "/docs/assets/index.j2").json() == {
        "detail": "no docs asset 'index.j2'; there are swagger-ui-bundle.js, swagger-ui.css, "
        "favicon-32x32.png"
    }


def test_a_route_may_set_its_own_frame_policy() -> None:
    headers = MutableHeaders(
        raw=[
            (b"content-type", b"text/html"),
            (b"content-security-policy", b"default-src 'self'; frame-ancestors 'self';"),
            (b"x-frame-options", b"SAMEORIGIN"),
        ]
    )
    add_security_headers(headers)
    assert headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'self';"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["cross-origin-resource-policy"] == "same-origin"
