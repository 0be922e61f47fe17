"""Apply weight patches (LoRA deltas) to a module for the duration of a `with` block.

Handles are immutable and share their heavy modules, so a patch is never baked into a module:
`applied` adds the deltas in place on entry and, on exit, copies back an exact backup of every
touched parameter. The module is bit-for-bit what it was before, even when the block raises.

Patching mutates a shared module, so two threads must not do it at once: each module gets a
re-entrant lock that `applied` holds for the whole block. A second thread that wants the same
module (patched or not — see `module_lock`) waits until the first leaves; the same thread may
nest `applied` on one module, in which case the inner backup holds the outer patched values and
restoring unwinds in order.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from latentloom.models.handles import WeightPatch

_locks: weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


class PatchTargetError(LookupError):
    """A patch names a parameter the module does not have, or one of another shape."""

    def __init__(self, target: str, problem: str) -> None:
        super().__init__(f"cannot patch {target!r}: {problem}")
        self.target = target
        self.problem = problem


def module_lock(module: torch.nn.Module) -> threading.RLock:
    """The lock `applied` holds for `module`; hold it too to run the module unpatched safely."""
    with _locks_guard:
        lock = _locks.get(module)
        if lock is None:
            lock = threading.RLock()
            _locks[module] = lock
        return lock


@contextmanager
def applied(module: torch.nn.Module, patches: Sequence[WeightPatch]) -> Iterator[torch.nn.Module]:
    """Yield `module` with every patch added to its target; restore the exact weights on exit.

    Patches on the same target sum. Deltas are computed from the unpatched weight and added in
    float32, then cast once to the parameter's dtype, so fp16 weights lose no extra precision.
    """
    with module_lock(module):
        if not patches:
            yield module
            return
        parameters = dict(module.named_parameters())
        grouped = _group_by_target(patches, parameters)
        backups: dict[str, torch.Tensor] = {}
        try:
            with torch.no_grad():
                for target, target_patches in grouped.items():
                    parameter = parameters[target]
                    backups[target] = parameter.detach().clone()
                    parameter.copy_(_patched_value(backups[target], target_patches))
            yield module
        finally:
            with torch.no_grad():
                for target, backup in backups.items():
                    parameters[target].copy_(backup)


def _group_by_target(
    patches: Sequence[WeightPatch], parameters: dict[str, torch.nn.Parameter]
) -> dict[str, list[WeightPatch]]:
    """Check every target exists before touching anything, so a bad patch changes nothing."""
    grouped: dict[str, list[WeightPatch]] = {}
    for patch in patches:
        if patch.target not in parameters:
            raise PatchTargetError(patch.target, "the module has no parameter of that name")
        grouped.setdefault(patch.target, []).append(patch)
    return grouped


def _patched_value(original: torch.Tensor, patches: list[WeightPatch]) -> torch.Tensor:
    total = original.to(torch.float32)
    for patch in patches:
        delta = patch.delta(original)
        if delta.shape != original.shape:
            raise PatchTargetError(
                patch.target,
                f"delta has shape {tuple(delta.shape)}, parameter has {tuple(original.shape)}",
            )
        total = total + delta.to(device=original.device, dtype=torch.float32)
    return total.to(original.dtype)
