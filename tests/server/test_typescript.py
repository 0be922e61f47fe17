"""The committed TypeScript types are exactly what the pydantic models generate."""

from __future__ import annotations

from latentloom.server.typescript import generate
from tests.support import REPO


def test_frontend_types_are_up_to_date() -> None:
    committed = (REPO / "frontend" / "src" / "api" / "types.ts").read_text()
    assert committed == generate(), (
        "run: .venv/bin/latentloom typescript > frontend/src/api/types.ts"
    )


def test_every_event_kind_is_in_the_union() -> None:
    text = generate()
    for kind in (
        "node.started",
        "node.cached",
        "node.progress",
        "node.finished",
        "node.failed",
        "job.queued",
        "job.started",
        "job.finished",
        "job.failed",
        "job.cancelled",
    ):
        assert f'kind: "{kind}";' in text
