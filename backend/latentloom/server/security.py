"""Who may talk to the server: a Host/Origin/token guard for HTTP and websockets, and the bind check.

The server runs on the user's machine and can run jobs and read its files, so any web page the
user visits is a potential attacker. The guard refuses, in this order:

1. a Host header the server does not answer to (DNS rebinding: evil.example resolving to
   127.0.0.1 makes the browser send `Host: evil.example:8188`) -> 421;
2. an Origin header that is not exactly one of the server's own origins, and `Origin: null`
   (sandboxed frames, file: and data: pages) -> 403. A request without Origin (curl, scripts,
   the websockets library) is allowed: browsers always send Origin on cross-origin fetches
   and on every websocket handshake, so its absence means a non-browser client;
3. `Sec-Fetch-Site: cross-site` on a websocket or on a method other than GET/HEAD/OPTIONS -> 403;
4. when a token is configured, a request without it -> 401. The token travels as
   `Authorization: Bearer <token>`, as the HttpOnly cookie `latentloom_token` (set by /login),
   or as `?token=` on websocket handshakes and on a GET of the editor page; the latter answers
   with a redirect that sets the cookie and drops the token from the address bar.

Each refusal is JSON `{"detail": ...}` saying what was wrong and how to fix it. A refused
websocket handshake gets the same status and body through the ASGI websocket denial-response
extension when the server offers it (uvicorn does); otherwise the guard closes the socket
before accepting it (close code 4000 + status), which servers turn into a bare HTTP 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE_NAME = "latentloom_token"
LOGIN_PATH = "/login"
# The guard hands the login page a way to check a token without the page holding it.
TOKEN_CHECK_KEY = "latentloom.token_check"
EDITOR_PAGES = frozenset({"/", "/index.html"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DENIAL_EXTENSION = "websocket.http.response"
# Cookie-safe: RFC 6265 cookie-octets, which also keeps it a single header token.
TOKEN_PATTERN = re.compile(r"[!#-+\--:<-\[\]-~]{1,512}")


class BindRefused(ValueError):
    """Listening on a non-loopback address without a token."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"refusing to listen on {host} without --token: anyone on the network could run "
            "jobs and read files; pass --token or bind 127.0.0.1"
        )


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (bracketed or IPv4-mapped too); names are not resolved."""
    host = host.strip()
    if host.lower() == "localhost":
        return True
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_bind(host: str, token: str | None) -> None:
    """Raise BindRefused unless `host` is loopback or a non-empty token is configured."""
    if not token and not is_loopback(host):
        raise BindRefused(host or "all interfaces")


def token_cookie(token: str) -> str:
    """The Set-Cookie value that logs a browser in: a session cookie scripts cannot read.

    No `Secure` flag: the server normally speaks plain HTTP, where a Secure cookie would be
    dropped by browsers outside localhost.
    """
    return f"{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict"


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str


def _headers(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


def _listing(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


class HostOriginGuard:
    """Pure ASGI middleware guarding HTTP and websocket scopes; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: set[str],
        allowed_origins: set[str],
        token: str | None,
        public_paths: frozenset[str] = frozenset({LOGIN_PATH}),
    ) -> None:
        if token is not None and not TOKEN_PATTERN.fullmatch(token):
            raise ValueError(
                "the token must be 1 to 512 printable ASCII characters without spaces, quotes, "
                "commas, semicolons or backslashes (it travels in a cookie); e.g. generate one "
                "with: python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        self.app = app
        self.allowed_hosts = {host.lower() for host in allowed_hosts}
        self.allowed_origins = set(allowed_origins)
        self.token = token
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[TOKEN_CHECK_KEY] = self.token_matches if self.token is not None else None
        headers = _headers(scope)
        refusal = self._check_host(headers) or self._check_origin(scope, headers)
        if refusal is None and self.token is not None and scope["path"] not in self.public_paths:
            refusal = self._check_token(scope, headers)
            if refusal is None and self._token_in_page_url(scope):
                await _redirect_with_cookie(scope, send, self.token)
                return
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await _send_http(send, refusal)
        else:
            await _refuse_websocket(scope, receive, send, refusal)

    def token_matches(self, candidate: str) -> bool:
        if self.token is None:
            return True
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def _check_host(self, headers: dict[str, list[str]]) -> Refusal | None:
        hosts = headers.get("host", [])
        allowed = _listing(self.allowed_hosts)
        if not hosts:
            return Refusal(
                400, f"the request has no Host header; send the address you connect to: {allowed}"
            )
        if len(hosts) > 1:
            return Refusal(400, f"the request has {len(hosts)} Host headers; send exactly one")
        if hosts[0].lower() not in self.allowed_hosts:
            return Refusal(
                421,
                f"this server does not answer to Host {hosts[0]!r} (a web page may be trying "
                f"DNS rebinding); it answers to {allowed}. If you reach it under that name on "
                "purpose, add the name to allowed_hosts in the server settings",
            )
        return None

    def _check_origin(self, scope: Scope, headers: dict[str, list[str]]) -> Refusal | None:
        origins = headers.get("origin", [])
        allowed = _listing(self.allowed_origins)
        if len(origins) > 1:
            return Refusal(400, f"the request has {len(origins)} Origin headers; send at most one")
        if origins and origins[0] == "null":
            return Refusal(
                403,
                "Origin 'null' is refused: sandboxed frames and file: or data: pages may not use "
                f"this server; open the editor from one of {allowed}",
            )
        if origins and origins[0] not in self.allowed_origins:
            return Refusal(
                403,
                f"Origin {origins[0]!r} may not use this server; it accepts requests from its own "
                f"pages only ({allowed}). If that site is yours, add it to allowed_origins in the "
                "server settings",
            )
        fetch_site = headers.get("sec-fetch-site", [""])[0].lower()
        method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        if fetch_site == "cross-site" and method not in SAFE_METHODS:
            return Refusal(
                403,
                f"cross-site request refused: another website tried {method} {scope['path']} "
                "(Sec-Fetch-Site: cross-site); use the editor served by this server",
            )
        return None

    def _check_token(self, scope: Scope, headers: dict[str, list[str]]) -> Refusal | None:
        offered = _offered_tokens(scope, headers, query_allowed=_query_token_allowed(scope))
        if any(self.token_matches(candidate) for candidate in offered):
            return None
        how = (
            "send 'Authorization: Bearer <token>', log in at /login in a browser (it sets the "
            f"{COOKIE_NAME} cookie)"
        )
        how += (
            ", or add ?token=<token> to the websocket URL" if scope["type"] == "websocket" else ""
        )
        if offered:
            return Refusal(401, f"wrong token; {how}")
        return Refusal(401, f"this server requires a token; {how}")

    def _token_in_page_url(self, scope: Scope) -> bool:
        return scope["type"] == "http" and _query_token_allowed(scope) and _query_has_token(scope)


def _query_token_allowed(scope: Scope) -> bool:
    if scope["type"] == "websocket":
        return True
    return scope.get("method") in ("GET", "HEAD") and scope["path"] in EDITOR_PAGES


def _query_pairs(scope: Scope) -> list[tuple[str, str]]:
    return parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)


