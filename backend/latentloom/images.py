"""Images in and out: IMAGE tensors <-> Pillow, PNGs that carry their workflow, animations.

IMAGE values are float32 tensors [B, H, W, 3] in 0..1 on the CPU, the layout users of other
node editors expect. Pixels become bytes the way ComfyUI writes them (scale by 255, clip,
truncate), so the same seed gives the same file in both.

A saved PNG carries the workflow that made it three times, as tEXt chunks: `prompt` (the
ComfyUI API prompt: what ComfyUI runs), `workflow` (the ComfyUI editor graph, so ComfyUI opens
our images) and `latentloom` (our own document, which reading prefers). The ComfyUI exports
are computed once per distinct document, not once per image; a node ComfyUI cannot run is
left out of them (the export report says which), never a reason not to save. PNGs written
before the `latentloom` chunk existed hold our document in `workflow`; reading tells the two
apart by content.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from latentloom.safe_write import atomic_write, reserve_new, writable_folder

if TYPE_CHECKING:
    from latentloom.graph.workflow import Workflow

LATENTLOOM_CHUNK = "latentloom"
PROMPT_CHUNK = "prompt"
WORKFLOW_CHUNK = "workflow"

log = logging.getLogger(__name__)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """ComfyUI's conversion: `clip(255 * x, 0, 255)` in float32, then truncated to uint8."""
    values = np.nan_to_num(images.detach().float().cpu().numpy(), nan=0.0, posinf=1.0, neginf=0.0)
    pixels = np.clip(np.float32(255.0) * values, 0, 255).astype(np.uint8)
    return [Image.fromarray(frame, mode="RGB") for frame in pixels]


def from_pil(image: Image.Image) -> torch.Tensor:
    """One RGB image as a [1, H, W, 3] float tensor."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).unsqueeze(0)


def save_png(image: Image.Image, path: Path, workflow: dict[str, Any] | None) -> None:
    """Write a PNG carrying `workflow` (our document JSON) and its ComfyUI exports."""
    write_png(image, path, png_text_chunks(workflow))


def write_png(image: Image.Image, path: Path, chunks: list[tuple[str, str]]) -> None:
    """Write a PNG with these tEXt chunks (see `png_text_chunks`), in this order."""
    info = PngImagePlugin.PngInfo()
    for keyword, text in chunks:
        info.add_text(keyword, text)
    # No timestamps or other varying metadata: same pixels + workflow -> same bytes.
    atomic_write(path, lambda file: image.save(file, format="PNG", pnginfo=info, compress_level=4))


def png_text_chunks(workflow: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The tEXt chunks for our document: ComfyUI's `prompt` and `workflow`, then ours."""
    if workflow is None:
        return []
    ours = _compact(workflow)
    return [*_comfy_chunks(ours), (LATENTLOOM_CHUNK, ours)]


@functools.lru_cache(maxsize=8)
def _comfy_chunks(document_text: str) -> tuple[tuple[str, str], ...]:
    """ComfyUI's two chunks for one document; cached, since a run saves many images of it."""
    from latentloom.graph.workflow import WorkflowFormatError, parse_workflow

    try:
        workflow = parse_workflow(json.loads(document_text))
    except WorkflowFormatError:
        return ()  # not a whole document (e.g. a bare test fixture): ours alone is written
    # A prompt queued through ComfyUI's /prompt route is written back as its client sent it,
    # with each extra_pnginfo entry as its own chunk, as ComfyUI's Save Image does.
    sent = _sent_by_comfy_client(workflow.meta)
    try:
        chunks = {**_exported_chunks(workflow, skip=set(sent)), **sent}
    except Exception:  # an image must never be lost to its metadata; say so loudly
        log.exception("could not export the workflow for ComfyUI; saving without its chunks")
        chunks = sent
    ordered = [*_COMFY_KEYS, *(key for key in chunks if key not in _COMFY_KEYS)]
    return tuple((key, chunks[key]) for key in ordered if key in chunks)


def _exported_chunks(workflow: Workflow, skip: set[str]) -> dict[str, str]:
    """Our document exported as ComfyUI's `prompt` and `workflow`, except the keys in `skip`."""
    from latentloom.interop.comfy.convert import default_registry
    from latentloom.interop.comfy.exporter import export_api, export_editor

    registry = default_registry()
    chunks = {}
    if PROMPT_CHUNK not in skip:
        prompt, report = export_api(workflow, registry)
        if report.unexportable:
            left_out = ", ".join(f"{u.node} ({u.reason})" for u in report.unexportable)
            log.info("saved images' ComfyUI prompt leaves out nodes it cannot run: %s", left_out)
        if prompt:
            chunks[PROMPT_CHUNK] = _compact(prompt)
    if WORKFLOW_CHUNK not in skip:
        chunks[WORKFLOW_CHUNK] = _compact(export_editor(workflow, registry)[0])
    return chunks


_COMFY_KEYS = (PROMPT_CHUNK, WORKFLOW_CHUNK)


