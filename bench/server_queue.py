"""Queue throughput: how many jobs per second POST /api/jobs accepts.

A `latentloom serve` subprocess with the tiny checkpoint; after a warm-up job, a long txt2img
(1000 steps) is queued so the worker is busy for the whole measurement and the jobs under
test only accumulate in the queue: what is measured is acceptance (parse, validate, write to
the ledger, announce), not execution. Then --jobs POSTs of a cheap, valid workflow (runs=1),
once from one keep-alive client in sequence and once from --clients clients at a time. Every
job is cancelled (DELETE) at the end. The busy worker shares the CPU with the server, as it
does in use.

    .venv/bin/python -m bench.server_queue [--jobs 200] [--clients 8] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import tiny_models
from bench.serving import (
    Server,
    cheap_workflow,
    median,
    percentile,
    post_job,
    running_server,
    txt2img,
)

BLOCKER_STEPS = 1000
RUNNING_TIMEOUT_S = 120.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads in the server (default: torch's own)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with running_server(tiny_models(root), root / "data", threads=args.threads) as server:
            results, cancelled, left = measure(server, args.jobs, args.clients)
    print(
        f"queue throughput, POST /api/jobs of a cheap valid workflow (runs=1), {args.jobs} "
        f"requests each, while a {BLOCKER_STEPS}-step job runs on the worker, loopback"
    )
    for label, (seconds, latencies, blocked) in results.items():
        print(
            f"  {label:<22} {args.jobs / seconds:8.1f} jobs/s   per request "
            f"p50 {median(latencies) * 1000:6.2f} ms  p95 {percentile(latencies, 95) * 1000:6.2f} ms"
            + ("" if blocked else "  (the blocking job had ended: the worker ran some)")
        )
    print(f"  cancelled {cancelled} jobs with DELETE; queued or running afterwards: {left}")


def measure(
    server: Server, jobs: int, clients: int
) -> tuple[dict[str, tuple[float, list[float], bool]], int, int]:
    """Per variant (seconds, per-request seconds, blocker still running); cancelled; left."""
    base = server.base_url
    workflow = cheap_workflow()
    queued: list[str] = []
    results: dict[str, tuple[float, list[float], bool]] = {}
    with httpx.Client(timeout=60.0) as client:
        post_job(client, base, workflow, wait=True)  # warm: checkpoint loaded, nodes cached
        blocker = post_job(client, base, txt2img(sampler__steps=BLOCKER_STEPS))["jobs"][0]["id"]
        wait_running(client, base, blocker)
        try:

            def one(session: httpx.Client) -> float:
                started = time.perf_counter()
                created = post_job(session, base, workflow, runs=1)
                elapsed = time.perf_counter() - started
                queued.extend(job["id"] for job in created["jobs"])
                return elapsed

            started = time.perf_counter()
            latencies = [one(client) for _ in range(jobs)]
            results["1 client, sequential"] = (
                time.perf_counter() - started,
                latencies,
                still_running(client, base, blocker),
            )

            sessions = [httpx.Client(timeout=60.0) for _ in range(clients)]
            try:
                with ThreadPoolExecutor(clients) as pool:
                    started = time.perf_counter()
                    latencies = list(pool.map(lambda i: one(sessions[i % clients]), range(jobs)))
                    seconds = time.perf_counter() - started
            finally:
                for session in sessions:
                    session.close()
            results[f"{clients} clients, concurrent"] = (
                seconds,
                latencies,
                still_running(client, base, blocker),
            )
        finally:
            for job_id in [*queued, blocker]:
                client.delete(f"{base}/api/jobs/{job_id}")  # 409 for one that already ended
        left = client.get(f"{base}/api/jobs", params={"status": ["queued", "running"]}).json()
    return results, len(queued) + 1, int(left["total"])


def wait_running(client: httpx.Client, base: str, job_id: str) -> None:
    deadline = time.monotonic() + RUNNING_TIMEOUT_S
    while time.monotonic() < deadline:
        if client.get(f"{base}/api/jobs/{job_id}").json()["status"] == "running":
            return
        time.sleep(0.01)
    raise TimeoutError(f"job {job_id} did not start in {RUNNING_TIMEOUT_S} s")


def still_running(client: httpx.Client, base: str, job_id: str) -> bool:
    return bool(client.get(f"{base}/api/jobs/{job_id}").json()["status"] == "running")


if __name__ == "__main__":
    main()
