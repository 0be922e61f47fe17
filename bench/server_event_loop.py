"""Does anything block the event loop? `/api/system` latency under abuse, against idle.

A `latentloom serve` subprocess with the tiny checkpoint, and a ledger pre-filled with
--history ended jobs (written straight into the SQLite file before the server starts, and
kept: the config file raises `history_limit`). Three phases, each measured the same way (one
client, `GET /api/system` every 20 ms, p50/p99/max):

  idle      nothing else happens (the baseline of the ratios);
  flood     a long txt2img job runs while --clients clients, in a child process of their own
            (their GIL is not the measuring client's), POST ~10 MB workflows in a loop, and a
            websocket client that reads nothing is connected;
  listing   --clients clients page through the --history jobs with `GET /api/jobs`
            (500 per page) in a loop.

Prints p99 per phase and its ratio to idle. The issue's target is 100 ms under abuse.

    .venv/bin/python -m bench.server_event_loop [--clients 8] [--seconds 8] [--history 10000]
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.common import tiny_models
from bench.serving import HOST, Server, free_port, latentloom_command, percentile, txt2img
from latentloom.jobs.ledger import Ledger

SAMPLE_EVERY_S = 0.02
NOTES_MB = 10
# N threads repeat one request (POST of a body file, or GETs of the job pages) for S seconds.
LOAD = """
import json, sys, threading, time, httpx
mode, base, path, threads, seconds = sys.argv[1:6]
end, counts = time.monotonic() + float(seconds), []
body = open(path, "rb").read() if mode == "post" else b""
def work(index):
    with httpx.Client(timeout=120) as client:
        page = index
        while time.monotonic() < end:
            if mode == "post":
                response = client.post(base + "/api/jobs", content=body,
                                       headers={"content-type": "application/json"})
            else:
                page = (page + 1) % 20
                response = client.get(base + "/api/jobs", params={"limit": 500, "offset": page * 500})
            counts.append(response.status_code)
workers = [threading.Thread(target=work, args=(i,)) for i in range(int(threads))]
[worker.start() for worker in workers]
[worker.join() for worker in workers]
print(json.dumps(counts))
"""


def big_body(megabytes: int) -> bytes:
    workflow = txt2img(sampler__steps=1).to_json()
    workflow["meta"] = {"notes": ["n" * 99_000 for _ in range(megabytes * 10)]}
    return json.dumps({"workflow": workflow}).encode()


def fill_history(ledger_path: Path, jobs: int) -> None:
    """`jobs` ended jobs (one document), as the ledger itself writes them, in one transaction."""
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    with Ledger(ledger_path, history_limit=jobs) as ledger:
        [first] = ledger.add_many(txt2img().to_json(), 1)
    db = sqlite3.connect(ledger_path)
    with db:
        rows = [
            (uuid.uuid4().hex, first.workflow_hash, i + 2, float(i), float(i))
            for i in range(jobs - 1)
        ]
        db.executemany(
            "INSERT INTO jobs (id, status, workflow_hash, title, priority, sequence, max_attempts,"
            " created_at, finished_at, outputs) VALUES (?, 'succeeded', ?, 'history', 0, ?, 3, ?,"
            ' ?, \'{"save": {"images": []}}\')',
            rows,
        )
        db.execute(
            "UPDATE jobs SET status = 'succeeded', finished_at = -1 WHERE id = ?", (first.id,)
        )
    db.close()


def start(models: Path, data: Path, config: Path) -> Server:
    port = free_port()
    log = data.parent / "server.log"
    command = [*latentloom_command(), "serve", "--host", HOST, "--port", str(port)]
    command += ["--models", str(models), "--data", str(data), "--device", "cpu"]
    command += ["--config", str(config)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(process, f"http://{HOST}:{port}", time.perf_counter(), log)
    server.wait_ready()
    return server


def sample(base: str, seconds: float, until: subprocess.Popen[str] | None = None) -> list[float]:
    latencies = []
    end = time.monotonic() + seconds
    with httpx.Client(timeout=60) as client:
        while (until.poll() is None) if until is not None else time.monotonic() < end:
            began = time.perf_counter()
            client.get(f"{base}/api/system").raise_for_status()
            latencies.append(time.perf_counter() - began)
            time.sleep(SAMPLE_EVERY_S)
    return latencies


def load(mode: str, base: str, body: Path, clients: int, seconds: float) -> subprocess.Popen[str]:
    # The clients stand in for other machines; here they share the server's cores, so they run
    # at the lowest CPU priority and measure the server, not the scheduler's share for them.
    command = ["nice", "-n", "19", sys.executable, "-c", LOAD, mode, base, str(body)]
    command += [str(clients), str(seconds)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def stalled_websocket(base: str) -> socket.socket:
    """A websocket client that completes the handshake and then reads nothing."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall(
        f"GET /ws?jobs=all HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock


def report(label: str, latencies: list[float], idle_p99: float, note: str) -> None:
    p99 = percentile(latencies, 99)
    print(
        f"  {label:<8} p50 {percentile(latencies, 50) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms"
        f"  max {max(latencies) * 1000:7.1f} ms  ({len(latencies)} requests)"
        f"  p99 {p99 / idle_p99:6.1f}x idle  {note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--history", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        data = root / "data"
        fill_history(data / "ledger.sqlite3", args.history)
        config = root / "config.toml"
        config.write_text(f"history_limit = {args.history + 1000}\nmax_queue = 100000\n")
        body = root / "body.json"
        body.write_bytes(big_body(NOTES_MB))
        server = start(tiny_models(root), data, config)
        try:
            base = server.base_url
            idle = sample(base, args.seconds)
            blocker = {"workflow": txt2img(sampler__steps=400).to_json()}
            httpx.post(f"{base}/api/jobs", json=blocker, timeout=60).raise_for_status()
            stalled = stalled_websocket(base)
            flood = load("post", base, body, args.clients, args.seconds)
            flooded = sample(base, args.seconds, until=flood)
            posts = json.loads(flood.communicate()[0])
            stalled.close()
            listing = load("list", base, body, args.clients, args.seconds)
            listed = sample(base, args.seconds, until=listing)
            pages = json.loads(listing.communicate()[0])
        finally:
            server.stop()
    idle_p99 = percentile(idle, 99)
    print(f"/api/system latency, {args.clients} clients, {args.seconds:.0f} s per phase, loopback")
    report("idle", idle, idle_p99, "")
    report(
        "flood",
        flooded,
        idle_p99,
        f"({len(posts)} POSTs of ~{NOTES_MB} MB while a job runs; a websocket reads nothing)",
    )
    report("listing", listed, idle_p99, f"({len(pages)} pages of 500 of {args.history:,} jobs)")


if __name__ == "__main__":
    main()
