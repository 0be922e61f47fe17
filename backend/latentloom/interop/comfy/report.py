"""What an import or export did, node by node, and the errors that stop one whole.

Shared by the CLI (`import-comfy` prints the report and exits non-zero when anything is
unsupported), `POST /api/workflows/import` (returns it beside the workflow) and the editor.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# Where a placeholder keeps what ComfyUI said about an unsupported node (see importers).
PLACEHOLDER_PREFIX = "comfy:"

SourceFormat = Literal["latentloom", "comfy-api", "comfy-editor"]


class ComfyFormatError(ValueError):
    """The file is malformed, truncated, or neither format; nothing was imported.

    `where` points into the file (e.g. `nodes[3].widgets_values[2]`), empty when the whole
    file is the problem.
    """

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class MappedNode(BaseModel):
    node: str  # our node id (ComfyUI's id, kept)
    comfy_class: str
    type: str  # our catalog id


class UnsupportedNode(BaseModel):
    node: str
    comfy_class: str
    reason: str  # e.g. "no Latentloom node for this class yet", "uses output MASK"


class ImportReport(BaseModel):
    format: SourceFormat
    source: str = ""  # e.g. "png tEXt 'prompt'", "webp EXIF 0x010F"
    mapped: list[MappedNode] = Field(default_factory=list)
    unsupported: list[UnsupportedNode] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # reroutes folded, primitives inlined...

    @property
    def complete(self) -> bool:
        return not self.unsupported


class ExportReport(BaseModel):
    format: Literal["comfy-api", "comfy-editor"]
    exported: list[MappedNode] = Field(default_factory=list)
    unexportable: list[UnsupportedNode] = Field(default_factory=list)  # no ComfyUI class
    warnings: list[str] = Field(default_factory=list)  # exported, but ComfyUI behaves differently
