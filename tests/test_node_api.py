"""The public node API: nodes import only `latentloom.api`, and a third-party pack built on it runs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

import latentloom.api as api
from latentloom.graph.workflow import parse_workflow
from tests.support import REPO, make_engine

PUBLIC_MODULE = "latentloom.api"
PACKS = [REPO / "nodes", REPO / "tests" / "fixtures" / "packs"]
VIGNETTE_PACK = REPO / "tests" / "fixtures" / "packs" / "vignette"


def private_imports(path: Path, root: Path = REPO) -> list[str]:
    """`latentloom` modules other than the public one that a file imports, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "latentloom":  # `from latentloom import engine` is private too
                modules = [f"latentloom.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            if module.split(".")[0] == "latentloom" and module != PUBLIC_MODULE:
                found.append(f"{path.relative_to(root)}:{node.lineno} imports {module}")
    return found


def test_node_packs_import_only_the_public_api() -> None:
    files = [path for folder in PACKS for path in sorted(folder.rglob("*.py"))]
    assert len(files) >= 8
    assert [line for path in files for line in private_imports(path)] == []


def test_the_boundary_check_sees_private_imports(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "import latentloom.engine.cache\n"
        "from latentloom import registry\n"
        "def f():\n    from latentloom.models.load import load_checkpoint\n"
        "from latentloom.api import NodeSpec\n"
    )
    problems = [line.split(" imports ")[1] for line in private_imports(sneaky, tmp_path)]
    assert problems == ["latentloom.engine.cache", "latentloom.registry", "latentloom.models.load"]


def test_every_public_name_exists() -> None:
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert missing == []


def test_importing_the_api_loads_no_model_stack() -> None:
    code = (
        "import sys, latentloom.api; "
        "print(sorted(m for m in ('diffusers', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_third_party_pack_on_the_public_api_runs(tmp_path: Path) -> None:
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    Image.new("RGB", (64, 48), (200, 100, 50)).save(input_dir / "flat.png")
    engine = make_engine(tmp_path / "models", tmp_path / "output", input_dir, VIGNETTE_PACK)
    assert engine.registry.specs["example.vignette"].display_name == "Vignette"
    workflow = parse_workflow(
        {
            "schema": "latentloom/workflow",
            "version": 2,
            "nodes": {
                "load": {"type": "image.load", "inputs": {"image": "flat.png"}},
                "vignette": {
                    "type": "example.vignette",
                    "inputs": {"image": {"node": "load", "output": "image"}, "strength": 1.0},
                },
                "save": {
                    "type": "image.save",
                    "inputs": {"images": {"node": "vignette", "output": "image"}},
                },
            },
        }
    )
    assert engine.validate(workflow) == []
    engine.run(workflow)
    [saved] = list((tmp_path / "output").glob("*.png"))
    with Image.open(saved) as image:
        corner, centre = image.getpixel((0, 0)), image.getpixel((32, 24))
    assert corner == (0, 0, 0)  # strength 1: the corner is at distance 1
    assert all(abs(a - b) <= 1 for a, b in zip(centre, (200, 100, 50), strict=True))
    assert torch.is_tensor(api.from_pil(Image.new("RGB", (2, 2))))
