"""Cold process -> first image, against ComfyUI's own server on the same job (issue 14's target).

One job, as a user meets it: txt2img on a full-size SD 1.5 checkpoint (random weights),
256², 4 steps, euler/normal, cfg 7, CPU, the same torch thread environment for every process
(OMP_NUM_THREADS = MKL_NUM_THREADS = --threads). Each round spawns three fresh processes in
turn, and the rounds are interleaved, median of --rounds:

  ComfyUI server  `main.py --cpu --listen 127.0.0.1 --port P --base-directory B` (a fresh B
                  per round: models/ links to the one checkpoint, empty custom_nodes/, its
                  own output/ and database), polled with GET /system_stats until it answers;
  our server      `latentloom serve --models M --data <fresh> --device cpu`, polled with
                  GET /api/system until it answers;
  our CLI         `latentloom run` of the same graph as a fresh process (spawn -> exit).

With --cold-disk the checkpoint is dropped from the page cache before every process spawns
(posix_fadvise DONTNEED: no root needed), as after a reboot: each side then reads it from
the disk, ComfyUI once its job loads it, ours while its worker imports (read-ahead).

The moment a server answers, the same body goes to both: POST /prompt with one ComfyUI API
prompt (ours serves ComfyUI's route and imports the prompt as an ordinary job). "Image" is
the moment a PNG appears in that server's output folder, polled from this process (a stat
every 10 ms costs the servers nothing); /history/{id} must then report success. Printed per
side: spawn -> socket, socket -> image, spawn -> image, and the ratios ours / ComfyUI. ComfyUI
has no CLI: our CLI is set against ComfyUI's server figure, as issue 14 did.

ComfyUI is GPL: none of its code is here; it is only run, from its own venv. Without
--comfy-python (or LATENTLOOM_COMFY_PYTHON and LATENTLOOM_COMFY_ROOT) this prints how to set
one up and exits 0. Its server also needs `requests alembic SQLAlchemy` and the
`comfyui-frontend-package` its requirements.txt pins; without torchvision the stand-in from
bench/comfy_side_by_side goes on its path (SD 1.5 never calls it).

    .venv/bin/python -m bench.comfy_first_image --comfy-python VENV/bin/python \\
        --comfy-root COMFYUI_DIR --checkpoint SD15_FILE [--rounds 3] [--threads 2] [--keep DIR] \\
        [--cold-disk]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.comfy_side_by_side import CHECKPOINT, SETUP, TORCHVISION_STANDIN, Settings, txt2img
from bench.serving import free_port, latentloom_command, median, spawn_server, thread_env

HOST = "127.0.0.1"
POLL_S = 0.01
JOB_TIMEOUT_S = 600.0
SERVER_SETUP = """\
ComfyUI's server (main.py) needs more than the side-by-side driver: in step 2 also
  VENV/bin/pip install requests alembic SQLAlchemy comfyui-frontend-package
(the frontend version ComfyUI's requirements.txt pins)."""


@dataclass(frozen=True)
class Timing:
    socket: float  # spawn -> the server answers (for the CLI: 0)
    image: float  # spawn -> the PNG exists

    @property
    def after_socket(self) -> float:
        return self.image - self.socket


def save_prompt(settings: Settings) -> dict[str, Any]:
    """The side-by-side txt2img prompt with a SaveImage, so that each tool writes a PNG."""
    prompt = txt2img(settings, "euler", "normal")
    del prompt["preview"]
    prompt["save"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["decode", 0], "filename_prefix": "first_image"},
    }
    return prompt


def wait_answering(url: str, process: subprocess.Popen[bytes], started: float, log: Path) -> float:
    """Seconds from spawn to the first 200 from `url`."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the server exited ({process.returncode}){tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(url).status_code == 200:
                    return time.perf_counter() - started
            time.sleep(POLL_S)
    raise TimeoutError(f"{url} did not answer in {JOB_TIMEOUT_S} s{tail(log)}")


def wait_image(output: Path, process: subprocess.Popen[bytes], started: float, log: Path) -> float:
    """Seconds from spawn until a PNG exists under `output`."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        if output.is_dir() and next(output.rglob("*.png"), None) is not None:
            return time.perf_counter() - started
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}){tail(log)}")
        time.sleep(POLL_S)
    raise TimeoutError(f"no image under {output} in {JOB_TIMEOUT_S} s{tail(log)}")


