"""Installs like a package: a wheel and a non-editable `pip install .` carry the built-in node
pack and the built editor, and `latentloom serve` works from the installed copy alone.

Hermetic and quick: the source is copied to a temporary folder (so no build litter lands in
the checkout), built without build isolation and without the network, and installed without
dependencies into fresh virtual environments. Those reach the project's dependencies (torch,
FastAPI...) through a path file naming the project venv's site-packages, which puts that folder
on `sys.path` without running its own path files, so the project's editable install (a path
file pointing at `backend/`) stays invisible: `latentloom` can only come from the install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from latentloom.registry import build_registry
from tests.server.api_server import free_port, wait_until_ready
from tests.support import REPO

EDITOR = REPO / "frontend" / "dist"
SOURCE_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
SOURCE_FOLDERS = ("backend", "nodes", "frontend/dist")
BUILD_TIMEOUT_S = 300
SERVE_TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(
    not (EDITOR / "index.html").is_file(),
    reason="the editor is not built (npm run build); make test builds it first",
)

# Run inside an installed environment: where everything came from, and the catalog.
PROBE = """
import json, latentloom, latentloom.registry as registry
from latentloom.server.app import default_frontend_dist
print(json.dumps({
    "package": latentloom.__file__,
    "pack": str(registry.BUILTIN_PACK_FOLDER),
    "editor": str(default_frontend_dist()),
    "nodes": sorted(spec.id for spec in registry.build_registry(entry_point_packs=False)),
}))
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files a build reads, copied from the working tree."""
    root = tmp_path_factory.mktemp("source")
    for name in SOURCE_FILES:
        shutil.copy2(REPO / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "_builtin_nodes", "_editor")
    for folder in SOURCE_FOLDERS:
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    return root


def fresh_venv(folder: Path) -> Path:
    """A new venv seeing the project's dependencies but not its editable install."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dependencies = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "latentloom_test_dependencies.pth").write_text(dependencies + "\n")
    return python


def pip(*arguments: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *arguments],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def probe(python: Path) -> dict[str, object]:
    done = subprocess.run(
        [str(python), "-c", PROBE], capture_output=True, text=True, check=False, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def builtin_ids() -> list[str]:
    return sorted(spec.id for spec in build_registry(entry_point_packs=False))


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(source))
    [built] = out.glob("latentloom-*.whl")
    return built


def test_the_wheel_carries_the_node_pack_the_editor_and_the_vocabulary(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    pack = {name.removeprefix("latentloom/_builtin_nodes/") for name in names}
    assert {p.name for p in (REPO / "nodes").glob("*.py")} <= pack
    editor = {n.removeprefix("latentloom/_editor/") for n in names if "latentloom/_editor/" in n}
    built = {str(p.relative_to(EDITOR)) for p in EDITOR.rglob("*") if p.is_file()}
    assert editor == built and "index.html" in editor
    assert "latentloom/data/bpe_simple_vocab_16e6.txt.gz" in names
    assert not any("__pycache__" in name for name in names)


def test_an_installed_wheel_runs_from_its_own_copies(wheel: Path, tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv")
    pip("--python", str(python), "install", "--no-deps", "--no-index", str(wheel))
    found = probe(python)
    site = tmp_path / "venv" / "lib"
    for key in ("package", "pack", "editor"):
        assert Path(str(found[key])).is_relative_to(site), (key, found[key])
    assert str(found["pack"]).endswith("latentloom/_builtin_nodes")
    assert str(found["editor"]).endswith("latentloom/_editor")
    assert found["nodes"] == builtin_ids()


@pytest.fixture(scope="module")
def installed(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install .` (not editable) into a fresh venv; its `latentloom` command."""
    folder = tmp_path_factory.mktemp("installed")
    python = fresh_venv(folder / "venv")
    pip(
        "--python",
        str(python),
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        str(source),
    )
    return folder / "venv" / "bin" / "latentloom"


@pytest.fixture
def serving(installed: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    command = [str(installed), "serve", "--port", str(port), "--data", str(tmp_path / "data")]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while server.poll() is None and time.monotonic() < deadline:
            try:
                wait_until_ready(base_url, timeout=1.0)
                break
            except (TimeoutError, httpx.HTTPError):
                continue
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        wait_until_ready(base_url, timeout=5.0)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()


def test_latentloom_serve_works_from_a_non_editable_install(serving: str) -> None:
    page = httpx.get(f"{serving}/", timeout=30)
    assert page.status_code == 200
    assert page.text == (EDITOR / "index.html").read_text()
    catalog = httpx.get(f"{serving}/api/nodes", timeout=30).json()["nodes"]
    assert sorted(node["id"] for node in catalog) == builtin_ids()
    system = httpx.get(f"{serving}/api/system", timeout=30).json()
    assert system["engine"] == "ready" and system["demo_checkpoint"] == "tiny-sd15.safetensors"
