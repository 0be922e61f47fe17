"""The workflow document, version 3, as pydantic models.

Only `nodes[*].type`, `nodes[*].inputs` and `nodes[*].mode` are executable; `title`, `ui`,
`groups` and `meta` are editor state and never reach results or cache keys. `subgraphs` holds definitions that
`graph/subgraphs.py` checks here and flattens before validation. Documents of older versions are
migrated forward in one step each (`MIGRATIONS`); anything else fails whole with the reason,
so a file is never half-loaded. Before anything reads it, a document is held to the bounds in
`graph/document_bounds.py` (depth, finite numbers, string and id lengths, node count).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from latentloom.graph.document_bounds import DocumentBoundsError, check_document, load_json

SCHEMA_ID: Final = "latentloom/workflow"
CURRENT_VERSION: Final = 3
# Version 3 added subgraphs; a document without any is still written as version 2, so the
# files of builds that predate subgraphs (examples included) stay readable by those builds.
PLAIN_VERSION: Final = 2

Scalar = int | float | str | bool
LiteralValue = Scalar | list[Scalar]
# run: as usual; mute: the node and what only it feeds don't run; bypass: each input passes
# through to the node's first output of the same type (ComfyUI's modes 0, 2 and 4).
NodeMode = Literal["run", "mute", "bypass"]


class WorkflowFormatError(Exception):
    """The document is not a workflow this version can read; nothing was loaded."""


class Link(BaseModel):
    """An input fed by another node's output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str = Field(min_length=1)
    output: str = Field(min_length=1)


class WorkflowNode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        min_length=1, description="Catalog id of the node type, e.g. 'sampling.ksampler'"
    )
    inputs: dict[str, Link | LiteralValue] = Field(default_factory=dict)
    mode: NodeMode = "run"
    title: str | None = None
    ui: dict[str, Any] = Field(
        default_factory=dict, description="Editor state: pos, size, collapsed..."
    )


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["latentloom/workflow"] = Field(SCHEMA_ID, alias="schema")
    version: Literal[3] = CURRENT_VERSION
    nodes: dict[str, WorkflowNode]
    # Subgraph definitions by id, checked and flattened by graph/subgraphs.py.
    subgraphs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    groups: list[dict[str, Any]] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        for node in document["nodes"].values():
            if node["mode"] == "run":
                del node["mode"]  # the default: files stay as they were written
        if not document["subgraphs"]:
            del document["subgraphs"]
            document["version"] = PLAIN_VERSION
        return document

    def with_input(self, node_id: str, input_name: str, value: LiteralValue) -> Workflow:
        """A copy with one literal input replaced (used by `latentloom run --set`)."""
        if node_id not in self.nodes:
            raise WorkflowFormatError(
                f"--set names node {node_id!r}, which the workflow does not have"
            )
        copy = self.model_copy(deep=True)
        copy.nodes[node_id].inputs[input_name] = value
        return copy


def _from_version_1(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added node modes; every version-1 node runs, which is the default."""
    return {**document, "version": 2}


def _from_version_2(document: dict[str, Any]) -> dict[str, Any]:
    """Version 3 added subgraph definitions; a version-2 document has none."""
    return {**document, "version": 3}


# version -> function turning a document of that version into one of the next version.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _from_version_1,
    2: _from_version_2,
}


def parse_workflow(document: Any) -> Workflow:
    if not isinstance(document, dict):
        raise WorkflowFormatError(f"a workflow is a JSON object, got {type(document).__name__}")
    if document.get("schema") != SCHEMA_ID:
        raise WorkflowFormatError(
            f'not a Latentloom workflow: expected "schema": "{SCHEMA_ID}", '
            f"got {document.get('schema')!r}"
        )
    try:
        check_document(document)
    except DocumentBoundsError as error:
        raise WorkflowFormatError(f"the workflow passes a bound: {error}") from None
    document = _migrate(document)
    try:
        workflow = Workflow.model_validate(document)
    except ValidationError as error:
        raise WorkflowFormatError(_describe(error)) from None
    # Imported here: subgraphs.py builds on this module's models.
    from latentloom.graph import subgraphs

    problems = subgraphs.check(workflow)
    if problems:
        raise WorkflowFormatError("invalid workflow document:\n  " + "\n  ".join(problems))
    return workflow


def _migrate(document: dict[str, Any]) -> dict[str, Any]:
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise WorkflowFormatError(f'"version" must be an integer, got {version!r}')
    if version > CURRENT_VERSION:
        raise WorkflowFormatError(
            f"workflow version {version} was written by a newer Latentloom; "
            f"this one reads versions up to {CURRENT_VERSION}"
        )
    while version < CURRENT_VERSION:
        if version not in MIGRATIONS:
            raise WorkflowFormatError(f"workflow version {version} is not supported (no migration)")
        document = MIGRATIONS[version](document)
        version += 1
    return document


def _describe(error: ValidationError) -> str:
    lines = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail["loc"])
        lines.append(f"{where}: {detail['msg']}")
    return "invalid workflow document:\n  " + "\n  ".join(lines)


def load_workflow_file(path: Path) -> Workflow:
    try:
        document = load_json(Path(path).read_text(encoding="utf-8"))
    except DocumentBoundsError as error:
        raise WorkflowFormatError(f"{path}: {error}") from None
    return parse_workflow(document)


def workflow_json_schema() -> dict[str, Any]:
    return Workflow.model_json_schema(by_alias=True)
