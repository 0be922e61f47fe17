"""`latentloom export-comfy`, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.interop.test_export_api import TXT2IMG_PROMPT
from tests.support import WORKFLOWS


def latentloom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "latentloom.cli", *args]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_export_writes_the_api_prompt_and_reports_to_stderr(tmp_path: Path) -> None:
    done = latentloom(
        "export-comfy", str(WORKFLOWS / "txt2img.json"), "-o", "out.json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out.json").read_text()) == TXT2IMG_PROMPT
    assert done.stdout == ""
    assert "exported  sampler: sampling.ksampler -> KSampler" in done.stderr
    assert "warning   node \"positive\" (Encode Prompt): weighting is 'a1111'" in done.stderr


def test_export_of_what_comfyui_cannot_run_exits_3_naming_it(tmp_path: Path) -> None:
    done = latentloom(
        "export-comfy", str(WORKFLOWS / "latent_morph.json"), "--format", "editor", cwd=tmp_path
    )
    assert done.returncode == 3
    editor = json.loads(done.stdout)  # without -o the document goes to stdout
    assert editor["version"] == 0.4 and len(editor["nodes"]) == 8
    assert (
        "left out  animation: image.save_animation: ComfyUI has no class for Save Animation"
        in done.stderr
    )
    assert "2 node(s) left out: ComfyUI cannot run them" in done.stderr


def test_export_of_a_file_that_is_not_a_workflow_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"nodes": []}')
    done = latentloom("export-comfy", "bad.json", cwd=tmp_path)
    assert done.returncode == 2
    assert "not a Latentloom workflow" in done.stderr
