"""Warm the engine stack before the first job needs it: imports, tokenizer, first kernels.

A cold first job used to pay for importing diffusers and transformers (~3 s here) inside Load
Checkpoint, then for building the CLIP tokenizer and for torch's first convolution, attention
and CUDA context. None of that depends on the job, so it can happen while the process would
otherwise wait: the server does it behind its open socket, the CLI while it reads and
validates the workflow. `warm_up_engine_stack` does it in one thread; `Warmup` runs it in the
background and lets the critical path wait for it.

All imports happen on the warm-up thread, in this fixed order; whoever needs the stack calls
`Warmup.wait()` first rather than importing the same modules concurrently (two threads
importing one package can trip importlib's deadlock detection). A failing step is logged and
skipped: the job then fails on that import itself, with the error where the user looks.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger("latentloom.warmup")

# What a first txt2img job imports beyond the engine (measured: `sys.modules` before and after
# one job). models.load pulls in diffusers' UNet/VAE and transformers' CLIP (models/build.py).
ENGINE_STACK_MODULES: tuple[str, ...] = (
    "torch",
    "latentloom.models.load",
    "latentloom.text.encode",
    "latentloom.text.tokenizer",
    "latentloom.sampling.run",
    "latentloom.vae",
    "latentloom.preview",
    "latentloom.images",
    "latentloom.interop.comfy.exporter",  # Save Image embeds the ComfyUI export
)

# What building an engine, validating a workflow and reading ahead import: the CLI waits for
# these first.
ENGINE_MODULES: tuple[str, ...] = (
    "torch",
    "latentloom.models.device",
    "latentloom.engine.setup",
    "latentloom.graph.validate",
    "latentloom.engine.read_ahead",
    "latentloom.models.weight_prefetch",  # converts the checkpoint while the rest imports
)

WarmupStep = Callable[[], object]


@dataclass
class WarmupReport:
    """Seconds per step, and the steps that failed with why."""

    seconds: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def import_modules(names: Sequence[str] = ENGINE_STACK_MODULES) -> None:
    """Import each of `names`; one that fails does not keep the others from importing."""
    failures = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:
            failures.append(f"{name}: {type(error).__name__}: {error}")
    if failures:
        raise ImportError("; ".join(failures))


def build_tokenizers() -> None:
    """Both CLIP tokenizers (end-token and OpenCLIP pads): reading the vocabulary takes ~0.5 s."""
    from latentloom.text.tokenizer import OPEN_CLIP_PAD_TOKEN, clip_tokenizer

    clip_tokenizer()("a photo")
    clip_tokenizer(OPEN_CLIP_PAD_TOKEN)("a photo")


def first_kernels(device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> None:
    """Run each kind of op a UNet step uses once, tiny, on an accelerator: the first call of
    each sets up the CUDA context, cuBLAS and cuDNN (or MPS's), shared by every thread.

    Not on the CPU: its kernels are set up per shape (a tiny warm-up does not reach the real
    ones), and an op run on the warm-up thread would start a second OpenMP thread team beside
    the one jobs use — on a busy machine, idle teams that spin cost more than they save."""
    import torch
    import torch.nn.functional as functional

    target = torch.device(device)
    if target.type == "cpu":
        return
    dtype = dtype or torch.float32
    with torch.inference_mode():
        image = torch.zeros(1, 8, 8, 8, device=target, dtype=dtype)
        image = functional.conv2d(
            image, torch.zeros(8, 8, 3, 3, device=target, dtype=dtype), padding=1
        )
        image = functional.silu(functional.group_norm(image, 4))
        tokens = image.flatten(2).transpose(1, 2)
        tokens = functional.layer_norm(tokens, (8,))
        tokens = functional.linear(tokens, torch.zeros(8, 8, device=target, dtype=dtype))
        query = tokens.view(1, 64, 2, 4).transpose(1, 2)
        functional.scaled_dot_product_attention(query, query, query).sum().item()


def engine_stack_steps(
    device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> list[tuple[str, WarmupStep]]:
    """The warm-up's steps in order; kernels only for a known device (else the CPU's)."""
    return [
        ("imports", import_modules),
        ("tokenizers", build_tokenizers),
        ("kernels", lambda: first_kernels(device or "cpu", dtype)),
    ]


def cli_steps(forced_device: str | None) -> list[tuple[str, WarmupStep]]:
    """The CLI's: the engine's modules first ("engine"), then the engine stack, with the
    first kernels on the device and dtype the engine will choose."""

    def kernels() -> None:
        from latentloom.models.device import choose_device, choose_dtype

        device = choose_device(forced_device)
        first_kernels(device, choose_dtype(device))

    return [
        ("engine", lambda: import_modules(ENGINE_MODULES)),
        ("imports", import_modules),
        ("tokenizers", build_tokenizers),
        ("kernels", kernels),
    ]


def run_steps(
    steps: Sequence[tuple[str, WarmupStep]],
    on_step_done: Callable[[str], object] = lambda name: None,
) -> WarmupReport:
    report = WarmupReport()
    for name, step in steps:
        started = time.perf_counter()
        try:
            step()
        except Exception as error:  # the job meets it again and reports it properly
            report.failed[name] = f"{type(error).__name__}: {error}"
            log.warning("warm-up step %s failed: %s", name, report.failed[name])
        report.seconds[name] = time.perf_counter() - started
        on_step_done(name)
    return report


def warm_up_engine_stack(
    device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> WarmupReport:
    """Import, build and run once what a first job needs; never raises."""
    return run_steps(engine_stack_steps(device, dtype))


class Warmup:
    """`steps` on a daemon thread; `wait()` blocks until they are done (at once if they are),
    `wait(name)` until that step is.

    A Warmup never started counts as done, so code paths that wait for one work unchanged
    where nothing warms up (tests, the in-process engine)."""

    def __init__(self, steps: Sequence[tuple[str, WarmupStep]] | None = None) -> None:
        self._steps = list(steps) if steps is not None else engine_stack_steps()
        self._finished = {name: threading.Event() for name, _ in self._steps}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.report: WarmupReport | None = None

    def start(self) -> Warmup:
        if self._thread is not None:
            raise RuntimeError("this Warmup was already started; make a new one")
        self._thread = threading.Thread(target=self._run, name="latentloom-warm-up", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.report = run_steps(self._steps, lambda name: self._finished[name].set())
            log.info("warm-up done in %.2f s", self.report.total_seconds)
        finally:
            for finished in self._finished.values():  # even after an unexpected error
                finished.set()
            self._done.set()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def done(self) -> bool:
        return self._thread is None or self._done.is_set()

    def wait(self, step: str | None = None, timeout: float | None = None) -> bool:
        """True once the warm-up (or its `step`) has finished, or was never started."""
        if self._thread is None:
            return True
        if step is None:
            return self._done.wait(timeout)
        if step not in self._finished:
            names = ", ".join(self._finished)
            raise ValueError(f"no warm-up step {step!r}; the steps are: {names}")
        return self._finished[step].wait(timeout)
