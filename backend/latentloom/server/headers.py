"""Response headers that keep other sites from framing, embedding or sniffing what we serve.

One pure ASGI middleware, outermost, so the guard's refusals and redirects get the headers
too. On every response, unless the route set them itself:

- `X-Frame-Options: DENY`, and on HTML a CSP `frame-ancestors 'none'` (appended to a CSP the
  route already sent): no page of ours runs inside another site's frame (clickjacking);
- `Cross-Origin-Resource-Policy: same-origin`: another site's `<img>` or `<script>` cannot
  load our outputs, uploads or API answers (those requests carry no Origin header, so the
  guard lets them through; the browser then withholds the response);
- `X-Content-Type-Options: nosniff`: a browser takes the content type we send at its word.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_ANCESTORS = "frame-ancestors 'none'"
DEFAULTS = {
    "x-frame-options": "DENY",
    "cross-origin-resource-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


class SecurityHeaders:
    """Adds the headers above to every HTTP response passing through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_security_headers(headers: MutableHeaders) -> None:
    for name, value in DEFAULTS.items():
        if name not in headers:
            headers[name] = value
    policy = headers.get("content-security-policy")
    if policy is not None and "frame-ancestors" not in policy:
        headers["content-security-policy"] = f"{policy.rstrip('; ')}; {FRAME_ANCESTORS}"
    elif policy is None and headers.get("content-type", "").startswith("text/html"):
        headers["content-security-policy"] = FRAME_ANCESTORS
