"""Cache: re-running an unchanged txt2img workflow, and with a new seed, vs the first run.

.venv/bin/python -m bench.cache
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

from bench.common import WORKFLOWS, cpu_engine, tiny_models
from latentloom.graph.workflow import load_workflow_file


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        tiny_models(root)
        engine = cpu_engine(root)
        workflow = load_workflow_file(WORKFLOWS / "txt2img.json")
        rows = []
        for label, variant in [
            ("first run (loads the checkpoint)", workflow),
            ("re-run, unchanged", workflow),
            ("re-run, new seed", workflow.with_input("sampler", "seed", 7)),
            ("re-run, new prompt", workflow.with_input("positive", "text", "a dog")),
        ]:
            started = time.perf_counter()
            result = engine.run(variant)
            rows.append((label, time.perf_counter() - started, result.executed))
    first = rows[0][1]
    print("cache, txt2img workflow, tiny SD 1.x, 256x256, 12 steps, CPU")
    for label, seconds, executed in rows:
        print(
            f"  {label:<34} {seconds * 1000:9.1f} ms  {seconds / first:6.3f}x first  executed: {executed}"
        )


if __name__ == "__main__":
    main()
