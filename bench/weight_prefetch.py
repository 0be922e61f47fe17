"""Converting the checkpoint beside the imports (models/weight_prefetch.py), against not doing so.

A cold process that loads a full-size SD 1.5-shaped fp16 checkpoint into fp32 on the CPU, as
`latentloom run` does before its first step, timed from its first line until the modules are
loaded, each in a fresh process, interleaved rounds, median:

  sequential  import torch, import the engine stack (diffusers, transformers: warmup.py's
              modules), then `load_checkpoint`;
  prefetch    import torch, `weight_prefetch.start`, the same imports, then `load_checkpoint`
              (which takes the tensors converted meanwhile).

Prints both, the ratio prefetch / sequential, each side's peak RSS over the loaded weights
(a prefetch hands its tensors over, so it must not grow), and how many tensors the load took
converted. The gain needs a core the imports leave idle, as `latentloom run` has (the server's
worker child does not prefetch: models/weight_prefetch.py says why).

    .venv/bin/python -m bench.weight_prefetch [--keep FILE] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import add_full_size_options, full_size_sd15

COLD_LOAD = """
import time
started = time.perf_counter()
import json, resource, sys
from pathlib import Path
import torch
from latentloom.models import weight_prefetch
path = Path(sys.argv[1])
prefetch = weight_prefetch.start(path, torch.float32) if sys.argv[2] == "prefetch" else None
from latentloom.warmup import import_modules
import_modules()
from latentloom.models.load import load_checkpoint
loaded = load_checkpoint(path, device="cpu", dtype=torch.float32)
seconds = time.perf_counter() - started
modules = [loaded.model.unet, loaded.vae.module] + [e.model for e in loaded.clip.encoders]
weights = sum(t.numel() * t.element_size() for m in modules for t in [*m.parameters(), *m.buffers()])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
handed = prefetch.handed if prefetch is not None else 0
print(json.dumps({"seconds": seconds, "weights": weights, "peak": peak, "handed": handed}))
"""


def measure(path: Path, mode: str) -> dict[str, float]:
    # As `latentloom run` sets it before torch loads (cli.py): OpenMP threads that sleep while
    # they wait rather than spin against the importing thread.
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
    done = subprocess.run(
        [sys.executable, "-c", COLD_LOAD, str(path), mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    add_full_size_options(parser)
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"sequential": [], "prefetch": []}
    with tempfile.TemporaryDirectory() as scratch:
        path = full_size_sd15(args.keep, scratch)
        measure(path, "sequential")  # warms the page cache and the bytecode caches
        for _ in range(args.rounds):
            for mode, results in runs.items():
                results.append(measure(path, mode))

    def median(mode: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[mode])

    print(
        "cold process -> full-size SD 1.5 checkpoint loaded (fp16 file -> fp32, CPU), "
        f"median of {args.rounds} interleaved rounds"
    )
    for mode in runs:
        print(
            f"  {mode:<10}  {median(mode, 'seconds'):6.2f} s   peak RSS "
            f"{median(mode, 'peak') / median(mode, 'weights'):.3f}x the weights   tensors "
            f"taken converted: {median(mode, 'handed'):.0f}"
        )
    ratio = median("prefetch", "seconds") / median("sequential", "seconds")
    print(f"  prefetch / sequential: {ratio:.3f}")


if __name__ == "__main__":
    main()
