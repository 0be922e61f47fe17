"""`latentloom serve` spawns its worker child before it loads the web stack, and the server's
dispatcher takes that child over instead of starting a second one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from latentloom.server.early_worker import spawn_early, worker_config
from latentloom.server.settings import load_settings

PROBE = """
import json, sys
from pathlib import Path
from latentloom.server.early_worker import spawn_early
from latentloom.server.settings import load_settings

settings = load_settings(None, {"models": [Path(sys.argv[1])], "data": Path(sys.argv[2])})
early = spawn_early(settings)
loaded = sorted(m for m in ("torch", "fastapi", "uvicorn", "diffusers") if m in sys.modules)
print(json.dumps({"spawned": early is not None, "loaded": loaded}))
early.end()
"""


def test_the_early_spawn_loads_neither_torch_nor_the_web_stack(
    models_dir: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(models_dir), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"spawned": True, "loaded": []}


@pytest.mark.parametrize(
    "overrides",
    [{"worker": "thread"}, {"ray": "auto"}, {"models": []}],
    ids=["thread worker", "ray workers", "no checkpoint: the demo one is written first"],
)
def test_no_early_spawn_where_the_server_starts_its_workers_later(
    overrides: dict[str, object], models_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings(None, {"models": [models_dir], "data": tmp_path, **overrides})
    assert spawn_early(settings) is None


def test_the_early_child_has_the_configuration_the_server_would_give_it(
    models_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings(None, {"models": [models_dir], "data": tmp_path})
    early = spawn_early(settings)
    assert early is not None
    try:
        assert early.config == worker_config(settings, [models_dir])
        assert early.process.is_alive()
    finally:
        early.end()
    assert not early.process.is_alive()
