"""Cold process -> first image, against the same work with the imports done beforehand.

The warm-up (backend/latentloom/warmup.py) exists so that importing torch, diffusers and
transformers stays off a first job's critical path; this measures how much of a cold start
is still more than the job itself. Each figure is wall time on the tiny SD 1.x checkpoint,
workflows/txt2img.json (256x256, 12 steps), CPU, interleaved rounds, median:

  server cold   `latentloom serve` spawned, POST /api/jobs?wait=true the moment the socket
                answers, until the job has ended (spawn -> image);
  server floor  a server whose worker has said Ready (engine built, stack warm): POST -> image;
  CLI cold      `latentloom run` as a fresh process (spawn -> exit);
  CLI floor     `latentloom run` through `cli.main` in a process that imported and warmed
                the stack first (`warm_up_engine_stack`), timed from the call.

Ratios cold / floor: 1.0 would mean a cold start costs nothing beyond the job. The floor still
loads the checkpoint and builds the modules; only imports, kernels and tokenizers are done.
The CLI's CPU seconds (user + system) are printed too: on a shared machine wall time mostly
measures the neighbours, CPU time what the process itself did.

    .venv/bin/python -m bench.first_image [--rounds 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import WORKFLOWS, tiny_models
from bench.server_startup import first_image_through_cli, first_image_through_server
from bench.serving import median, post_job, spawn_server, thread_env
from latentloom.graph.workflow import load_workflow_file

# In a fresh interpreter: warm the stack, then time the CLI's own `run` on the workflow.
CLI_FLOOR = """
import json, sys, time
from latentloom.warmup import warm_up_engine_stack
from latentloom import cli
warm_up_engine_stack("cpu")
started, cpu = time.perf_counter(), time.process_time()
code = cli.main(["run", *sys.argv[1:]])
print(json.dumps({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                  "code": code}))
"""


def cli_floor(
    models: Path, output: Path, workflow_file: Path, threads: int | None
) -> tuple[float, float]:
    """(wall, CPU) seconds of `cli.main` in a process whose stack is warm."""
    arguments = [str(workflow_file), "--models", str(models), "--output", str(output)]
    # What `latentloom run` sets for itself before torch loads (here torch loads first).
    environment = {**(thread_env(threads) or os.environ), "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(
        [sys.executable, "-c", CLI_FLOOR, *arguments, "--device", "cpu"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env=environment,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0 or not list(output.glob("*.png")):
        raise RuntimeError(f"the warm `latentloom run` failed: {done.stderr[-2000:]}")
    return float(result["seconds"]), float(result["cpu"])


def cli_cold(
    models: Path, output: Path, workflow_file: Path, threads: int | None
) -> tuple[float, float]:
    """(wall, CPU) seconds of `latentloom run` as a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = first_image_through_cli(models, output, workflow_file, threads)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def server_floor(models: Path, data: Path, threads: int | None) -> float:
    server = spawn_server(models, data, threads=threads)
    try:
        server.wait_ready()
        deadline = time.monotonic() + 600
        with httpx.Client(timeout=600.0) as client:
            while not (client.get(f"{server.base_url}/api/system").json()["worker"] or {}).get(
                "ready"
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the worker never said Ready{server.tail()}")
                time.sleep(0.05)
            started = time.perf_counter()
            workflow = load_workflow_file(WORKFLOWS / "txt2img.json")
            job = post_job(client, server.base_url, workflow, wait=True)["jobs"][0]
            elapsed = time.perf_counter() - started
    finally:
        server.stop()
    if job["status"] != "succeeded":
        raise RuntimeError(f"the job did not succeed: {job}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args()
    workflow_file = WORKFLOWS / "txt2img.json"
    workflow = load_workflow_file(workflow_file)
    figures: dict[str, list[float]] = {"server cold": [], "server floor": []}
    figures.update({"CLI cold": [], "CLI floor": [], "CLI cold CPU": [], "CLI floor CPU": []})
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        models = tiny_models(root)
        for index in range(args.rounds):  # interleaved: a busy machine drifts
            figures["server cold"].append(
                first_image_through_server(models, root / f"sc{index}", workflow, args.threads)
            )
            figures["server floor"].append(server_floor(models, root / f"sf{index}", args.threads))
            for kind, measure in (("cold", cli_cold), ("floor", cli_floor)):
                wall, cpu = measure(models, root / f"c{kind}{index}", workflow_file, args.threads)
                figures[f"CLI {kind}"].append(wall)
                figures[f"CLI {kind} CPU"].append(cpu)
    print(
        f"cold process -> first image, tiny SD 1.x, txt2img 256x256 12 steps, CPU, "
        f"median of {args.rounds} interleaved rounds"
    )
    for name, values in figures.items():
        shown = ", ".join(f"{value:.2f}" for value in values)
        print(f"  {name:<13} {median(values):7.2f} s   ({shown})")
    for kind, cold, floor in (
        ("server", "server cold", "server floor"),
        ("CLI", "CLI cold", "CLI floor"),
        ("CLI CPU", "CLI cold CPU", "CLI floor CPU"),
    ):
        ratio = median(figures[cold]) / median(figures[floor])
        print(f"  {kind} cold / floor: {ratio:.2f}x")


if __name__ == "__main__":
    main()
