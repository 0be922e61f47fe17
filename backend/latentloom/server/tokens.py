"""Server tokens: what a token must be, and the one `--token auto` generates and keeps.

A token guards a server that can run jobs and read files, so it must not be guessable (at
least 16 characters) and must survive a cookie (RFC 6265 cookie-octets, at most 512).

`--token auto` generates a token once and keeps it in the data folder, in a file only its
owner can read (mode 0600); the server prints the file's path, never the token. Later starts
with `--token auto` reuse the file, so logged-in browsers and scripts keep working, but only
while the file is still private: one that others can read, or that is a symlink, is refused
with the command that fixes it. The file is written under a temporary name and published with
a hard link, which fails when the name exists: two servers starting at once agree on a token,
and no one ever sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from pathlib import Path

# Cookie-safe: RFC 6265 cookie-octets, which also keeps it a single header token.
TOKEN_PATTERN = re.compile(r"[!#-+\--:<-\[\]-~]{1,512}")
MIN_TOKEN_LENGTH = 16
AUTO_TOKEN = "auto"
TOKEN_FILE_NAME = "server-token"
GENERATE_HINT = "pass --token auto to have one generated"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_PRIVATE = os.name == "posix"  # other systems have no mode bits to check


class TokenRefused(ValueError):
    """A configured token, or a token file, that cannot protect the server."""


def check_token(token: str) -> None:
    """Raise TokenRefused unless `token` is 16 to 512 cookie-safe characters."""
    if token == AUTO_TOKEN:
        raise TokenRefused(
            "the token 'auto' must be turned into a generated token before the server starts "
            "(latentloom.server.tokens.auto_token does; `latentloom serve` calls it)"
        )
    if not TOKEN_PATTERN.fullmatch(token):
        raise TokenRefused(
            "the token must be 16 to 512 printable ASCII characters without spaces, quotes, "
            f"commas, semicolons or backslashes (it travels in a cookie); {GENERATE_HINT}"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise TokenRefused(
            f"the token is only {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} "
            f"(a short token can be guessed), or {GENERATE_HINT}"
        )


def auto_token(data: Path) -> tuple[str, Path]:
    """The generated token of the data folder and its file, creating both on the first call."""
    path = data / TOKEN_FILE_NAME
    if not os.path.lexists(path):
        _publish(path, secrets.token_urlsafe(32))
    return _read(path), path


def _publish(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            if _PRIVATE:
                os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(token + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another server published first: use its
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _read(path: Path) -> str:
    again = "delete it and start with --token auto again to generate a new token"
    try:
        descriptor = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError as error:
        if os.path.islink(path):
            raise TokenRefused(f"{path} is a symlink, not the token file; {again}") from None
        raise TokenRefused(f"cannot read {path}: {error.strerror}; {again}") from None
    with os.fdopen(descriptor, encoding="ascii", errors="replace") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise TokenRefused(f"{path} is not a regular file; {again}")
        mode = stat.S_IMODE(status.st_mode)
        if _PRIVATE and mode & 0o077:
            raise TokenRefused(
                f"{path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`, "
                f"or {again}"
            )
        token = file.read(1024).strip()
    try:
        check_token(token)
    except TokenRefused:
        raise TokenRefused(
            f"{path} does not hold a valid token (16 to 512 characters, no spaces); {again}"
        ) from None
    return token
