"""Our events as ComfyUI websocket messages, and ledger jobs as ComfyUI history (no server)."""

from __future__ import annotations

from typing import Any

from latentloom.interop.comfy.events import ComfyTranslator
from latentloom.interop.comfy.jobs_view import (
    COMFY_META,
    file_ref,
    history_entry,
    node_output,
    queue_item,
    split_error,
)
from latentloom.jobs.records import JobRecord

PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {}},
    "9": {"class_type": "SaveImage", "inputs": {}},
}


def record(
    job_id: str = "p1",
    *,
    client_id: str | None = "me",
    status: str = "queued",
    started_at: float | None = None,
    extra_data: dict[str, Any] | None = None,
    **fields: Any,
) -> JobRecord:
    workflow = {
        "schema": "latentloom/workflow",
        "version": 2,
        "nodes": {"3": {"type": "sampling.ksampler"}, "9": {"type": "image.save"}},
        "meta": {
            COMFY_META: {
                "prompt": PROMPT,
                "extra_data": extra_data or {},
                "outputs_to_execute": ["9"],
            }
        },
    }
    values: dict[str, Any] = {
        "id": job_id,
        "status": status,
        "workflow": workflow,
        "title": None,
        "workflow_hash": "0" * 64,
        "priority": 0,
        "sequence": 5,
        "attempts": 1,
        "max_attempts": 3,
        "client_id": client_id,
        "created_at": 100.0,
        "started_at": started_at,
        "finished_at": None,
        "error": None,
        "error_node": None,
        "outputs": {},
        "node_states": {},
    }
    return JobRecord.model_validate({**values, **fields})


def translator(records: dict[str, JobRecord], remaining: int = 0) -> ComfyTranslator:
    return ComfyTranslator("me", records.get, lambda: remaining, clock=lambda: 1.5)


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


def run(comfy: ComfyTranslator, *events: dict[str, Any]) -> list[dict[str, Any]]:
    return [message for event in events for message in comfy.translate(event)]


SAVED = {"images": [{"filename": "ComfyUI_00001.png", "subfolder": ""}]}


def test_a_clients_own_job_reads_as_comfyuis_message_sequence() -> None:
    comfy = translator({"p1": record()}, remaining=1)
    messages = run(
        comfy,
        {"kind": "job.queued", "job": "p1", "client_id": "me"},
        {"kind": "job.started", "job": "p1"},
        {"kind": "node.cached", "job": "p1", "node": "4", "type": "loaders.checkpoint"},
        {"kind": "node.cached", "job": "p1", "node": "6", "type": "conditioning.encode_prompt"},
        {"kind": "node.started", "job": "p1", "node": "3", "type": "sampling.ksampler"},
        {"kind": "node.progress", "job": "p1", "node": "3", "step": 1, "total": 2},
        {"kind": "node.finished", "job": "p1", "node": "3", "type": "x", "seconds": 1.0},
        {"kind": "node.started", "job": "p1", "node": "9", "type": "image.save"},
        {
            "kind": "node.finished",
            "job": "p1",
            "node": "9",
            "type": "x",
            "seconds": 1,
            "outputs": SAVED,
        },
        {"kind": "job.finished", "job": "p1", "outputs": {"9": SAVED}},
    )
    assert kinds(messages) == [
        "status",
        "execution_start",
        "status",
        "execution_cached",
        "executing",
        "progress",
        "executing",
        "executed",
        "execution_success",
        "executing",
        "status",
    ]
    assert messages[1]["data"] == {"prompt_id": "p1", "timestamp": 1500}
    assert messages[3]["data"]["nodes"] == ["4", "6"]
    assert messages[5]["data"] == {"value": 1, "max": 2, "node": "3", "prompt_id": "p1"}
    assert messages[7]["data"]["output"] == {
        "images": [{"filename": "ComfyUI_00001.png", "subfolder": "", "type": "output"}]
    }
    assert messages[9]["data"] == {"node": None, "display_node": None, "prompt_id": "p1"}
    assert messages[0]["data"] == {"status": {"exec_info": {"queue_remaining": 1}}}


def test_another_clients_job_is_only_status_and_an_unowned_job_is_everyones() -> None:
    comfy = translator(
        {"theirs": record("theirs", client_id="them"), "open": record("open", client_id=None)}
    )
    theirs = run(
        comfy,
        {"kind": "job.started", "job": "theirs"},
        {"kind": "node.started", "job": "theirs", "node": "3", "type": "x"},
        {"kind": "job.finished", "job": "theirs"},
    )
    assert kinds(theirs) == ["status", "status"]
    opened = run(
        comfy, {"kind": "job.started", "job": "open"}, {"kind": "job.finished", "job": "open"}
    )
    assert kinds(opened) == [
        "execution_start",
        "status",
        "execution_cached",
        "execution_success",
        "executing",
        "status",
    ]


def test_a_cached_output_node_is_announced_after_the_cached_list() -> None:
    comfy = translator({"p1": record()})
    messages = run(
        comfy,
        {"kind": "job.started", "job": "p1"},
        {"kind": "node.cached", "job": "p1", "node": "9", "type": "image.save", "outputs": SAVED},
        {"kind": "job.finished", "job": "p1"},
    )
    assert kinds(messages)[1:4] == ["status", "execution_cached", "executed"]
    assert messages[3]["data"]["node"] == "9"


