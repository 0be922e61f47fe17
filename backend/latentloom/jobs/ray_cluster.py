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
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # Ray's; see _keep_on_loopback


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
        os.environ.setdefault(_CLUSTER_SWITCH, "0")
    try:
        import ray
    except ImportError as error:
        raise RayUnavailable(str(error)) from error
    if ray.is_initialized():
        return False
    if options.address == LOCAL:
        _keep_on_loopback()
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


def _keep_on_loopback() -> None:
    """Make the node we start 127.0.0.1, so every port Ray opens listens on loopback only.

    Ray 2.60 has one switch for this: with clusters off (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`)
    the node address is 127.0.0.1 and GCS, raylet, object manager, workers and agents bind
    to it; `_node_ip_address="127.0.0.1"` alone is rewritten to the network address. Ray
    reads the switch once, when it is imported, so if something imported ray before us the
    setting in the environment (which the processes it starts inherit) came too late for
    this process: tell the already loaded constant too. A user who set the switch to 1
    asked for a reachable node and keeps it.
    """
    from ray._private import ray_constants

    if os.environ.get(_CLUSTER_SWITCH) == "0":
        ray_constants.ENABLE_RAY_CLUSTER = False


def cluster_gpus() -> int:
    """GPUs the cluster has now (grows as nodes join)."""
    import ray

    return int(ray.cluster_resources().get("GPU", 0))


def disconnect() -> None:
    import ray

    ray.shutdown()
