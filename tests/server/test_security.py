"""HostOriginGuard and the login page on a real uvicorn socket, with real HTTP and websocket clients."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from latentloom.server.login import NO_TOKEN, WRONG_TOKEN, login_routes
from latentloom.server.security import (
    BindRefused,
    HostOriginGuard,
    check_bind,
    is_loopback,
)
from tests.server.live import listening_socket, serve

TOKEN = "s3cret-Token_42-long"


async def page(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.method} {request.url.path}")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello " + await websocket.receive_text())
    await websocket.close()


def guarded_app(port: int, token: str | None) -> HostOriginGuard:
    routes = [
        Route("/", page),
        Route("/api/thing", page, methods=["GET", "POST"]),
        WebSocketRoute("/ws", echo),
        *login_routes(),
    ]
    hosts = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")}
    return HostOriginGuard(
        Starlette(routes=routes),
        allowed_hosts=hosts,
        allowed_origins={f"http://{host}" for host in hosts},
        token=token,
    )


@dataclass
class Server:
    url: str
    port: int

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def own(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"


def _run(token: str | None) -> Iterator[Server]:
    sock = listening_socket()
    port = sock.getsockname()[1]
    with serve(guarded_app(port, token), sock=sock) as url:
        yield Server(url, port)


@pytest.fixture(scope="module")
def open_server() -> Iterator[Server]:
    yield from _run(None)


@pytest.fixture(scope="module")
def token_server() -> Iterator[Server]:
    yield from _run(TOKEN)


def detail(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    body: dict[str, str] = response.json()
    return body["detail"]


def allowed_hosts(port: int) -> str:
    return f"127.0.0.1:{port}, [::1]:{port}, localhost:{port}"


def allowed_origins(port: int) -> str:
    return f"http://127.0.0.1:{port}, http://[::1]:{port}, http://localhost:{port}"


# --- Host -----------------------------------------------------------------------------------


def test_own_hosts_are_served(open_server: Server) -> None:
    for host in ("127.0.0.1", "localhost", "LOCALHOST"):
        response = httpx.get(
            open_server.url + "/api/thing", headers={"Host": f"{host}:{open_server.port}"}
        )
        assert response.status_code == 200
        assert response.text == "GET /api/thing"


def test_rebinding_host_is_refused(open_server: Server) -> None:
    port = open_server.port
    response = httpx.get(open_server.url + "/api/thing", headers={"Host": f"evil.example:{port}"})
    assert response.status_code == 421
    assert detail(response) == (
        f"this server does not answer to Host 'evil.example:{port}' (a web page may be trying "
        f"DNS rebinding); it answers to {allowed_hosts(port)}. If you reach it under that name "
        "on purpose, add the name to allowed_hosts in the server settings"
    )


def test_host_with_another_port_is_refused(open_server: Server) -> None:
    response = httpx.get(open_server.url + "/", headers={"Host": "127.0.0.1:1"})
    assert response.status_code == 421


def _raw_request(server: Server, request: bytes) -> tuple[int, dict[str, Any]]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(request)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_missing_host_is_refused(open_server: Server) -> None:
    status, body = _raw_request(open_server, b"GET /api/thing HTTP/1.0\r\n\r\n")
    assert status == 400
    assert body["detail"] == (
        "the request has no Host header; send the address you connect to: "
        + allowed_hosts(open_server.port)
    )


def call_guard(scope: dict[str, Any], receive_type: str = "http.request") -> list[dict[str, Any]]:
    """Drive the guard directly, for what a real server never lets through."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": receive_type}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    base = {"path": "/", "query_string": b"", "method": "GET", "extensions": {}}
    asyncio.run(guarded_app(8188, None)({**base, **scope}, receive, send))
    return sent


def test_repeated_host_is_refused() -> None:
    # h11 already answers 400 to this; the guard does not rely on it.
    headers = [(b"host", b"127.0.0.1:8188"), (b"host", b"evil.example")]
    start, body = call_guard({"type": "http", "headers": headers})
    assert start["status"] == 400
    assert json.loads(body["body"]) == {
        "detail": "the request has 2 Host headers; send exactly one"
    }


# --- Origin and Sec-Fetch-Site ----------------------------------------------------------------


