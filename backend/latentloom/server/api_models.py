"""Request and response bodies of the REST API (pydantic: they document themselves at /docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from latentloom.graph.validate import Problem
from latentloom.interop.comfy.report import ExportReport, ImportReport
from latentloom.jobs.records import JobRecord, JobSummary, NodeState

JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: dict[str, Any] = Field(description="A workflow document (schema latentloom/workflow)")
    priority: int = Field(0, ge=-1000, le=1000, description="Higher runs first")
    front: bool = Field(False, description="Put ahead of every queued job of the same priority")
    runs: int = Field(1, ge=1, description="Queue this many jobs of the same workflow")
    client_id: str | None = Field(None, max_length=200)
    targets: list[str] | None = Field(
        None,
        max_length=1000,
        description="Run only what these nodes need (run to here); default: every output node",
    )


class JobView(BaseModel):
    id: str
    title: str | None = Field(description="The workflow's meta.title, if it has one")
    workflow_hash: str = Field(
        description="SHA-256 of the stored workflow document (jobs of one workflow share it)"
    )
    status: JobStatusName
    priority: int
    attempts: int
    client_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    error_node: str | None
    outputs: dict[str, Any]
    nodes: dict[str, NodeState] = Field(
        description="Per-node state: started, cached, finished or failed"
    )
    workflow: dict[str, Any] | None = Field(None, description="Only in GET /api/jobs/{id}")


class JobsCreated(BaseModel):
    jobs: list[JobView]


class JobList(BaseModel):
    jobs: list[JobView]
    total: int


class PriorityChange(BaseModel):
    priority: int = Field(ge=-1000, le=1000)


class HistoryPrune(BaseModel):
    keep: int = Field(0, ge=0, description="How many of the newest ended jobs to keep")


class InvalidWorkflow(BaseModel):
    detail: str
    problems: list[Problem]


class Detail(BaseModel):
    detail: str


class WorkflowImported(BaseModel):
    workflow: dict[str, Any] = Field(description="Our workflow document (schema version 2)")
    report: ImportReport


class WorkflowExported(BaseModel):
    document: dict[str, Any] = Field(description="The ComfyUI API prompt or editor workflow")
    report: ExportReport


def job_view(record: JobSummary, *, with_workflow: bool = False) -> JobView:
    """The API's view of a job; the workflow only when asked for and the record has it.

    Built without validating again: every value comes from a validated JobSummary, and a
    page of the job list makes 500 of these.
    """
    workflow = record.workflow if with_workflow and isinstance(record, JobRecord) else None
    return JobView.model_construct(
        id=record.id,
        title=record.title,
        workflow_hash=record.workflow_hash,
        status=record.status.value,
        priority=record.priority,
        attempts=record.attempts,
        client_id=record.client_id,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        error=record.error,
        error_node=record.error_node,
        outputs=record.outputs,
        nodes=record.node_states,
        workflow=workflow,
    )
