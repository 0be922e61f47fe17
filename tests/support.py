"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import Workflow, load_workflow_file

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"


def make_engine(models_dir: Path, output_dir: Path, input_dir: Path) -> Engine:
    """A CPU engine over the built-in pack, with a fresh cache."""
    from latentloom.engine.setup import make_engine as build

    return build(model_dirs=[models_dir], output_dir=output_dir, input_dir=input_dir, device="cpu")


def load_example(name: str) -> Workflow:
    return load_workflow_file(WORKFLOWS / name)
