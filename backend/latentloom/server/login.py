"""The login page: a browser trades the server token for an HttpOnly cookie.

The page never holds the token itself: HostOriginGuard puts a checking function into the
request scope (it still applies its Host and Origin checks here, so a foreign page cannot
post to it), which keeps the token in one place and makes mounting the routes argument-free.
The form is parsed by hand (application/x-www-form-urlencoded only) so no multipart parser
is needed, and the page is static HTML with a CSP that allows no scripts.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from latentloom.server.security import LOGIN_PATH, TOKEN_CHECK_KEY, token_cookie

MAX_FORM_BYTES = 4096
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


def _page(message: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p class="message">{html.escape(message)}</p>' if message else ""
    body = PAGE.format(message=shown, action=LOGIN_PATH)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


async def login(request: Request) -> Response:
    if TOKEN_CHECK_KEY not in request.scope:
        return HTMLResponse(NOT_GUARDED, status_code=500, headers=PAGE_HEADERS)
    check: Callable[[str], bool] | None = request.scope[TOKEN_CHECK_KEY]
    if check is None:
        return HTMLResponse(
            f'<!doctype html><p>{NO_TOKEN} <a href="/">Open the editor</a>.</p>',
            headers=PAGE_HEADERS,
        )
    if request.method == "GET":
        return _page()
    token = await _form_token(request)
    if token is None:
        return _page(BAD_FORM, status=400)
    if not check(token):
        return _page(WRONG_TOKEN, status=401)
    response = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
    response.headers.append("set-cookie", token_cookie(token))
    return response


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


def login_routes() -> list[Route]:
    """The routes to mount (HostOriginGuard exempts their path from the token check)."""
    return [Route(LOGIN_PATH, login, methods=["GET", "POST"], name="login")]
