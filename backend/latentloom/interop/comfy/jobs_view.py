"""How the ledger's jobs look to ComfyUI clients: queue items, history entries, file references.

Jobs queued through `POST /prompt` are ordinary ledger rows; what ComfyUI clients expect to
read back (their API prompt, `extra_data`, the output nodes to run) travels in the workflow's
`meta[COMFY_META]`, so it is as durable as the job and pruned with it. Jobs queued through our
own API have no such entry and show an empty prompt; everything else about them reads the same.

ComfyUI's queue item is `[number, prompt_id, prompt, extra_data, outputs_to_execute]`; our
ledger's `sequence` is its `number` (both sort the queue, both go negative for "front").
Output files are `{filename, subfolder}` in our node reports; ComfyUI adds the folder `type`.
Preview Image writes under `previews/` in the output folder, which ComfyUI clients see as its
`temp` folder, so `FOLDER_ROOTS` and `file_ref` agree on where each type lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from latentloom.jobs.records import JobRecord, JobStatus

COMFY_META: Final = "comfy_api"  # workflow.meta key: {"prompt", "extra_data", "outputs_to_execute"}
TEMP_SUBFOLDER: Final = "previews"  # where Preview Image writes, under the output folder
FolderType = Literal["output", "input", "temp"]
FOLDER_TYPES: Final = ("output", "input", "temp")
# Report keys holding file lists; ComfyUI shows animations as images too.
FILE_KEYS: Final = {"images": "images", "animations": "images"}
# Notes of ours that no ComfyUI node outputs (Load Checkpoint's detection, the models residency
# moved): ComfyUI clients never see them, so a loader sends no `executed` and has no history
# output, as in ComfyUI.
LOCAL_KEYS: Final = frozenset({"detection", "memory"})


def folder_root(kind: str, output_dir: Path, input_dir: Path) -> Path | None:
    """The folder a ComfyUI `type` names, or None for a type we do not have."""
    roots: dict[str, Path] = {
        "output": output_dir,
        "input": input_dir,
        "temp": output_dir / TEMP_SUBFOLDER,
    }
    return roots.get(kind)


def file_ref(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One of our `{filename, subfolder}` report entries as ComfyUI's `{filename, subfolder, type}`."""
    subfolder = str(entry.get("subfolder") or "")
    kind: FolderType = "output"
    if subfolder == TEMP_SUBFOLDER or subfolder.startswith(TEMP_SUBFOLDER + "/"):
        kind, subfolder = "temp", subfolder[len(TEMP_SUBFOLDER) :].lstrip("/")
    return {**entry, "filename": entry.get("filename"), "subfolder": subfolder, "type": kind}


def node_output(report: Mapping[str, Any]) -> dict[str, Any]:
    """A node's report (`{"images": [...]}`) as ComfyUI's `executed` output / history output."""
    output: dict[str, Any] = {}
    for key, value in report.items():
        if key in LOCAL_KEYS:
            continue
        if key in FILE_KEYS and isinstance(value, list):
            refs = [file_ref(item) for item in value if isinstance(item, Mapping)]
            output.setdefault(FILE_KEYS[key], []).extend(refs)
        else:
            output[key] = value
    return output


def comfy_outputs(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The nodes whose reports ComfyUI would show, as `node_output`s."""
    return {node: output for node, report in reports.items() if (output := node_output(report))}


def comfy_meta(record: JobRecord) -> dict[str, Any]:
    meta = record.workflow.get("meta")
    entry = meta.get(COMFY_META) if isinstance(meta, dict) else None
    return entry if isinstance(entry, dict) else {}


def _output_nodes(record: JobRecord) -> list[str]:
    stated = comfy_meta(record).get("outputs_to_execute")
    if isinstance(stated, list):
        return [str(node) for node in stated]
    return sorted(comfy_outputs(record.outputs))


def queue_item(record: JobRecord) -> list[Any]:
    """ComfyUI's `[number, prompt_id, prompt, extra_data, outputs_to_execute]` for a job."""
    meta = comfy_meta(record)
    extra_data = dict(meta.get("extra_data") or {})
    if record.client_id is not None:
        extra_data.setdefault("client_id", record.client_id)
    return [record.sequence, record.id, meta.get("prompt", {}), extra_data, _output_nodes(record)]


def milliseconds(seconds: float | None) -> int:
    return int((seconds or 0.0) * 1000)


def comfy_class(record: JobRecord, node: str | None) -> str | None:
    """The ComfyUI class a job's node came from, else our node type."""
    if node is None:
        return None
    prompt = comfy_meta(record).get("prompt")
    if isinstance(prompt, dict) and isinstance(prompt.get(node), dict):
        class_type = prompt[node].get("class_type")
        if isinstance(class_type, str):
            return class_type
    nodes = record.workflow.get("nodes")
    found = nodes.get(node) if isinstance(nodes, dict) else None
    return found.get("type") if isinstance(found, dict) else None


def split_error(error: str | None) -> tuple[str, str]:
    """(exception type, message) from our "...: Type: message" error text, as best we can."""
    text = error or ""
    _, separator, rest = text.rpartition(" failed: ")
    tail = rest if separator else text
    kind, colon, message = tail.partition(": ")
    if colon and kind.isidentifier():
        return kind, message
    return "Exception", tail


def error_message(record: JobRecord, timestamp: int) -> dict[str, Any]:
    """ComfyUI's `execution_error` data for a failed job."""
    exception_type, message = split_error(record.error)
    return {
        "prompt_id": record.id,
        "node_id": record.error_node,
        "node_type": comfy_class(record, record.error_node),
        "executed": [n for n, s in record.node_states.items() if s in ("finished", "cached")],
        "exception_message": message,
        "exception_type": exception_type,
        "traceback": [],
        "current_inputs": {},
        "current_outputs": {},
        "timestamp": timestamp,
    }


def _status_messages(record: JobRecord) -> list[list[Any]]:
    started = milliseconds(record.started_at or record.created_at)
    ended = milliseconds(record.finished_at)
    base = {"prompt_id": record.id}
    messages: list[list[Any]] = [["execution_start", {**base, "timestamp": started}]]
    cached = [node for node, state in record.node_states.items() if state == "cached"]
    messages.append(["execution_cached", {**base, "nodes": cached, "timestamp": started}])
    if record.status == JobStatus.SUCCEEDED:
        messages.append(["execution_success", {**base, "timestamp": ended}])
    elif record.status == JobStatus.FAILED:
        messages.append(["execution_error", error_message(record, ended)])
    else:
        running = [n for n, s in record.node_states.items() if s == "started"]
        interrupted = {
            **base,
            "node_id": running[-1] if running else None,
            "node_type": comfy_class(record, running[-1]) if running else None,
            "executed": [n for n, s in record.node_states.items() if s in ("finished", "cached")],
            "timestamp": ended,
        }
        messages.append(["execution_interrupted", interrupted])
    return messages


def history_entry(record: JobRecord) -> dict[str, Any]:
    """ComfyUI's history entry for an ended job: its prompt, outputs and status."""
    succeeded = record.status == JobStatus.SUCCEEDED
    outputs = comfy_outputs(record.outputs)
    return {
        "prompt": queue_item(record),
        "outputs": outputs,
        "status": {
            "status_str": "success" if succeeded else "error",
            "completed": succeeded,
            "messages": _status_messages(record),
        },
        "meta": {node: {"node_id": node, "display_node": node} for node in outputs},
    }