def queue_and_wait(
    base_url: str, prompt: dict[str, Any], output: Path, process: subprocess.Popen[bytes],
    started: float, log: Path,
) -> float:  # fmt: skip
    """POST /prompt at once; spawn -> image seconds, once /history says it succeeded."""
    with httpx.Client(timeout=JOB_TIMEOUT_S) as client:
        response = client.post(f"{base_url}/prompt", json={"prompt": prompt, "client_id": "bench"})
        if response.status_code != 200:
            raise RuntimeError(f"POST {base_url}/prompt: {response.status_code} {response.text}")
        prompt_id = response.json()["prompt_id"]
        seconds = wait_image(output, process, started, log)
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            entry = client.get(f"{base_url}/history/{prompt_id}").json().get(prompt_id)
            status = (entry or {}).get("status", {})
            if status.get("completed"):
                if status.get("status_str") != "success":
                    raise RuntimeError(f"{base_url}: the job did not succeed: {status}")
                return seconds
            time.sleep(0.1)
    raise TimeoutError(f"{base_url}: /history/{prompt_id} never reported the job done")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return "; log tail:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    return ""


def comfy_environment(args: argparse.Namespace, work: Path) -> dict[str, str]:
    """The shared thread env, plus the torchvision stand-in if ComfyUI's venv lacks it."""
    env = thread_env(args.threads) or dict(os.environ)
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torchvision') is None)"
    if subprocess.run([args.comfy_python, "-c", probe]).returncode != 0:
        stubs = work / "stubs" / "torchvision"
        stubs.mkdir(parents=True, exist_ok=True)
        for name, text in TORCHVISION_STANDIN.items():
            (stubs / name).write_text(text)
        env["PYTHONPATH"] = str(work / "stubs")
    return env


def comfy_server(
    args: argparse.Namespace, work: Path, round_: int, prompt: dict[str, Any]
) -> Timing:
    base = work / f"comfy-{round_}"
    for folder in ("custom_nodes", "user", "input", "output"):
        (base / folder).mkdir(parents=True)
    (base / "models").symlink_to(work / "models")
    port, log = free_port(), work / f"comfy-{round_}.log"
    command = [
        args.comfy_python, str(args.comfy_root.resolve() / "main.py"), *args.comfy_arg,
        "--listen", HOST, "--port", str(port), "--base-directory", str(base),
        "--database-url", f"sqlite:///{base / 'user' / 'comfyui.db'}",
    ]  # fmt: skip
    with log.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=args.comfy_env, cwd=base
        )
    try:
        base_url = f"http://{HOST}:{port}"
        socket = wait_answering(f"{base_url}/system_stats", process, started, log)
        image = queue_and_wait(base_url, prompt, base / "output", process, started, log)
    finally:
        stop(process)
    return Timing(socket, image)


def our_server(args: argparse.Namespace, work: Path, round_: int, prompt: dict[str, Any]) -> Timing:
    data = work / f"ours-{round_}"
    server = spawn_server(work / "models", data, threads=args.threads)
    try:
        socket = wait_answering(
            f"{server.base_url}/api/system", server.process, server.started, server.log
        )
        image = queue_and_wait(
            server.base_url, prompt, data / "output", server.process, server.started, server.log
        )
    finally:
        server.stop()
    return Timing(socket, image)


def our_cli(args: argparse.Namespace, work: Path, round_: int, workflow_file: Path) -> Timing:
    output = work / f"run-{round_}"
    command = [
        *latentloom_command(), "run", str(workflow_file), "--models", str(work / "models"),
        "--output", str(output), "--device", "cpu",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=thread_env(args.threads))
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or next(output.rglob("*.png"), None) is None:
        raise RuntimeError(f"latentloom run failed ({done.returncode}): {done.stderr[-2000:]}")
    return Timing(0.0, elapsed)


