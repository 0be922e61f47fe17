"""Errors raised by the sampling package, with messages that say how to fix them."""

from __future__ import annotations


class UnknownNameError(ValueError):
    """A sampler or scheduler name that is not in its registry.

    We never fall back to a default (ComfyUI silently uses the first sampler): a typo in a saved
    workflow should fail loudly, naming what is valid.
    """

    def __init__(self, kind: str, name: str, valid: tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.valid = valid
        super().__init__(
            f"unknown {kind} {name!r}; expected one of: {', '.join(valid)}. "
            f"Pick one of those names (they are case-sensitive)."
        )
