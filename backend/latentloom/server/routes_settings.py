"""Editor settings kept on the server, so they follow the user from browser to browser.

`GET /api/settings` answers the stored object (`{}` before the first save); `PUT` replaces it.
The editor owns the keys (link style, snap to grid, badges...); the server only holds them
to bounds: a flat object of at most `MAX_KEYS` keys whose values are JSON scalars or short
lists of scalars, `MAX_BYTES` in all. The file is written atomically in the data folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, HTTPException, Request

from latentloom.server.routes_jobs import StrictJsonRoute
from latentloom.server.services import Services

router = APIRouter(prefix="/api", tags=["settings"], route_class=StrictJsonRoute)
FILE_NAME: Final = "editor-settings.json"
MAX_KEYS: Final = 200
MAX_BYTES: Final = 64 * 1024
MAX_LIST: Final = 50
KEY_LENGTH: Final = 100


def _path(request: Request) -> Path:
    state: Services = request.app.state.services
    return Path(state.settings.data) / FILE_NAME


def settings_problem(settings: Any) -> str | None:
    """Why `settings` cannot be stored, or None."""
    if not isinstance(settings, dict):
        return f"settings are a JSON object of name: value, got {type(settings).__name__}"
    if len(settings) > MAX_KEYS:
        return f"settings hold at most {MAX_KEYS} keys, got {len(settings)}"
    for key, value in settings.items():
        if not 1 <= len(key) <= KEY_LENGTH:
            return f"a setting name is 1..{KEY_LENGTH} characters, got {len(key)}"
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > MAX_LIST:
            return f"setting {key!r}: lists hold at most {MAX_LIST} values, got {len(value)}"
        for item in items:
            if item is not None and not isinstance(item, str | int | float | bool):
                return (
                    f"setting {key!r}: values are strings, numbers, booleans, null or lists "
                    f"of those, got {type(item).__name__}"
                )
    size = len(json.dumps(settings, ensure_ascii=False).encode())
    if size > MAX_BYTES:
        return f"settings take at most {MAX_BYTES} bytes as JSON, got {size}"
    return None


def read_settings(path: Path) -> dict[str, Any]:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # an unreadable file is as good as none: the editor falls back to defaults
    return stored if isinstance(stored, dict) and settings_problem(stored) is None else {}


def write_settings(path: Path, settings: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".settings-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(settings, file, indent=2, ensure_ascii=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@router.get("/settings")
async def get_settings(request: Request) -> dict[str, Any]:
    return await asyncio.to_thread(read_settings, _path(request))


@router.put("/settings", responses={422: {"description": "settings out of bounds"}})
async def put_settings(request: Request, settings: dict[str, Any]) -> dict[str, Any]:
    problem = settings_problem(settings)
    if problem is not None:
        raise HTTPException(422, problem)
    await asyncio.to_thread(write_settings, _path(request), settings)
    return settings
