"""The command line, run as a user runs it: a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from latentloom.cli import parse_override
from latentloom.images import read_png_workflow
from tests.support import REPO, WORKFLOWS


def latentloom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "latentloom.cli", *args]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_run_prints_where_outputs_went_and_applies_overrides(
    models_dir: Path, tmp_path: Path
) -> None:
    done = latentloom(
        "run",
        str(WORKFLOWS / "txt2img.json"),
        "--models",
        str(models_dir),
        "--output",
        str(tmp_path / "out"),
        "--device",
        "cpu",
        "--set",
        "sampler.steps=3",
        "--set",
        "positive.text=a red fox",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    saved = Path(done.stdout.strip())
    assert saved.parent == (tmp_path / "out").resolve() and saved.suffix == ".png"
    embedded = read_png_workflow(saved)
    assert embedded["nodes"]["sampler"]["inputs"]["steps"] == 3
    assert embedded["nodes"]["positive"]["inputs"]["text"] == "a red fox"
    assert "3/3" in done.stderr  # the sampler's progress bar


def test_invalid_workflow_exits_2_listing_every_problem(models_dir: Path, tmp_path: Path) -> None:
    broken = REPO / "tests" / "fixtures" / "broken" / "many_problems.json"
    done = latentloom(
        "run", str(broken), "--models", str(models_dir), "--output", str(tmp_path), cwd=tmp_path
    )
    assert done.returncode == 2
    assert "workflow is invalid" in done.stderr
    assert "unknown node type 'conditioning.encode'" in done.stderr
    assert "'eulr' is not one of" in done.stderr
    assert "has no input 'sed'" in done.stderr
    assert not list(tmp_path.glob("*.png"))


def test_nodes_lists_the_catalog(tmp_path: Path) -> None:
    done = latentloom("nodes", cwd=tmp_path)
    assert done.returncode == 0
    assert "sampling.ksampler" in done.stdout and "KSampler" in done.stdout


def test_override_values_parse_as_json_or_text() -> None:
    assert parse_override("sampler.seed=42") == ("sampler", "seed", 42)
    assert parse_override("morph.ratio=[0, 0.5, 1]") == ("morph", "ratio", [0, 0.5, 1])
    assert parse_override("positive.text=a cat, (fluffy:1.2)") == (
        "positive",
        "text",
        "a cat, (fluffy:1.2)",
    )