def _query_has_token(scope: Scope) -> bool:
    return any(key == "token" for key, _ in _query_pairs(scope))


def _offered_tokens(
    scope: Scope, headers: dict[str, list[str]], *, query_allowed: bool
) -> list[str]:
    offered = []
    for value in headers.get("authorization", []):
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "bearer":
            offered.append(credentials.strip())
    cookie = cookie_parser("; ".join(headers.get("cookie", []))).get(COOKIE_NAME)
    if cookie is not None:
        offered.append(cookie)
    if query_allowed:
        offered.extend(value for key, value in _query_pairs(scope) if key == "token")
    return offered


def _json_body(refusal: Refusal) -> bytes:
    return json.dumps({"detail": refusal.detail}).encode()


def _response_headers(body: bytes, status: int) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="latentloom"'))
    return headers


async def _send_http(send: Send, refusal: Refusal) -> None:
    body = _json_body(refusal)
    headers = _response_headers(body, refusal.status)
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client left before the handshake finished
    if DENIAL_EXTENSION in scope.get("extensions", {}):
        body = _json_body(refusal)
        headers = _response_headers(body, refusal.status)
        start = {"type": "websocket.http.response.start", "status": refusal.status}
        await send({**start, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 4000 + refusal.status})


async def _redirect_with_cookie(scope: Scope, send: Send, token: str) -> None:
    """303 to the same page without `token` in the query, with the login cookie set."""
    rest = [(key, value) for key, value in _query_pairs(scope) if key != "token"]
    location = scope["path"] + (f"?{urlencode(rest)}" if rest else "")
    headers = [
        (b"location", location.encode("latin-1")),
        (b"set-cookie", token_cookie(token).encode("latin-1")),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
