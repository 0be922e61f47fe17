"""Errors raised while reading, recognising and loading checkpoints.

Every error names the file, says what is wrong and, where there is one, how to fix it; tests
pin the text. They all derive from `CheckpointError` so a node can catch one type and show the
message to the user unchanged.
"""

from __future__ import annotations

from pathlib import Path

PICKLE_ADVICE = (
    "Latentloom never unpickles checkpoints (a pickle can run arbitrary code). Convert it once "
    "in a Python you trust: `sd = torch.load(path, weights_only=True)`, take "
    "`sd.get('state_dict', sd)`, then `safetensors.torch.save_file(sd, 'model.safetensors')`"
)


class CheckpointError(Exception):
    """A checkpoint could not be used; `problem` says why and `hint` how to fix it."""

    def __init__(self, path: str | Path, problem: str, hint: str | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class CorruptCheckpointError(CheckpointError):
    """The bytes do not form a valid safetensors file (bad header, truncated, bad offsets)."""


class PickleCheckpointError(CheckpointError):
    """The file is (or is named like) a pickle checkpoint, which is refused, never unpickled."""

    def __init__(self, path: str | Path, problem: str, hint: str = PICKLE_ADVICE) -> None:
        super().__init__(path, problem, hint)


class UnrecognizedCheckpointError(CheckpointError):
    """The tensors are valid but do not form a model family Latentloom knows."""


class WeightMismatchError(CheckpointError):
    """The tensors disagree with the modules built for them (missing, extra or wrong shape)."""