def test_own_origins_and_no_origin_are_served(open_server: Server) -> None:
    assert httpx.post(open_server.url + "/api/thing").status_code == 200
    for host in ("127.0.0.1", "localhost", "[::1]"):
        origin = open_server.own(host)
        response = httpx.post(open_server.url + "/api/thing", headers={"Origin": origin})
        assert response.status_code == 200, origin


def test_foreign_origin_is_refused(open_server: Server) -> None:
    port = open_server.port
    for origin in (
        "https://evil.example",
        f"http://127.0.0.1:{port + 1}",
        f"https://127.0.0.1:{port}",
    ):
        response = httpx.post(open_server.url + "/api/thing", headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert detail(response) == (
            f"Origin {origin!r} may not use this server; it accepts requests from its own pages "
            f"only ({allowed_origins(port)}). If that site is yours, add it to allowed_origins "
            "in the server settings"
        )


def test_origin_null_is_refused(open_server: Server) -> None:
    response = httpx.get(open_server.url + "/api/thing", headers={"Origin": "null"})
    assert response.status_code == 403
    assert detail(response) == (
        "Origin 'null' is refused: sandboxed frames and file: or data: pages may not use this "
        f"server; open the editor from one of {allowed_origins(open_server.port)}"
    )


def test_cross_site_writes_are_refused_but_navigation_is_not(open_server: Server) -> None:
    cross = {"Sec-Fetch-Site": "cross-site"}
    response = httpx.post(open_server.url + "/api/thing", headers=cross)
    assert response.status_code == 403
    assert detail(response) == (
        "cross-site request refused: another website tried POST /api/thing "
        "(Sec-Fetch-Site: cross-site); use the editor served by this server"
    )
    assert httpx.get(open_server.url + "/", headers=cross).status_code == 200
    same = {"Sec-Fetch-Site": "same-origin", "Origin": open_server.own()}
    assert httpx.post(open_server.url + "/api/thing", headers=same).status_code == 200


# --- token ----------------------------------------------------------------------------------

HOW = (
    "send 'Authorization: Bearer <token>', log in at /login in a browser (it sets the "
    "latentloom_token cookie)"
)


def test_missing_token_is_refused(token_server: Server) -> None:
    response = httpx.get(token_server.url + "/api/thing")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="latentloom"'
    assert detail(response) == f"this server requires a token; {HOW}"


@pytest.mark.parametrize(
    ("headers", "cookies"),
    [
        ({"Authorization": "Bearer wrong"}, {}),
        ({"Authorization": f"Bearer {TOKEN}x"}, {}),
        ({}, {"latentloom_token": "wrong"}),
    ],
    ids=["bearer", "bearer-prefix", "cookie"],
)
def test_wrong_token_is_refused(
    token_server: Server, headers: dict[str, str], cookies: dict[str, str]
) -> None:
    with httpx.Client(cookies=cookies) as client:
        response = client.get(token_server.url + "/api/thing", headers=headers)
    assert response.status_code == 401
    assert detail(response) == f"wrong token; {HOW}"


def test_right_token_in_header_or_cookie_is_served(token_server: Server) -> None:
    bearer = httpx.post(
        token_server.url + "/api/thing", headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert bearer.status_code == 200
    with httpx.Client(cookies={"latentloom_token": TOKEN}) as client:
        assert client.post(token_server.url + "/api/thing").status_code == 200


def test_query_token_is_not_accepted_by_api_routes(token_server: Server) -> None:
    response = httpx.get(token_server.url + "/api/thing", params={"token": TOKEN})
    assert response.status_code == 401
    assert detail(response) == f"this server requires a token; {HOW}"


def test_query_token_on_the_editor_page_sets_the_cookie(token_server: Server) -> None:
    response = httpx.get(token_server.url + "/", params={"token": TOKEN, "workflow": "a b"})
    assert response.status_code == 303
    assert response.headers["location"] == "/?workflow=a+b"
    assert response.headers["set-cookie"] == (
        f"latentloom_token={TOKEN}; Path=/; HttpOnly; SameSite=Strict"
    )
    wrong = httpx.get(token_server.url + "/", params={"token": "nope"})
    assert wrong.status_code == 401
    assert detail(wrong) == f"wrong token; {HOW}"


def test_checks_run_before_the_token(token_server: Server) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Origin": "https://evil.example"}
    assert httpx.get(token_server.url + "/api/thing", headers=headers).status_code == 403
    headers = {"Authorization": f"Bearer {TOKEN}", "Host": "evil.example"}
    assert httpx.get(token_server.url + "/api/thing", headers=headers).status_code == 421


def test_bad_tokens_are_refused_at_start() -> None:
    for token in ("", "has space and is long", "semi;colon-and-long", "x" * 513):
        with pytest.raises(ValueError, match="the token must be 16 to 512 printable ASCII"):
            guarded_app(8188, token)
    with pytest.raises(ValueError, match="the token is only 15 characters long"):
        guarded_app(8188, "x" * 15)


def test_a_browser_opening_the_editor_without_a_token_is_sent_to_login(
    token_server: Server,
) -> None:
    page = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for cookies in ({}, {"latentloom_token": "stale"}):
        with httpx.Client(cookies=cookies) as client:
            response = client.get(token_server.url + "/", headers=page)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        assert "set-cookie" not in response.headers
    # Scripts (no HTML in Accept) and API routes still get the JSON 401 that says how to fix it.
    assert httpx.get(token_server.url + "/").status_code == 401
    assert httpx.get(token_server.url + "/api/thing", headers=page).status_code == 401
    wrong_bearer = {**page, "Authorization": "Bearer wrong"}
    assert httpx.get(token_server.url + "/", headers=wrong_bearer).status_code == 401


def test_the_cookie_name_is_the_instances() -> None:
    sock = listening_socket()
    port = sock.getsockname()[1]
    hosts = {f"127.0.0.1:{port}"}
    app = HostOriginGuard(
        Starlette(routes=[Route("/api/thing", page), *login_routes()]),
        allowed_hosts=hosts,
        allowed_origins={f"http://{host}" for host in hosts},
        token=TOKEN,
        cookie_name="latentloom_one",
    )
    with serve(app, sock=sock) as url, httpx.Client(base_url=url) as client:
        response = client.post("/login", data={"token": TOKEN})
        assert response.headers["set-cookie"] == (
            f"latentloom_one={TOKEN}; Path=/; HttpOnly; SameSite=Strict"
        )
        assert client.get("/api/thing").status_code == 200
        other = httpx.get(url + "/api/thing", cookies={"latentloom_token": TOKEN})
        assert other.status_code == 401
        assert detail(other) == (
            "this server requires a token; send 'Authorization: Bearer <token>', log in at "
            "/login in a browser (it sets the latentloom_one cookie)"
        )
    with pytest.raises(ValueError, match="cookie name 'a=b' is not a valid cookie name"):
        HostOriginGuard(
            app, allowed_hosts=hosts, allowed_origins=set(), token=None, cookie_name="a=b"
        )


# --- login page -----------------------------------------------------------------------------


def test_login_page_is_public_and_scriptless(token_server: Server) -> None:
    response = httpx.get(token_server.url + "/login")
    assert response.status_code == 200
    assert '<input id="token" name="token" type="password"' in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in response.text


def test_login_with_the_right_token_sets_the_cookie(token_server: Server) -> None:
    with httpx.Client(base_url=token_server.url) as client:
        origin = {"Origin": token_server.own()}
        response = client.post("/login", data={"token": TOKEN}, headers=origin)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert response.headers["set-cookie"] == (
            f"latentloom_token={TOKEN}; Path=/; HttpOnly; SameSite=Strict"
        )
        assert client.get("/api/thing").status_code == 200  # the cookie jar now holds the token


def test_login_with_a_wrong_token_shows_the_form_again(token_server: Server) -> None:
    response = httpx.post(token_server.url + "/login", data={"token": "guess"})
    assert response.status_code == 401
    assert WRONG_TOKEN in response.text
    assert "set-cookie" not in response.headers


def test_login_refuses_other_form_encodings(token_server: Server) -> None:
    response = httpx.post(token_server.url + "/login", files={"token": ("t", TOKEN.encode())})
    assert response.status_code == 400
    assert "application/x-www-form-urlencoded" in response.text


def test_login_from_a_foreign_page_is_refused(token_server: Server) -> None:
    headers = {"Origin": "https://evil.example"}
    response = httpx.post(token_server.url + "/login", data={"token": TOKEN}, headers=headers)
    assert response.status_code == 403


def test_login_without_a_configured_token(open_server: Server) -> None:
    response = httpx.get(open_server.url + "/login")
    assert response.status_code == 200
    assert NO_TOKEN in response.text


# --- websockets -----------------------------------------------------------------------------


def _talk(connection: ClientConnection) -> str:
    with connection:
        connection.send("there")
        reply = connection.recv(timeout=5)
    assert isinstance(reply, str)
    return reply


def _refused(uri: str, **options: Any) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as refused:
        connect(uri, open_timeout=5, **options)
    response = refused.value.response
    assert response.headers["content-type"] == "application/json"
    return response.status_code, json.loads(response.body or b"{}")["detail"]


def test_websocket_from_own_origin_and_without_origin(open_server: Server) -> None:
    assert _talk(connect(open_server.ws, origin=Origin(open_server.own()))) == "hello there"
    assert _talk(connect(open_server.ws)) == "hello there"


def test_websocket_foreign_and_null_origins_are_refused(open_server: Server) -> None:
    status, message = _refused(open_server.ws, origin="https://evil.example")
    assert status == 403
    assert message.startswith("Origin 'https://evil.example' may not use this server")
    status, message = _refused(open_server.ws, origin="null")
    assert status == 403
    assert message.startswith("Origin 'null' is refused")


def test_websocket_cross_site_is_refused(open_server: Server) -> None:
    status, message = _refused(open_server.ws, additional_headers={"Sec-Fetch-Site": "cross-site"})
    assert (status, message) == (
        403,
        "cross-site request refused: another website tried WEBSOCKET /ws "
        "(Sec-Fetch-Site: cross-site); use the editor served by this server",
    )


def test_websocket_rebinding_host_is_refused(open_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", open_server.port), timeout=5) as sock:
        status, message = _refused(f"ws://evil.example:{open_server.port}/ws", sock=sock)
    assert status == 421
    assert message.startswith(
        f"this server does not answer to Host 'evil.example:{open_server.port}'"
    )


WS_HOW = HOW + ", or add ?token=<token> to the websocket URL"


def test_websocket_token(token_server: Server) -> None:
    assert _refused(token_server.ws) == (401, f"this server requires a token; {WS_HOW}")
    assert _refused(token_server.ws + "?token=nope") == (401, f"wrong token; {WS_HOW}")
    bearer = {"Authorization": "Bearer wrong"}
    assert _refused(token_server.ws, additional_headers=bearer) == (401, f"wrong token; {WS_HOW}")
    assert _talk(connect(token_server.ws + f"?token={TOKEN}")) == "hello there"
    assert (
        _talk(connect(token_server.ws, additional_headers={"Authorization": f"Bearer {TOKEN}"}))
        == "hello there"
    )
    cookie = {"Cookie": f"latentloom_token={TOKEN}"}
    assert _talk(connect(token_server.ws, additional_headers=cookie)) == "hello there"


def test_websocket_refusal_without_the_denial_extension_closes_before_accept() -> None:
    scope = {"type": "websocket", "path": "/ws", "headers": [(b"host", b"evil.example:8188")]}
    sent = call_guard(scope, receive_type="websocket.connect")
    assert sent == [{"type": "websocket.close", "code": 4421}]


# --- binding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "localhost", "LocalHost", "::1", "[::1]", "::ffff:127.0.0.1"],
)
def test_loopback_binds_need_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.com", "::ffff:10.0.0.1"])
def test_other_binds_need_a_token(host: str) -> None:
    with pytest.raises(BindRefused) as refused:
        check_bind(host, None)
    assert str(refused.value) == (
        f"refusing to listen on {host} without --token: anyone on the network could run jobs "
        "and read files; pass --token or bind 127.0.0.1"
    )
    check_bind(host, TOKEN)


def test_empty_host_means_every_interface() -> None:
    with pytest.raises(BindRefused, match="refusing to listen on all interfaces without --token"):
        check_bind("", None)
    with pytest.raises(BindRefused):
        check_bind("0.0.0.0", "")