def test_failures_name_the_comfyui_class_and_the_exception_type() -> None:
    comfy = translator({"p1": record()})
    error = 'node "3" (KSampler, sampling.ksampler) failed: RuntimeError: out of memory'
    messages = run(
        comfy,
        {"kind": "job.started", "job": "p1"},
        {"kind": "node.started", "job": "p1", "node": "3", "type": "sampling.ksampler"},
        {"kind": "job.failed", "job": "p1", "node": "3", "error": error},
    )
    [failure] = [m["data"] for m in messages if m["type"] == "execution_error"]
    assert failure["node_id"] == "3" and failure["node_type"] == "KSampler"
    assert failure["exception_type"] == "RuntimeError"
    assert failure["exception_message"] == "out of memory"
    assert kinds(messages)[-2:] == ["executing", "status"]


def test_interrupts_and_queue_deletions() -> None:
    comfy = translator({"p1": record(), "p2": record("p2")})
    interrupted = run(
        comfy,
        {"kind": "job.started", "job": "p1"},
        {"kind": "node.started", "job": "p1", "node": "3", "type": "sampling.ksampler"},
        {"kind": "job.cancelled", "job": "p1"},
    )
    [data] = [m["data"] for m in interrupted if m["type"] == "execution_interrupted"]
    assert data["node_id"] == "3" and data["node_type"] == "KSampler" and data["executed"] == []
    never_ran = run(
        comfy, {"kind": "job.queued", "job": "p2"}, {"kind": "job.cancelled", "job": "p2"}
    )
    assert kinds(never_ran) == ["status", "status"]


def test_a_job_already_running_when_its_queued_event_is_read_starts_in_order() -> None:
    # The translator reads the ledger lazily: by then the job may have started.
    comfy = translator({"p1": record(status="running", started_at=50.0)})
    messages = run(comfy, {"kind": "job.queued", "job": "p1"}, {"kind": "job.started", "job": "p1"})
    assert kinds(messages) == ["status", "execution_start", "status"]


def test_a_client_joining_mid_run_still_sees_the_end() -> None:
    comfy = translator({"p1": record(status="running", started_at=50.0)})
    messages = run(
        comfy,
        {"kind": "node.progress", "job": "p1", "node": "3", "step": 2, "total": 4},
        {"kind": "job.finished", "job": "p1"},
    )
    assert kinds(messages)[-3:] == ["execution_success", "executing", "status"]


def test_a_reconnecting_client_hears_which_node_of_its_prompt_is_running() -> None:
    mine = record(status="running", started_at=50.0, node_states={"4": "finished", "3": "started"})
    theirs = record(
        "p2", client_id="x", status="running", started_at=50.0, node_states={"3": "started"}
    )
    comfy = translator({"p1": mine, "p2": theirs})
    assert comfy.resume([mine, theirs]) == [
        {"type": "executing", "data": {"node": "3", "display_node": "3", "prompt_id": "p1"}}
    ]
    ended = run(comfy, {"kind": "job.cancelled", "job": "p1"})
    assert ended[0]["data"]["node_id"] == "3"


def test_previews_only_for_own_jobs_that_ask() -> None:
    asked = record("asked", extra_data={"preview_method": "auto"})
    comfy = translator(
        {
            "asked": asked,
            "quiet": record("quiet"),
            "theirs": record("theirs", client_id="x", extra_data={"preview_method": "auto"}),
        }
    )
    for job in ("asked", "quiet", "theirs"):
        comfy.translate({"kind": "job.queued", "job": job})
    assert comfy.wants_preview("asked")
    assert not comfy.wants_preview("quiet") and not comfy.wants_preview("theirs")
    assert not comfy.wants_preview("unknown")


def test_reports_become_comfyui_file_references() -> None:
    assert file_ref({"filename": "a.png", "subfolder": "previews"}) == {
        "filename": "a.png",
        "subfolder": "",
        "type": "temp",
    }
    assert file_ref({"filename": "a.png", "subfolder": "previews/x"})["subfolder"] == "x"
    assert file_ref({"filename": "a.png", "subfolder": "previewsx"})["type"] == "output"
    animation = node_output(
        {"animations": [{"filename": "m.webp", "subfolder": ""}], "text": ["hi"]}
    )
    assert animation == {
        "images": [{"filename": "m.webp", "subfolder": "", "type": "output"}],
        "text": ["hi"],
    }
    assert split_error("ValueError: bad") == ("ValueError", "bad")
    assert split_error("internal error: something") == ("Exception", "internal error: something")


def test_history_entries_and_queue_items() -> None:
    failed = record(
        status="failed",
        started_at=101.0,
        finished_at=102.0,
        error='node "3" (KSampler, sampling.ksampler) failed: ValueError: bad cfg',
        error_node="3",
        node_states={"4": "cached", "3": "failed"},
        extra_data={"extra_pnginfo": {"workflow": {}}},
    )
    entry = history_entry(failed)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    names = [m[0] for m in entry["status"]["messages"]]
    assert names == ["execution_start", "execution_cached", "execution_error"]
    assert entry["status"]["messages"][1][1]["nodes"] == ["4"]
    error = entry["status"]["messages"][2][1]
    assert (error["node_type"], error["exception_type"]) == ("KSampler", "ValueError")
    number, prompt_id, prompt, extra_data, outputs = queue_item(failed)
    assert (number, prompt_id, prompt, outputs) == (5, "p1", PROMPT, ["9"])
    assert extra_data == {"extra_pnginfo": {"workflow": {}}, "client_id": "me"}
    native = record(
        workflow={"schema": "latentloom/workflow", "version": 2, "nodes": {}},
        outputs={"save": SAVED},
    )
    assert queue_item(native)[2] == {} and queue_item(native)[4] == ["save"]
