"""Event fan-out latency to many websocket clients on loopback.

A `latentloom serve` subprocess with the tiny checkpoint; --clients websocket clients (the
`websockets` library, one asyncio loop in this process) subscribe to every job on /ws. Then,
--rounds times, a cheap valid job is POSTed (from a thread, timed there) and each client
timestamps every event frame it receives; the next round starts once every client has seen
the job end. Reported, pooled over rounds:

- the `job.queued` event per client, from the POST being sent and from its response being
  received (the event is published inside the request, so it may beat the response: negative
  values are possible), p50/p95/max over clients;
- the spread per event (last client's receipt minus first client's, every event of every
  round: queued, started, node events, finished), p50/p95/max over events.

Client-side handling is part of the figures: 100 sockets share one Python event loop here.

    .venv/bin/python -m bench.server_fanout [--clients 100] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.common import tiny_models
from bench.serving import Server, cheap_workflow, percentile, post_job, running_server

END_KINDS = {"job.finished", "job.failed", "job.cancelled"}
ROUND_TIMEOUT_S = 60.0


class Client:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.received: dict[int, tuple[float, dict[str, Any]]] = {}  # event id -> (time, event)
        self.ended: set[str] = set()
        self.changed = asyncio.Event()

    async def listen(self) -> None:
        async for message in self.connection:
            now = time.perf_counter()
            if isinstance(message, bytes):
                continue  # a preview
            frame = json.loads(message)
            if frame.get("type") != "event":
                continue
            event = frame["event"]
            self.received[frame["id"]] = (now, event)
            if event["kind"] in END_KINDS:
                self.ended.add(event["job"])
                self.changed.set()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with running_server(tiny_models(root), root / "data") as server:
            from_sent, from_returned, spreads, events = asyncio.run(
                measure(server, args.clients, args.rounds)
            )
    print(
        f"event fan-out, {args.clients} websocket clients on loopback (/ws?jobs=all), "
        f"{args.rounds} jobs, {events} events per job on average"
    )
    for label, values in [
        ("job.queued, from POST sent", from_sent),
        ("job.queued, from POST returned", from_returned),
        ("spread first..last client", spreads),
    ]:
        print(
            f"  {label:<31} p50 {percentile(values, 50) * 1000:7.2f} ms  "
            f"p95 {percentile(values, 95) * 1000:7.2f} ms  max {max(values) * 1000:7.2f} ms"
        )
    print(f"  ({len(from_sent)} client receipts of job.queued; spread over {len(spreads)} events)")


async def measure(
    server: Server, clients: int, rounds: int
) -> tuple[list[float], list[float], list[float], float]:
    workflow = cheap_workflow()
    with httpx.Client(timeout=60.0) as http:
        post_job(http, server.base_url, workflow, wait=True)  # warm: every node cached after it
        connections = [
            await connect(f"{server.ws_url}?jobs=all", max_queue=None) for _ in range(clients)
        ]
        listeners = [Client(connection) for connection in connections]
        for listener in listeners:
            hello = json.loads(await listener.connection.recv())
            assert hello["type"] == "hello", hello
        tasks = [asyncio.create_task(listener.listen()) for listener in listeners]
        from_sent: list[float] = []
        from_returned: list[float] = []
        spreads: list[float] = []
        event_count = 0
        try:
            for _ in range(rounds):

                def post() -> tuple[float, float, str]:
                    sent = time.perf_counter()
                    job = post_job(http, server.base_url, workflow)["jobs"][0]["id"]
                    return sent, time.perf_counter(), job

                sent, returned, job = await asyncio.to_thread(post)
                await asyncio.wait_for(all_ended(listeners, job), ROUND_TIMEOUT_S)
                by_event: dict[int, list[float]] = defaultdict(list)
                for listener in listeners:
                    for event_id, (at, event) in listener.received.items():
                        if event.get("job") != job:
                            continue
                        by_event[event_id].append(at)
                        if event["kind"] == "job.queued":
                            from_sent.append(at - sent)
                            from_returned.append(at - returned)
                for times in by_event.values():
                    if len(times) != clients:
                        raise RuntimeError(f"an event reached {len(times)} of {clients} clients")
                    spreads.append(max(times) - min(times))
                event_count += len(by_event)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(
                *(connection.close() for connection in connections), return_exceptions=True
            )
    return from_sent, from_returned, spreads, event_count / rounds


async def all_ended(listeners: list[Client], job: str) -> None:
    for listener in listeners:
        while job not in listener.ended:
            listener.changed.clear()
            await listener.changed.wait()


if __name__ == "__main__":
    main()
