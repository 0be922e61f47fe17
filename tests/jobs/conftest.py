"""Fixtures for the job tests: a ledger file in tmp_path and an engine on the arith pack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from latentloom.engine.cache import OutputCache
from latentloom.engine.context import RunSettings
from latentloom.engine.executor import Engine
from latentloom.engine.folders import Folders
from latentloom.jobs.ledger import Ledger
from latentloom.models.folders import ModelFolders
from latentloom.registry import Registry, load_pack_folder

ARITH = Path(__file__).parents[1] / "fixtures" / "packs" / "arith"


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.sqlite"


@pytest.fixture
def ledger(ledger_path: Path) -> Iterator[Ledger]:
    with Ledger(ledger_path) as opened:
        yield opened


@pytest.fixture
def arith_engine(tmp_path: Path) -> Engine:
    registry = Registry()
    load_pack_folder(registry, ARITH)
    settings = RunSettings(
        torch.device("cpu"),
        torch.float32,
        Folders(ModelFolders.of([tmp_path]), tmp_path),
        tmp_path / "output",
    )
    return Engine(registry, settings, OutputCache(2**30))
