"""Tiny checkpoints for the model-loading tests, written once per test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from latentloom.models.build import Modules
from latentloom.models.family import FamilyName
from latentloom.models.tiny import make_tiny_checkpoint, tiny_modules

TinyFile = Callable[..., Path]
TinyReference = Callable[..., Modules]


@pytest.fixture(scope="session")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> TinyFile:
    """`tiny_file("sd2", v_prediction=True)` -> path of that tiny checkpoint (made once)."""
    folder = tmp_path_factory.mktemp("tiny")
    made: dict[tuple[str, bool], Path] = {}

    def get(family: FamilyName, v_prediction: bool = False) -> Path:
        key = (family, v_prediction)
        if key not in made:
            path = folder / f"tiny-{family}{'-v' if v_prediction else ''}.safetensors"
            made[key] = make_tiny_checkpoint(family, path, seed=0, v_prediction=v_prediction)
        return made[key]

    return get


@pytest.fixture(scope="session")
def tiny_reference() -> TinyReference:
    """The fp32 modules each tiny file was written from (treat as read-only)."""
    made: dict[tuple[str, bool], Modules] = {}

    def get(family: FamilyName, v_prediction: bool = False) -> Modules:
        key = (family, v_prediction)
        if key not in made:
            made[key] = tiny_modules(family, seed=0, v_prediction=v_prediction)
        return made[key]

    return get
