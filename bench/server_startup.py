"""Server start-up: process spawn -> /api/system answering, -> engine ready, -> first image.

1. `latentloom serve` spawned (subprocess.Popen, fresh --data each time) until the first 200
   from GET /api/system: the socket must come up before torch and the models load. Target
   <= 3 s, median of --starts. Also spawn -> /api/system reporting the engine ready.
2. Cold start -> first image: spawn the server, and once it answers POST the txt2img example
   with ?wait=true; vs `latentloom run` of the same workflow as a fresh process. Both include
   Python start-up, imports, model load and the whole job; interleaved, median of --repeats.

    .venv/bin/python -m bench.server_startup [--starts 3] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import WORKFLOWS, tiny_models
from bench.serving import latentloom_command, median, post_job, spawn_server, thread_env
from latentloom.graph.workflow import Workflow, load_workflow_file

SOCKET_TARGET_S = 3.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads in every process (default: torch's own)"
    )
    args = parser.parse_args()
    threads = args.threads
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        models = tiny_models(root)
        answering, ready = [], []
        for index in range(args.starts):
            server = spawn_server(models, root / f"start-{index}", threads=threads)
            try:
                answering.append(server.wait_answering())
                ready.append(server.wait_ready())
            finally:
                server.stop()

        workflow_file = WORKFLOWS / "txt2img.json"
        workflow = load_workflow_file(workflow_file)
        served, ran = [], []
        for index in range(args.repeats):  # interleaved
            served.append(
                first_image_through_server(models, root / f"cold-{index}", workflow, threads)
            )
            ran.append(
                first_image_through_cli(models, root / f"run-{index}", workflow_file, threads)
            )

    socket_s = median(answering)
    threads_note = f"{threads} torch threads" if threads else "torch's default threads"
    print(
        f"server start-up, tiny SD 1.x checkpoint, CPU ({threads_note}), "
        f"median of {args.starts} starts"
    )
    print(f"  spawn -> GET /api/system answers   {socket_s * 1000:8.1f} ms (target <= 3000 ms)")
    print(f"  spawn -> engine ready              {median(ready) * 1000:8.1f} ms")
    print(f"  answering: {'ok' if socket_s <= SOCKET_TARGET_S else 'OVER TARGET'}")
    print(
        f"cold start -> first image, workflows/txt2img.json (256x256, 12 steps), "
        f"median of {args.repeats}, interleaved"
    )
    print(f"  latentloom serve + POST ?wait=true {median(served) * 1000:8.1f} ms")
    print(f"  latentloom run                     {median(ran) * 1000:8.1f} ms (baseline)")
    print(f"  ratio serve / run: {median(served) / median(ran):.3f}")


def first_image_through_server(
    models: Path, data: Path, workflow: Workflow, threads: int | None
) -> float:
    server = spawn_server(models, data, threads=threads)
    try:
        server.wait_answering()
        with httpx.Client(timeout=600.0) as client:
            job = post_job(client, server.base_url, workflow, wait=True)["jobs"][0]
        elapsed = time.perf_counter() - server.started
    finally:
        server.stop()
    if job["status"] != "succeeded" or not list((data / "output").glob("*.png")):
        raise RuntimeError(f"the first job did not produce an image: {job}")
    return elapsed


def first_image_through_cli(
    models: Path, output: Path, workflow_file: Path, threads: int | None
) -> float:
    command = [
        *latentloom_command(),
        "run",
        str(workflow_file),
        "--models",
        str(models),
        "--output",
        str(output),
        "--device",
        "cpu",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600, env=thread_env(threads))
    elapsed = time.perf_counter() - started
    if not list(output.glob("*.png")):
        raise RuntimeError("latentloom run wrote no image")
    return elapsed


if __name__ == "__main__":
    main()
