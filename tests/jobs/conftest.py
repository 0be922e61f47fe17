"""Fixtures for the job tests: a ledger file in tmp_path and an engine on the arith pack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from latentloom.engine.executor import Engine
from latentloom.jobs.ledger import Ledger
from tests.support import make_arith_engine


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
