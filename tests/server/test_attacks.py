"""The attack suite against the real server: each attempt is refused with the right status and
a clear message, and the server keeps serving (a normal job still runs at the end)."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from latentloom.server.settings import ServerSettings
from tests.server.api_server import running_server
from tests.server.test_uploads import png_header_only
from tests.support import load_example


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def server(
    models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("attacks")
    models = root / "models"
    shutil.copytree(models_dir, models)
    with (models / "checkpoints" / "evil.ckpt").open("wb") as file:
        pickle.dump(_Exploit(root / "pwned"), file)
    data = root / "data"
    with running_server(
        models, data, max_upload_bytes=200_000, max_image_pixels=4096 * 4096
    ) as base_url:
        yield base_url, data


def raw_get(
    base_url: str, raw_path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """A GET with the path sent byte for byte (httpx would normalise dot segments)."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", raw_path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, {"raw": body[:200]}


def still_serving(base_url: str) -> None:
    assert httpx.get(f"{base_url}/api/system").status_code == 200


def job(base_url: str, workflow: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/jobs", json={"workflow": workflow}, headers=headers, timeout=120
    )


def test_foreign_and_null_origins_and_rebinding_hosts_are_refused(server: tuple[str, Path]) -> None:
    base_url, _ = server
    workflow = load_example("txt2img.json").to_json()
    foreign = job(base_url, workflow, Origin="https://evil.example")
    assert (
        foreign.status_code == 403
        and "Origin 'https://evil.example' may not use this server" in foreign.json()["detail"]
    )
    assert job(base_url, workflow, Origin="null").status_code == 403
    port = base_url.rsplit(":", 1)[1]
    status, body = raw_get(base_url, "/api/jobs", {"Host": f"evil.example:{port}"})
    assert status == 421 and "DNS rebinding" in body["detail"]
    assert httpx.get(f"{base_url}/api/jobs").json()["total"] == 0  # nothing was queued
    still_serving(base_url)


def test_websocket_from_a_foreign_origin_is_refused(server: tuple[str, Path]) -> None:
    base_url, _ = server
    url = "ws://" + base_url.removeprefix("http://") + "/ws"

    async def connect(origin: str) -> int:
        try:
            async with websockets.connect(url, origin=origin):  # type: ignore[arg-type]
                return 101
        except InvalidStatus as refusal:
            return refusal.response.status_code

    assert asyncio.run(connect("https://evil.example")) == 403
    assert asyncio.run(connect("null")) == 403
    assert asyncio.run(connect(base_url)) == 101
    still_serving(base_url)


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/outputs/../ledger.sqlite3",
        "/api/outputs/%2e%2e/ledger.sqlite3",
        "/api/outputs/..%2fledger.sqlite3",
        "/api/outputs/%2e%2e%2f%2e%2e%2fetc/passwd",
        "/api/outputs//etc/passwd",
        "/api/outputs/..%5cledger.sqlite3",
        "/api/outputs/link-out.png",
        "/api/workflows/..%2f..%2fledger",
        "/api/workflows/%2e%2e",
    ],
)
def test_path_traversal_is_refused(server: tuple[str, Path], raw_path: str) -> None:
    base_url, data = server
    outside = data.parent / "secret.png"
    outside.write_bytes(b"\x89PNG\r\n\x1a\n secret")
    link = data / "output" / "link-out.png"
    if not link.is_symlink():
        link.symlink_to(outside)
    status, body = raw_get(base_url, raw_path)
    assert status in (404, 422), (status, body)
    assert b"secret" not in json.dumps(body).encode() and "SQLite" not in json.dumps(body)
    still_serving(base_url)


def upload(base_url: str, name: str, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/uploads", files={"file": (name, io.BytesIO(data))}, timeout=30
    )


