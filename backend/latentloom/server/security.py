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
   `Authorization: Bearer <token>`, as an HttpOnly cookie (set by /login), or as `?token=` on
   websocket handshakes and on a GET of the editor page; the latter answers with a redirect
   that sets the cookie and drops the token from the address bar. A browser opening the editor
   page with no token at all is sent to /login. Cookies are shared by every port of a host, so
   each instance names its cookie itself (`ServerSettings.cookie_name`: port and data folder)
   and two servers on one machine do not log each other out.

Tokens are 16 to 512 cookie-safe characters (`tokens.check_token`): shorter ones can be guessed.

Each refusal is JSON `{"detail": ...}` saying what was wrong and how to fix it. A refused
websocket handshake gets the same status and body through the ASGI websocket denial-response
extension when the server offers it (uvicorn does); otherwise the guard closes the socket
before accepting it (close code 4000 + status), which servers turn into a bare HTTP 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from latentloom.server.tokens import TOKEN_PATTERN, check_token

COOKIE_NAME = "latentloom_token"  # the default; servers pass a per-instance name
LOGIN_PATH = "/login"
# The guard hands the login page its Credentials, so the page never holds the token.
CREDENTIALS_KEY = "latentloom.credentials"
EDITOR_PAGES = frozenset({"/", "/index.html"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DENIAL_EXTENSION = "websocket.http.response"


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


def token_cookie(token: str, name: str = COOKIE_NAME) -> str:
    """The Set-Cookie value that logs a browser in: a session cookie scripts cannot read.

    No `Secure` flag: the server normally speaks plain HTTP, where a Secure cookie would be
    dropped by browsers outside localhost.
    """
    return f"{name}={token}; Path=/; HttpOnly; SameSite=Strict"


@dataclass(frozen=True)
class Credentials:
    """What the login page needs from the guard: a token check and the cookie to set."""

    matches: Callable[[str], bool]
    cookie_name: str

    def cookie(self, token: str) -> str:
        return token_cookie(token, self.cookie_name)


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
        cookie_name: str = COOKIE_NAME,
        public_paths: frozenset[str] = frozenset({LOGIN_PATH}),
    ) -> None:
        if token is not None:
            check_token(token)
        if not TOKEN_PATTERN.fullmatch(cookie_name) or "=" in cookie_name:
            raise ValueError(f"cookie name {cookie_name!r} is not a valid cookie name")
        self.app = app
        self.allowed_hosts = {host.lower() for host in allowed_hosts}
        self.allowed_origins = set(allowed_origins)
        self.token = token
        self.cookie_name = cookie_name
        self.credentials = Credentials(self.token_matches, cookie_name) if token else None
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[CREDENTIALS_KEY] = self.credentials
        headers = _headers(scope)
        refusal = self._check_host(headers) or self._check_origin(scope, headers)
        if refusal is None and self.token is not None and scope["path"] not in self.public_paths:
            refusal = self._check_token(scope, headers)
            if refusal is None and self._token_in_page_url(scope):
                await _redirect(send, _page_without_token(scope), self._cookie())
                return
            if refusal is not None and _browser_opening_the_editor(scope, headers):
                await _redirect(send, LOGIN_PATH, None)
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

    def _cookie(self) -> str:
        assert self.credentials is not None and self.token is not None
        return self.credentials.cookie(self.token)

    def _check_token(self, scope: Scope, headers: dict[str, list[str]]) -> Refusal | None:
        query_allowed = _query_token_allowed(scope)
        offered = _offered_tokens(scope, headers, self.cookie_name, query_allowed=query_allowed)
        if any(self.token_matches(candidate) for candidate in offered):
            return None
        how = (
            "send 'Authorization: Bearer <token>', log in at /login in a browser (it sets the "
            f"{self.cookie_name} cookie)"
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


def _browser_opening_the_editor(scope: Scope, headers: dict[str, list[str]]) -> bool:
    """A page navigation (it accepts HTML) to the editor with no token in a header or the URL
    (perhaps a stale cookie): the login page helps a person more than a JSON 401."""
    accept = ",".join(headers.get("accept", [])).lower()
    return (
        scope["type"] == "http"
        and scope.get("method") in ("GET", "HEAD")
        and scope["path"] in EDITOR_PAGES
        and "text/html" in accept
        and not headers.get("authorization")
        and not _query_has_token(scope)
    )


def _offered_tokens(
    scope: Scope, headers: dict[str, list[str]], cookie_name: str, *, query_allowed: bool
) -> list[str]:
    offered = []
    for value in headers.get("authorization", []):
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "bearer":
            offered.append(credentials.strip())
    cookie = cookie_parser("; ".join(headers.get("cookie", []))).get(cookie_name)
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


def _page_without_token(scope: Scope) -> str:
    rest = [(key, value) for key, value in _query_pairs(scope) if key != "token"]
    return str(scope["path"]) + (f"?{urlencode(rest)}" if rest else "")


async def _redirect(send: Send, location: str, cookie: str | None) -> None:
    """303 to `location`, setting the login cookie when one is given."""
    headers = [
        (b"location", location.encode("latin-1")),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
    ]
    if cookie is not None:
        headers.append((b"set-cookie", cookie.encode("latin-1")))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
