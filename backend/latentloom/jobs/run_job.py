"""One job on one engine, ending in an `Outcome`: the body every worker loop shares.

The in-process `LocalWorker`, the worker child process and (later) Ray actors all run a job
through this function, so a workflow ends the same way whichever runs it: a node's failure
names the node, an invalid document fails with every problem, a set cancel token ends it
as cancelled, and anything else is an internal error with its type. Nothing here touches
the ledger: the caller turns the outcome into ledger writes (`JobReporter.finish`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from latentloom.jobs.worker_protocol import Outcome

if TYPE_CHECKING:
    from latentloom.engine.context import CancelToken
    from latentloom.engine.events import Preview
    from latentloom.engine.executor import Engine

logger = logging.getLogger(__name__)


def run_job(
    engine: Engine,
    job_id: str,
    workflow: dict[str, Any],
    *,
    on_event: Callable[[BaseModel], None],
    on_preview: Callable[[Preview], None],
    cancel: CancelToken,
) -> Outcome:
    from latentloom.engine.context import Cancelled
    from latentloom.engine.executor import NodeExecutionError
    from latentloom.graph.validate import WorkflowInvalid
    from latentloom.graph.workflow import WorkflowFormatError, parse_workflow

    # Run to here: POST /api/jobs puts the chosen nodes in meta.run_targets.
    targets = (workflow.get("meta") or {}).get("run_targets")
    try:
        result = engine.run(
            parse_workflow(workflow),
            on_event=on_event,
            on_preview=on_preview,
            cancel=cancel,
            targets=targets if isinstance(targets, list) else None,
        )
    except Cancelled:
        return Outcome(job_id, "cancelled")
    except NodeExecutionError as error:
        return Outcome(job_id, "failed", error=str(error), node=error.node_id)
    except (WorkflowInvalid, WorkflowFormatError) as error:
        return Outcome(job_id, "failed", error=str(error))
    except Exception as error:
        logger.exception("job %s hit an internal error", job_id)
        return Outcome(job_id, "failed", error=f"internal error: {type(error).__name__}: {error}")
    reports = {node: dict(report) for node, report in result.reports.items()}
    return Outcome(job_id, "succeeded", reports=reports)
