"""The one event schema, shared by the CLI progress bar, the websocket and remote workers.

Every event is a pydantic model with a literal `kind`, so a stream of them round-trips
through JSON (`Event` is the discriminated union). Preview images are not events: they are
binary payloads (see `Preview`), because they are large and the first thing to drop for a
slow client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # the server imports events before torch has loaded
    import torch


class _Event(BaseModel):
    job: str | None = None  # filled in by the job layer; None when run from the CLI


class NodeStarted(_Event):
    kind: Literal["node.started"] = "node.started"
    node: str
    type: str


class NodeCached(_Event):
    kind: Literal["node.cached"] = "node.cached"
    node: str
    type: str
    outputs: dict[str, Any] = Field(default_factory=dict)  # as in NodeFinished


class NodeProgress(_Event):
    kind: Literal["node.progress"] = "node.progress"
    node: str
    step: int
    total: int


class NodeFinished(_Event):
    kind: Literal["node.finished"] = "node.finished"
    node: str
    type: str
    seconds: float
    # Only results meant for the user (saved files and the like), never tensors.
    outputs: dict[str, Any] = Field(default_factory=dict)


class NodeFailed(_Event):
    kind: Literal["node.failed"] = "node.failed"
    node: str
    type: str
    error: str


class JobQueued(_Event):
    kind: Literal["job.queued"] = "job.queued"
    client_id: str | None = None  # lets a client recognise its own jobs before its POST returns


class JobStarted(_Event):
    kind: Literal["job.started"] = "job.started"


class JobFinished(_Event):
    kind: Literal["job.finished"] = "job.finished"
    outputs: dict[str, Any] = Field(default_factory=dict)


class JobFailed(_Event):
    kind: Literal["job.failed"] = "job.failed"
    error: str
    node: str | None = None


class JobCancelled(_Event):
    kind: Literal["job.cancelled"] = "job.cancelled"


Event = Annotated[
    NodeStarted
    | NodeCached
    | NodeProgress
    | NodeFinished
    | NodeFailed
    | JobQueued
    | JobStarted
    | JobFinished
    | JobFailed
    | JobCancelled,
    Field(discriminator="kind"),
]


@dataclass(frozen=True)
class Preview:
    """A live preview of a node's work: a latent batch (or an image batch) to be rendered."""

    node: str
    step: int
    latent: torch.Tensor  # [B, C, h, w], the family's latent space
    family: str | None
    job: str | None = None  # stamped by the job layer, like the events' `job`
