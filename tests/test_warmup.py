"""The warm-up: steps run in order on one thread, `wait(step)` gates on each, a failing step
is reported and skipped; and after `warm_up_engine_stack` a first job imports nothing heavy,
T5's model included: neither the warm-up nor loading an SD 1.5 file asks for it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from latentloom.warmup import Warmup, import_modules, run_steps

REPO = Path(__file__).resolve().parents[1]


def test_steps_run_in_order_and_each_can_be_waited_for() -> None:
    gate, ran = threading.Event(), []

    def gated() -> None:
        gate.wait(10)
        ran.append("gated")

    warmup = Warmup([("first", lambda: ran.append("first")), ("gated", gated)]).start()
    assert warmup.wait("first", timeout=10)
    assert not warmup.wait("gated", timeout=0.05) and not warmup.done()
    assert not warmup.wait(timeout=0.0)
    gate.set()
    assert warmup.wait(timeout=10) and warmup.done()
    assert ran == ["first", "gated"]
    assert warmup.report is not None and list(warmup.report.seconds) == ["first", "gated"]


def test_a_warmup_never_started_counts_as_done() -> None:
    warmup = Warmup([("never", lambda: None)])
    assert warmup.done() and warmup.wait() and warmup.wait("never")


def test_an_unknown_step_name_is_refused_with_the_names() -> None:
    warmup = Warmup([("imports", lambda: None)]).start()
    with pytest.raises(ValueError, match=r"no warm-up step 'import'; the steps are: imports"):
        warmup.wait("import")


def test_a_failing_step_is_reported_and_the_rest_still_run() -> None:
    def broken() -> None:
        raise ImportError("No module named 'missing'")

    ran: list[str] = []
    report = run_steps([("broken", broken), ("after", lambda: ran.append("after"))])
    assert report.failed == {"broken": "ImportError: No module named 'missing'"}
    assert ran == ["after"] and set(report.seconds) == {"broken", "after"}


def test_a_module_that_fails_to_import_does_not_stop_the_rest() -> None:
    # Both are named: the second was tried after the first failed.
    expected = (
        r"^latentloom\.no_such_module: ModuleNotFoundError: .*; "
        r"latentloom\.no_other_module: ModuleNotFoundError: "
    )
    with pytest.raises(ImportError, match=expected):
        import_modules(
            ["latentloom.no_such_module", "latentloom.warmup", "latentloom.no_other_module"]
        )


# In a fresh interpreter: warm up, then run a tiny txt2img job (it loads a tiny SD 1.5 file) and
# list what it imported, and whether anything imported T5's model (only FLUX and SD 3 use it).
FIRST_JOB = """
import json, sys, tempfile
from pathlib import Path
from latentloom.engine.setup import make_engine
from latentloom.graph.workflow import load_workflow_file
from latentloom.warmup import warm_up_engine_stack
models = Path(sys.argv[1])
engine = make_engine(model_dirs=[models], output_dir=Path(tempfile.mkdtemp()),
                     input_dir=models, device="cpu")
report = warm_up_engine_stack("cpu")
before = set(sys.modules)
workflow = load_workflow_file(Path(sys.argv[2]))
for node, name, value in (("sampler", "steps", 1), ("latent", "width", 64), ("latent", "height", 64)):
    workflow = workflow.with_input(node, name, value)
engine.run(workflow)
heavy = ("torch", "diffusers", "transformers", "tokenizers", "scipy", "safetensors")
print(json.dumps({"failed": report.failed,
                  "imported": sorted(m for m in set(sys.modules) - before if m.startswith(heavy)),
                  "t5": sorted(m for m in sys.modules if m.startswith("transformers.models.t5"))}))
"""


def test_after_the_warm_up_a_first_job_imports_nothing_heavy(tmp_path: Path) -> None:
    from latentloom.models.tiny import make_tiny_checkpoint

    (tmp_path / "checkpoints").mkdir()
    make_tiny_checkpoint("sd15", tmp_path / "checkpoints" / "tiny-sd15.safetensors", seed=0)
    done = subprocess.run(
        [sys.executable, "-c", FIRST_JOB, str(tmp_path), str(REPO / "workflows" / "txt2img.json")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"failed": {}, "imported": [], "t5": []}
