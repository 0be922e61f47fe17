"""Connecting to Ray: a local instance of our own (`--ray auto`) or an existing cluster.

A local instance is a single machine, so it is kept on loopback: its node address is
127.0.0.1 (Ray otherwise advertises the machine's network address for other nodes to join)
and its dashboard is off unless asked for, then bound to 127.0.0.1. Ray's own token
authentication (on by default since 2.5x) guards its ports. Joining a cluster takes its
address (`ray start --head` prints it); nothing is started then, and stopping only
disconnects. Ray is an optional extra: without it `--ray` fails at once saying how to get it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

LOCAL = "auto"
NAMESPACE = "latentloom"


class RayUnavailable(RuntimeError):
    def __init__(self, reason: str) -> None:
        super().__init__(
            f"--ray needs Ray, which is not installed ({reason}); install the extra: "
            "pip install 'latentloom[ray]'"
        )


@dataclass(frozen=True)
class RayOptions:
    address: str = LOCAL  # "auto": start a local instance; else a cluster to join
    workers: int | None = None  # None: one per GPU in the cluster (one when it has none)
    dashboard: bool = False
    affinity: bool = True  # False: least recently used idle worker (benchmarks compare)
    affinity_wait_s: float = 3.0  # how long a job may wait for a busy worker holding its models
    # For a local instance: what Ray may use (None: the machine's); logical GPUs for tests.
    num_cpus: int | None = None
    num_gpus: int | None = None


def connect(options: RayOptions) -> bool:
    """Connect this process to Ray; True when we did (and so disconnect on stop), False when
    it already was (a test session's shared instance)."""
    if options.address == LOCAL:
        # Ray advertises a network address unless told this is no cluster (its switch for
        # single-machine use, read when ray is imported); then the node is 127.0.0.1.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as error:
        raise RayUnavailable(str(error)) from error
    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False}
    if options.address == LOCAL:
        ray.init(
            address="local",
            num_cpus=options.num_cpus,
            num_gpus=options.num_gpus,
            include_dashboard=options.dashboard,
            dashboard_host="127.0.0.1",
            _node_ip_address="127.0.0.1",
            **common,
        )
    else:
        ray.init(address=options.address, **common)
    return True


def cluster_gpus() -> int:
    """GPUs the cluster has now (grows as nodes join)."""
    import ray

    return int(ray.cluster_resources().get("GPU", 0))


def disconnect() -> None:
    import ray

    ray.shutdown()
