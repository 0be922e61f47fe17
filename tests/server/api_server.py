"""A real Latentloom server on 127.0.0.1 for API tests, waiting until its engine is warm."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from latentloom.server.app import create_app
from latentloom.server.settings import ServerSettings
from tests.server.live import listening_socket, serve


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server(models_dir: Path, data_dir: Path, **overrides: Any) -> Iterator[str]:
    """Yields the base URL once the engine is ready; stops the server afterwards."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    settings = ServerSettings(
        port=port, models=[models_dir], data=data_dir, device="cpu", **overrides
    )
    with serve(create_app(settings), sock=sock) as base_url:
        wait_until_ready(base_url, settings.token)
        yield base_url


def wait_until_ready(base_url: str, token: str | None = None, timeout: float = 60.0) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            system = httpx.get(f"{base_url}/api/system", headers=headers, timeout=5).json()
            if system["engine"] == "ready":
                return
            if system["engine"] == "failed":
                raise RuntimeError(system["startup_error"])
        time.sleep(0.05)
    raise TimeoutError(f"{base_url} did not become ready in {timeout} s")


def poll(url: str, check: Any, timeout: float = 120.0) -> Any:
    """GET `url` (JSON) until `check` accepts it; that value, or TimeoutError with the last."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = httpx.get(url, timeout=10).json()
        if check(value):
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{url} never satisfied the check within {timeout} s; last: {value}")
