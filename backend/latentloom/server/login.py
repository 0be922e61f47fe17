"""The login page: a browser trades the server token for an HttpOnly cookie.

The page never holds the token itself: HostOriginGuard puts its Credentials (a token check
and the instance's cookie name) into the request scope (it still applies its Host and Origin
checks here, so a foreign page cannot post to it), which keeps the token in one place. The
form is parsed by hand (application/x-www-form-urlencoded only) so no multipart parser is
needed, and the page is static HTML with a CSP that allows no scripts.

Guessing is rate-limited per client address (`LoginAttempts`): after 10 wrong tokens within
a minute, every try is answered 429 with Retry-After until the oldest of them is a minute
old, without checking the token (checking it would tell a guesser when one is right).
"""

from __future__ import annotations

import html
import math
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from latentloom.server.security import CREDENTIALS_KEY, LOGIN_PATH, Credentials

MAX_FORM_BYTES = 4096
MAX_FAILURES = 10
FAILURE_WINDOW_S = 60.0
MAX_TRACKED_CLIENTS = 10_000
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
WRONG_TOKEN = "Wrong token. Use the token the server was started with (--token)."
NO_TOKEN = "This server needs no token."
TOO_MANY = (
    "Too many wrong tokens from your address ({failures} in a minute). "
    "Try again in {seconds} seconds."
)
NOT_GUARDED = (
    "the login page is mounted without HostOriginGuard in front of it; it cannot check tokens"
)
BAD_FORM = (
    "send the form as application/x-www-form-urlencoded with a 'token' field, at most 4096 bytes"
)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Latentloom - log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}
input,button{{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin:.3rem 0}}
.message{{color:#b00020}}</style></head>
<body><h1>Latentloom</h1>{message}
<form method="post" action="{action}">
<label for="token">Server token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form></body></html>
"""


class LoginAttempts:
    """Wrong tokens per client address within a sliding window, in bounded memory."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_s: float = FAILURE_WINDOW_S,
        max_clients: int = MAX_TRACKED_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures, self.window_s, self.max_clients = max_failures, window_s, max_clients
        self.clock = clock
        self.failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None when it may try now."""
        recent = self._recent(client)
        if len(recent) < self.max_failures:
            return None
        return max(1, math.ceil(recent[0] + self.window_s - self.clock()))

    def failed(self, client: str) -> None:
        recent = self._recent(client)
        recent.append(self.clock())
        self.failures[client] = recent
        if len(self.failures) > self.max_clients:
            self._forget_old()

    def succeeded(self, client: str) -> None:
        self.failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        recent = self.failures.get(client, deque(maxlen=self.max_failures))
        while recent and recent[0] <= self.clock() - self.window_s:
            recent.popleft()
        return recent

    def _forget_old(self) -> None:
        """Drop clients with no recent failure, then the longest-quiet ones, down to the cap."""
        for client in [c for c in self.failures if not self._recent(c)]:
            del self.failures[client]
        by_last = sorted(self.failures, key=lambda c: self.failures[c][-1])
        for client in by_last[: len(self.failures) - self.max_clients]:
            del self.failures[client]


def _page(message: str = "", status: int = 200, headers: dict[str, str] | None = None) -> Response:
    shown = f'<p class="message">{html.escape(message)}</p>' if message else ""
    body = PAGE.format(message=shown, action=LOGIN_PATH)
    return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def _login_endpoint(attempts: LoginAttempts) -> Callable[[Request], object]:
    async def login(request: Request) -> Response:
        if CREDENTIALS_KEY not in request.scope:
            return HTMLResponse(NOT_GUARDED, status_code=500, headers=PAGE_HEADERS)
        credentials: Credentials | None = request.scope[CREDENTIALS_KEY]
        if credentials is None:
            return HTMLResponse(
                f'<!doctype html><p>{NO_TOKEN} <a href="/">Open the editor</a>.</p>',
                headers=PAGE_HEADERS,
            )
        if request.method == "GET":
            return _page()
        client = request.client.host if request.client else "unknown"
        wait = attempts.retry_after(client)
        if wait is not None:
            message = TOO_MANY.format(failures=attempts.max_failures, seconds=wait)
            return _page(message, status=429, headers={"Retry-After": str(wait)})
        token = await _form_token(request)
        if token is None:
            return _page(BAD_FORM, status=400)
        if not credentials.matches(token):
            attempts.failed(client)
            return _page(WRONG_TOKEN, status=401)
        attempts.succeeded(client)
        response = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
        response.headers.append("set-cookie", credentials.cookie(token))
        return response

    return login


async def _form_token(request: Request) -> str | None:
    """The `token` field of a small urlencoded form, or None when the form is not that."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return next((value for key, value in fields if key == "token"), None)


def login_routes(attempts: LoginAttempts | None = None) -> list[Route]:
    """The routes to mount (HostOriginGuard exempts their path from the token check); each
    call has its own attempt counter unless one is given."""
    endpoint = _login_endpoint(attempts or LoginAttempts())
    return [Route(LOGIN_PATH, endpoint, methods=["GET", "POST"], name="login")]
