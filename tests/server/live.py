"""Run an ASGI app on a real uvicorn socket in a background thread, for tests.

    sock = listening_socket()            # bound now, so the port is known before the app is built
    app = build_app(port=sock.getsockname()[1])
    with serve(app, sock=sock) as base_url:
        httpx.get(f"{base_url}/api/...")

`serve(app)` alone picks a free port itself. uvicorn runs the app's lifespan; its websocket
protocol is the sans-I/O websockets one, because the legacy one warns on import (and warnings
are errors in this suite).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

START_TIMEOUT_S = 10.0


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to a free port on `host`, ready to hand to `serve`."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextmanager
def serve(app: Any, *, sock: socket.socket | None = None) -> Iterator[str]:
    """Serve `app` until the block ends; yields the base URL, e.g. http://127.0.0.1:53411."""
    sock = sock or listening_socket()
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app, ws="websockets-sansio", log_level="warning", access_log=False, lifespan="auto"
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # reported by the waiting thread
            failure.append(error)

    thread = threading.Thread(target=run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(START_TIMEOUT_S)
            sock.close()
            raise RuntimeError(f"uvicorn did not start on port {port}") from (
                failure[0] if failure else None
            )
        time.sleep(0.01)
    try:
        yield f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
        sock.close()
        if failure:
            raise RuntimeError("uvicorn stopped with an error") from failure[0]