def test_bad_uploads_are_refused(server: tuple[str, Path]) -> None:
    base_url, data = server
    assert upload(base_url, "big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000).status_code == 413
    bomb = upload(base_url, "bomb.png", png_header_only(100_000, 100_000))
    assert bomb.status_code == 422 and "pixels" in bomb.json()["detail"]
    assert (
        upload(base_url, "page.html", b"<html><script>alert(1)</script></html>").status_code == 415
    )
    assert (
        upload(base_url, "image.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>").status_code
        == 415
    )
    assert (
        upload(
            base_url, "../../escape.png", (Path("workflows/inputs/landscape.png")).read_bytes()
        ).status_code
        == 400
    )
    assert not list((data / "input").iterdir())
    good = upload(base_url, "landscape.png", Path("workflows/inputs/landscape.png").read_bytes())
    assert good.status_code == 201 and good.json() == {"name": "landscape.png"}
    still_serving(base_url)


def test_a_pickle_checkpoint_fails_its_job_and_is_never_unpickled(server: tuple[str, Path]) -> None:
    base_url, data = server
    workflow = (
        load_example("txt2img.json").with_input("checkpoint", "checkpoint", "evil.ckpt").to_json()
    )
    response = httpx.post(
        f"{base_url}/api/jobs", params={"wait": "true"}, json={"workflow": workflow}, timeout=120
    )
    failed = response.json()["jobs"][0]
    assert failed["status"] == "failed" and failed["error_node"] == "checkpoint"
    assert "pickle checkpoints and are not loaded" in failed["error"]
    assert not (data.parent / "pwned").exists()
    still_serving(base_url)


@pytest.mark.parametrize(
    ("node", "name", "value", "code"),
    [
        ("latent", "width", 100_000, "out_of_range"),
        ("latent", "batch", 10_000, "out_of_range"),
        ("sampler", "steps", 1_000_000, "out_of_range"),
        ("sampler", "cfg", -1, "out_of_range"),
        ("sampler", "sampler", "euler; rm -rf /", "invalid_choice"),
        ("checkpoint", "checkpoint", "../../../etc/passwd", "model_not_found"),
    ],
)
def test_out_of_range_and_hostile_values_get_422(
    server: tuple[str, Path], node: str, name: str, value: Any, code: str
) -> None:
    base_url, _ = server
    response = job(base_url, load_example("txt2img.json").with_input(node, name, value).to_json())
    assert response.status_code == 422
    assert [(p["node"], p["input"], p["code"]) for p in response.json()["problems"]] == [
        (node, name, code)
    ]


def test_cyclic_and_huge_workflows_are_refused(server: tuple[str, Path]) -> None:
    base_url, _ = server
    cyclic = json.loads(Path("tests/fixtures/broken/cycle.json").read_text())
    response = job(base_url, cyclic)
    assert response.status_code == 422 and "cycle" in {
        p["code"] for p in response.json()["problems"]
    }
    huge = load_example("txt2img.json").to_json()
    huge["meta"] = {"padding": "x" * (17 * 2**20)}
    too_big = httpx.post(
        f"{base_url}/api/jobs",
        content=json.dumps({"workflow": huge}),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert too_big.status_code == 413 and "larger than the" in too_big.json()["detail"]
    not_json = httpx.post(
        f"{base_url}/api/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert httpx.get(f"{base_url}/api/jobs", params={"status": "queued"}).json()["total"] == 0
    finished = httpx.post(
        f"{base_url}/api/jobs",
        params={"wait": "true"},
        json={"workflow": load_example("txt2img.json").with_input("sampler", "steps", 2).to_json()},
        timeout=120,
    )
    assert finished.json()["jobs"][0]["status"] == "succeeded"


def test_token_protects_every_route_and_the_websocket(models_dir: Path, tmp_path: Path) -> None:
    token = "s3cret-token-long-enough"
    with running_server(models_dir, tmp_path / "data", token=token) as base_url:
        assert httpx.get(f"{base_url}/api/jobs").status_code == 401
        wrong = httpx.get(f"{base_url}/api/jobs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["detail"].startswith("wrong token;")
        right = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base_url}/api/jobs", headers=right).status_code == 200
        port = int(base_url.rsplit(":", 1)[1])
        settings = ServerSettings.model_validate({"port": port, "data": tmp_path / "data"})
        cookie = settings.cookie_name()
        assert httpx.get(f"{base_url}/api/jobs", cookies={cookie: token}).status_code == 200
        url = "ws://" + base_url.removeprefix("http://") + "/ws"

        async def connect(suffix: str) -> int:
            try:
                async with websockets.connect(url + suffix) as websocket:
                    json.loads(await websocket.recv())
                    return 101
            except InvalidStatus as refusal:
                return refusal.response.status_code

        assert asyncio.run(connect("")) == 401
        assert asyncio.run(connect(f"?token={token}")) == 101