def prepare(args: argparse.Namespace, work: Path, prompt: dict[str, Any]) -> Path:
    """The shared models folder, and the prompt as our workflow file for the CLI."""
    from latentloom.interop.comfy.api_format import import_api_prompt

    checkpoints = work / "models" / "checkpoints"
    checkpoints.mkdir(parents=True)
    if args.checkpoint:
        (checkpoints / CHECKPOINT).symlink_to(args.checkpoint.resolve())
    else:
        from latentloom.models.tiny import make_sd15_checkpoint

        print("writing a full-size random SD 1.5 checkpoint (~2.1 GB)...", flush=True)
        make_sd15_checkpoint(checkpoints / CHECKPOINT, seed=0)
    workflow_file = work / "txt2img.json"
    workflow_file.write_text(json.dumps(import_api_prompt(prompt).workflow))
    return workflow_file


def drop_from_page_cache(path: Path) -> None:
    """Forget the file's cached pages, so the next reader reads the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def report(args: argparse.Namespace, runs: dict[str, list[Timing]]) -> None:
    def mid(name: str, field: str) -> float:
        return median([getattr(timing, field) for timing in runs[name]])

    print(
        f"\ncold process -> first image: full-size SD 1.5 (random weights), txt2img "
        f"{args.size}², {args.steps} steps, euler/normal, cfg 7, CPU, {args.threads} threads; "
        f"median of {args.rounds} interleaved rounds (ComfyUI flags: {' '.join(args.comfy_arg)})"
        f"{'; checkpoint dropped from the page cache before each spawn' if args.cold_disk else ''}"
    )
    print(f"{'':24} {'spawn->socket':>14} {'socket->image':>14} {'spawn->image':>13}  rounds")
    for name in runs:
        each = " ".join(f"{timing.image:.2f}" for timing in runs[name])
        socket = f"{mid(name, 'socket'):14.2f}" if name != "ours (CLI run)" else f"{'-':>14}"
        print(
            f"{name:24} {socket} {mid(name, 'after_socket'):14.2f} {mid(name, 'image'):13.2f}  {each}"
        )
    comfy = mid("ComfyUI (server)", "image")
    print(
        f"ours (server) / ComfyUI (server): {mid('ours (server)', 'image') / comfy:.3f} (goal <= 0.80)"
    )
    print(
        f"ours (CLI run) / ComfyUI (server): {mid('ours (CLI run)', 'image') / comfy:.3f} (goal <= 0.80)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--comfy-python", default=os.environ.get("LATENTLOOM_COMFY_PYTHON"))
    parser.add_argument(
        "--comfy-root", type=Path, default=os.environ.get("LATENTLOOM_COMFY_ROOT"),
        help="ComfyUI's source folder (has main.py)",
    )  # fmt: skip
    parser.add_argument("--comfy-arg", action="append", help="a ComfyUI flag (default: --cpu)")
    parser.add_argument("--checkpoint", type=Path, help="a full-size SD 1.5 file to reuse")
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep its logs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads, every process")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--cold-disk", action="store_true", help="read the checkpoint from disk in every process"
    )
    args = parser.parse_args()
    if not args.comfy_python:
        print(SETUP.replace("bench.comfy_side_by_side", "bench.comfy_first_image"))
        print(SERVER_SETUP)
        return
    if args.comfy_root is None or not (args.comfy_root / "main.py").is_file():
        sys.exit("--comfy-root must name ComfyUI's source folder (the one holding main.py)")
    args.comfy_arg = args.comfy_arg or ["--cpu"]
    prompt = save_prompt(Settings(args.steps, 7.0, args.size, 42))
    runs: dict[str, list[Timing]] = {
        "ComfyUI (server)": [],
        "ours (server)": [],
        "ours (CLI run)": [],
    }
    with tempfile.TemporaryDirectory(prefix="comfy-first-image-") as scratch:
        work = args.keep or Path(scratch)
        workflow_file = prepare(args, work, prompt)
        args.comfy_env = comfy_environment(args, work)
        checkpoint = work / "models" / "checkpoints" / CHECKPOINT

        def cold() -> None:
            if args.cold_disk:
                drop_from_page_cache(checkpoint)

        for round_ in range(args.rounds):
            cold()
            runs["ComfyUI (server)"].append(comfy_server(args, work, round_, prompt))
            cold()
            runs["ours (server)"].append(our_server(args, work, round_, prompt))
            cold()
            runs["ours (CLI run)"].append(our_cli(args, work, round_, workflow_file))
            done = {name: f"{timings[-1].image:.2f} s" for name, timings in runs.items()}
            print(f"round {round_ + 1}: {done}", flush=True)
    report(args, runs)


if __name__ == "__main__":
    main()
