"""A server killed with SIGKILL leaves no process of its own behind: its worker child, the job
pages process and multiprocessing's resource tracker all end once it is gone."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.server.api_server import free_port, wait_until_ready
from tests.server.test_restart import start_server


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == str(pid):
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_server_killed_with_sigkill_leaves_no_process_behind(
    models_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    server = start_server(models_dir, tmp_path / "data", port)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while len(children(server.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # the page process starts beside the worker's warm-up
        left = children(server.pid)
        assert len(left) >= 3, left  # the worker, the page process, the resource tracker
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in left) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in left if alive(pid)]