def _sent_by_comfy_client(meta: dict[str, Any]) -> dict[str, str]:
    """`prompt` and the extra_pnginfo entries a ComfyUI client sent with its prompt, if any."""
    request = meta.get("comfy_api")
    if not isinstance(request, dict) or not isinstance(request.get("prompt"), dict):
        return {}
    chunks = {PROMPT_CHUNK: _compact(request["prompt"])}
    extra = request.get("extra_data")
    pnginfo = extra.get("extra_pnginfo") if isinstance(extra, dict) else None
    if isinstance(pnginfo, dict):
        for key, value in pnginfo.items():
            if isinstance(key, str) and key and key != LATENTLOOM_CHUNK:
                chunks[key] = _compact(value)
    return chunks


def _compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


def png_text(path: Path) -> dict[str, str]:
    """The text chunks of a PNG, by keyword."""
    with Image.open(path) as image:
        info: dict[Any, Any] = dict(image.info)
    return {str(key): value for key, value in info.items() if isinstance(value, str)}


def read_png_workflow(path: Path) -> dict[str, Any] | None:
    """Our document from a PNG, or None when it carries no workflow at all.

    Our own chunk first, then an older Latentloom PNG's `workflow` chunk (our schema), then
    ComfyUI's chunks through the importer (its editor graph, else its API prompt).
    """
    texts = png_text(path)
    if LATENTLOOM_CHUNK in texts:
        document: dict[str, Any] = json.loads(texts[LATENTLOOM_CHUNK])
        return document
    if WORKFLOW_CHUNK in texts:
        older = _json_or_none(texts[WORKFLOW_CHUNK])
        if isinstance(older, dict) and older.get("schema") == "latentloom/workflow":
            return older
    if WORKFLOW_CHUNK not in texts and PROMPT_CHUNK not in texts:
        return None
    from latentloom.interop.comfy.importer import import_file_bytes

    return import_file_bytes(Path(path).read_bytes(), Path(path).name).workflow


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None  # the importer names what is wrong with it


def save_animation(
    frames: list[Image.Image], path: Path, *, fps: float, format: Literal["webp", "gif"], loop: bool
) -> None:
    """An animated WebP or GIF that loops forever, or plays once with `loop=False`.

    The formats count differently. A WebP's loop count is how many times it plays (0: forever),
    so once is 1. A GIF's NETSCAPE2.0 block says how many times to *repeat* after the first
    play (0: forever), so browsers play a GIF with count 1 twice; a GIF that plays once has no
    such block at all, which is what Pillow writes when `loop` is not given.
    """
    duration_ms = max(1, round(1000 / fps))
    options: dict[str, Any] = {
        "save_all": True,
        "append_images": frames[1:],
        "duration": duration_ms,
    }
    if loop:
        options["loop"] = 0
    elif format == "webp":
        options["loop"] = 1
    if format == "webp":
        options.update(lossless=False, quality=90, method=4)
    first = frames[0].copy()
    first.info.pop("loop", None)  # Pillow would write a loop count it finds here, too
    atomic_write(path, lambda file: first.save(file, format=format.upper(), **options))


def next_free_path(folder: Path, prefix: str, suffix: str) -> Path:
    """`prefix_00001.suffix`, the first counter not taken yet in `folder`, reserved.

    The folder is created if missing and must be a real folder, not a symlink (WriteRefused
    names it). The name is reserved by creating the file, empty and exclusively, so two saves
    never take one name and a link planted under the next name is skipped, never followed;
    the writers above then replace the empty file in one rename.
    """
    folder = writable_folder(folder)
    safe_prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in prefix)[:64] or "image"
    taken = {p.name for p in folder.glob(f"{safe_prefix}_*{suffix}")}
    counter = 1
    while f"{safe_prefix}_{counter:05d}{suffix}" in taken:
        counter += 1
    names = (f"{safe_prefix}_{n:05d}{suffix}" for n in itertools.count(counter))
    return reserve_new(folder, names)


def save_pngs(
    images: torch.Tensor,
    output_dir: Path,
    subfolder: str,
    prefix: str,
    workflow: dict[str, Any] | None,
) -> list[dict[str, str]]:
    """Each image as a PNG carrying the workflow under `output_dir/subfolder`; report entries.

    The workflow's text chunks are made once for the batch. Each entry is what the editor and
    ComfyUI clients expect of a saved image: `{"filename", "subfolder"}` relative to the
    output folder.
    """
    chunks = png_text_chunks(workflow)
    saved = []
    for picture in to_pil(images):
        path = next_free_path(output_dir / subfolder, prefix, ".png")
        write_png(picture, path, chunks)
        saved.append(saved_entry(path, output_dir))
    return saved


def saved_entry(path: Path, root: Path) -> dict[str, str]:
    """A written file as a report entry: its name and folder relative to the output folder."""
    relative = path.relative_to(root)
    return {"filename": relative.name, "subfolder": relative.parent.as_posix().strip(".")}
