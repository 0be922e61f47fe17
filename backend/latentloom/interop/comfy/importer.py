"""Open what a ComfyUI user brings: detect the format, then hand it to its reader.

`import_document` takes parsed JSON: our own document (migrated, returned as is), a ComfyUI
API prompt (`api_format`) or a ComfyUI editor workflow, version 0.4 or 1 (`editor_format`).
`import_file_bytes` takes a file's bytes: JSON, or a PNG/WebP whose metadata carries one,
preferring our own `latentloom` chunk, then ComfyUI's `workflow` (the editor graph, with
positions), then `prompt` (`image_metadata`). Whatever is wrong raises `ComfyFormatError`
naming where; nothing is half-imported.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from latentloom.graph.workflow import SCHEMA_ID, WorkflowFormatError, parse_workflow
from latentloom.interop.comfy.api_format import import_api_prompt, looks_like_api_prompt
from latentloom.interop.comfy.convert import ImportResult, describe
from latentloom.interop.comfy.report import ComfyFormatError, ImportReport
from latentloom.registry import Registry

__all__ = ["ImportResult", "import_document", "import_file_bytes"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def import_document(
    document: Any,
    registry: Registry | None = None,
    *,
    source: str = "",
    subgraphs: Literal["keep", "flatten"] = "keep",
) -> ImportResult:
    """Our workflow from any of the JSON shapes we read (ComfyUI subgraphs kept or flattened)."""
    if isinstance(document, dict) and document.get("schema") == SCHEMA_ID:
        try:
            workflow = parse_workflow(document)
        except WorkflowFormatError as error:
            raise ComfyFormatError("", str(error)) from None
        return ImportResult(workflow.to_json(), ImportReport(format="latentloom", source=source))
    if _looks_like_editor(document):
        from latentloom.interop.comfy.editor_format import import_editor_workflow

        return import_editor_workflow(document, registry, source=source, subgraphs=subgraphs)
    if looks_like_api_prompt(document):
        return import_api_prompt(document, registry, source=source)
    raise ComfyFormatError("", _neither(document))


def _looks_like_editor(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("nodes"), list)


def _neither(document: Any) -> str:
    what = "an empty object" if document == {} else describe(document)
    if isinstance(document, dict) and document:
        keys = ", ".join(repr(k) for k in list(document)[:5])
        what = f"an object with keys {keys}"
    return (
        "neither a Latentloom workflow, a ComfyUI API prompt ({id: {class_type, inputs}}) "
        f"nor a ComfyUI editor workflow ({{nodes: [...], links: [...]}}); got {what}"
    )


def import_file_bytes(
    data: bytes, filename: str = "", registry: Registry | None = None
) -> ImportResult:
    """Our workflow from a file's bytes: JSON, or an image carrying a workflow."""
    if data.startswith(PNG_SIGNATURE) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        from latentloom.interop.comfy.image_metadata import embedded_document

        document, source = embedded_document(data, filename)
        return import_document(document, registry, source=source)
    name = filename or "the file"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ComfyFormatError(
            "", f"{name} is neither JSON, PNG nor WebP (byte {error.start} is not UTF-8 text)"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise ComfyFormatError(where, f"{name} is not valid JSON: {error.msg}") from None
    return import_document(document, registry, source="json")
