"""Fixtures for the job tests: a ledger file in tmp_path and an engine on the arith pack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from latentloom.engine.executor import Engine
from latentloom.jobs.ledger import Ledger
from tests.support import make_arith_engine


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[str]:
    """One local Ray instance (2 CPUs, 2 logical GPUs) for every Ray test file, started by
    the first that needs it (it takes seconds); yields its address for servers to join."""
    from latentloom.jobs.ray_cluster import RayOptions, connect, disconnect

    assert connect(RayOptions(num_cpus=2, num_gpus=2))
    try:
        import ray

        yield str(ray.get_runtime_context().gcs_address)
    finally:
        disconnect()


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.sqlite"


@pytest.fixture
def ledger(ledger_path: Path) -> Iterator[Ledger]:
    with Ledger(ledger_path) as opened:
        yield opened


@pytest.fixture
def arith_engine(tmp_path: Path) -> Engine:
    return make_arith_engine(tmp_path)
