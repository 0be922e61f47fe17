"""`latentloom import-comfy`, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from latentloom.graph.workflow import parse_workflow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfy"


def latentloom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "latentloom.cli", *args]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_complete_import_writes_the_workflow_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "wf.json"
    done = latentloom(
        "import-comfy", str(FIXTURES / "editor_v04_txt2img.json"), "-o", str(out), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    workflow = parse_workflow(json.loads(out.read_text()))
    assert workflow.nodes["3"].type == "sampling.ksampler"
    assert "read comfy-editor (json)" in done.stderr
    assert '"3" KSampler -> sampling.ksampler' in done.stderr
    assert 'note: Primitive node "12" (COMBO) was folded' in done.stderr


def test_without_o_the_workflow_goes_to_stdout(tmp_path: Path) -> None:
    done = latentloom("import-comfy", str(FIXTURES / "api_txt2img.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["nodes"]["4"]["inputs"] == {
        "checkpoint": "tiny-sd15.safetensors",
        "prediction": "auto",
        "weight_dtype": "default",
    }


def test_unsupported_nodes_are_listed_and_exit_3(tmp_path: Path) -> None:
    prompt = json.loads((FIXTURES / "api_txt2img.json").read_text())
    prompt["10"] = {"class_type": "FreeU_V2", "inputs": {"model": ["4", 0], "b1": 1.3}}
    prompt["3"]["inputs"]["model"] = ["10", 0]
    source = tmp_path / "freeu.json"
    source.write_text(json.dumps(prompt))
    done = latentloom("import-comfy", str(source), "-o", str(tmp_path / "out.json"), cwd=tmp_path)
    assert done.returncode == 3
    assert "unsupported 1 node(s), kept as placeholders:" in done.stderr
    assert '"10" FreeU_V2: no Latentloom node for this class yet' in done.stderr
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["nodes"]["10"]["type"] == "comfy:FreeU_V2"


def test_malformed_file_exits_2_with_the_error_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "broken.json"
    source.write_text('{"3": {"class_type": "KSampler", "inputs": {"model": ["4", 0]}}}')
    out = tmp_path / "out.json"
    done = latentloom("import-comfy", str(source), "-o", str(out), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        f'error: {source}: prompt["3"].inputs.model: links to node "4", '
        "which the prompt does not have\n"
    )
    assert not out.exists()


def test_missing_file_exits_2(tmp_path: Path) -> None:
    done = latentloom("import-comfy", str(tmp_path / "nope.png"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: [Errno 2] No such file or directory")
