"""What a node function receives besides its inputs: where to run and how to report.

Nodes know nothing of the server, the queue or the websocket: progress, previews and
cancellation go through this object, which the executor wires to whoever is listening.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from latentloom.engine.events import Preview
from latentloom.engine.folders import Folders
from latentloom.engine.residency import HOME, manages
from latentloom.fast_path import FastPathSettings


class Cancelled(Exception):
    """Raised inside a run when its cancel token is set; the run stops where it is."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


@dataclass(frozen=True)
class RunSettings:
    """Per-engine settings every node may need."""

    device: torch.device
    dtype: torch.dtype
    folders: Folders
    output_dir: Path
    # Device memory the residency manager may fill with weights (engine/residency.py). None:
    # the cost budget's on CUDA / MPS, and no manager on the CPU; set on the CPU, it drives
    # the managed path with "the device" a second copy of the weights (tests).
    device_budget_bytes: int | None = None
    # Channels-last / compile for each loaded UNet (fast_path.py); off by default.
    fast_path: FastPathSettings = field(default_factory=FastPathSettings)


@dataclass
class NodeContext:
    node_id: str
    settings: RunSettings
    cancel: CancelToken
    on_progress: Callable[[int, int], None] = lambda step, total: None
    on_preview: Callable[[Preview], None] = lambda preview: None
    # The workflow being run, as JSON: Save Image embeds it in the PNG.
    workflow_json: dict[str, Any] = field(default_factory=dict)
    # What of the cost budget this node's working set may use (CostQuery.memory_left, as
    # validation estimated it); None when the engine has no budget.
    memory_left: int | None = None

    @property
    def device(self) -> torch.device:
        return self.settings.device

    @property
    def dtype(self) -> torch.dtype:
        return self.settings.dtype

    @property
    def weights_device(self) -> torch.device:
        """Where loaders put weights: their CPU home when the engine moves them on and off the
        device before each node (engine/residency.py), else the device itself."""
        if manages(self.settings.device, self.settings.device_budget_bytes):
            return HOME
        return self.settings.device

    @property
    def folders(self) -> Folders:
        return self.settings.folders

    def check_cancelled(self) -> None:
        self.cancel.check()

    def progress(self, step: int, total: int) -> None:
        self.on_progress(step, total)

    def preview(self, step: int, latent: torch.Tensor, family: str | None) -> None:
        self.on_preview(Preview(self.node_id, step, latent, family))
