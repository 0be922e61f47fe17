"""ComfyUI's API on our server vs our own: `/prompt` → `execution_success` over `/api/jobs`.

One `latentloom serve` (tiny checkpoint, CPU) answers both. The workflow is the txt2img
example exported to ComfyUI's API format; our side queues what the importer makes of that
same prompt, so both run the same graph. Each repeat changes the seed (sampler, decode and
save run again; checkpoint and prompts stay cached). ComfyUI side: POST /prompt, then wait on
`/ws?clientId=` for `execution_success` of that prompt id (import, validation, ledger, queue,
worker, event translation). Ours: POST /api/jobs, then wait on `/ws?jobs=all` for
`job.finished`. Both websockets stay open the whole run, so fan-out costs both alike; runs
alternate; median of --repeats. Target: ratio <= 1.05.

    .venv/bin/python -m bench.comfy_api_overhead [--repeats 7] [--steps 4] [--size 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.common import tiny_models
from bench.serving import median, running_server, txt2img
from latentloom.interop.comfy.api_format import import_api_prompt
from latentloom.interop.comfy.exporter import export_api
from latentloom.registry import build_registry

CLIENT_ID = "bench-comfy-client"
TIMEOUT_S = 600.0


def with_seed(prompt: dict[str, Any], seed: int) -> dict[str, Any]:
    changed = copy.deepcopy(prompt)
    for node in changed.values():
        if node["class_type"] == "KSampler":
            node["inputs"]["seed"] = seed
    return changed


async def wait_for(websocket: Any, matches: Any) -> None:
    while True:
        frame = await asyncio.wait_for(websocket.recv(), TIMEOUT_S)
        if isinstance(frame, str) and matches(json.loads(frame)):
            return


async def measure(
    base_url: str, prompt: dict[str, Any], repeats: int
) -> tuple[list[float], list[float]]:
    ws_base = base_url.replace("http://", "ws://", 1)
    comfy_s: list[float] = []
    ours_s: list[float] = []
    async with (
        httpx.AsyncClient(timeout=TIMEOUT_S) as client,
        websockets.connect(f"{ws_base}/ws?clientId={CLIENT_ID}", max_size=None) as comfy_ws,
        websockets.connect(f"{ws_base}/ws?jobs=all", max_size=None) as ours_ws,
    ):
        await comfy_ws.recv()  # status
        await ours_ws.recv()  # hello

        async def through_comfy(seed: int) -> float:
            body = {"prompt": with_seed(prompt, seed), "client_id": CLIENT_ID}
            started = time.perf_counter()
            answer = await client.post(f"{base_url}/prompt", content=json.dumps(body))
            if answer.status_code != 200:
                raise RuntimeError(f"POST /prompt: {answer.status_code} {answer.text[:500]}")
            prompt_id = answer.json()["prompt_id"]
            await wait_for(
                comfy_ws,
                lambda m: m["type"] == "execution_success" and m["data"]["prompt_id"] == prompt_id,
            )
            return time.perf_counter() - started

        async def through_ours(seed: int) -> float:
            workflow = import_api_prompt(with_seed(prompt, seed)).workflow
            started = time.perf_counter()
            answer = await client.post(f"{base_url}/api/jobs", json={"workflow": workflow})
            if answer.status_code != 201:
                raise RuntimeError(f"POST /api/jobs: {answer.status_code} {answer.text[:500]}")
            job_id = answer.json()["jobs"][0]["id"]
            await wait_for(
                ours_ws,
                lambda m: (
                    m.get("type") == "event"
                    and m["event"]["kind"] == "job.finished"
                    and m["event"]["job"] == job_id
                ),
            )
            return time.perf_counter() - started

        await through_comfy(1), await through_ours(2)  # warm-up: checkpoint and prompts cached
        for repeat in range(repeats):  # alternating, so drift in load hits both alike
            comfy_s.append(await through_comfy(1000 + 2 * repeat))
            ours_s.append(await through_ours(1001 + 2 * repeat))
    return comfy_s, ours_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="the server's torch CPU threads")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    workflow = txt2img(sampler__steps=args.steps, latent__width=args.size, latent__height=args.size)
    prompt, _ = export_api(workflow, build_registry())
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with running_server(tiny_models(root), root / "data", threads=args.threads) as server:
            comfy_s, ours_s = asyncio.run(measure(server.base_url, prompt, args.repeats))
    comfy, ours = median(comfy_s), median(ours_s)
    print(
        f"queue -> done, txt2img exported to ComfyUI's API format, tiny SD 1.x, "
        f"{args.size}x{args.size}, {args.steps} steps, warm, seed varied, "
        f"server threads {args.threads}, median of {args.repeats}"
    )
    print(f"  ComfyUI API: POST /prompt -> execution_success   {comfy * 1000:8.1f} ms")
    print(f"  ours: POST /api/jobs -> job.finished             {ours * 1000:8.1f} ms (baseline)")
    print(
        "  samples (ms), in run order: ComfyUI API "
        + " ".join(f"{s * 1000:.0f}" for s in comfy_s)
        + " | ours "
        + " ".join(f"{s * 1000:.0f}" for s in ours_s)
    )
    print(f"  ratio ComfyUI API / ours: {comfy / ours:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
