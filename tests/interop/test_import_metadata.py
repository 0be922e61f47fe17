"""Workflows carried by images: PNG text chunks and animated WebP EXIF, written here with Pillow."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from latentloom.engine.executor import Engine
from latentloom.graph.workflow import parse_workflow
from latentloom.images import save_png
from latentloom.interop.comfy.importer import import_file_bytes
from latentloom.interop.comfy.report import ComfyFormatError
from tests.support import load_example

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfy"


def fixture_text(name: str) -> str:
    return json.dumps(json.loads((FIXTURES / name).read_text()))


def png(chunks: list[tuple[str, str, str]], size: int = 8) -> bytes:
    """A PNG with text chunks given as (kind, keyword, text); kind is tEXt, zTXt or iTXt."""
    info = PngImagePlugin.PngInfo()
    for kind, keyword, text in chunks:
        if kind == "iTXt":
            info.add_itxt(keyword, text, zip=True)
        else:
            info.add_text(keyword, text, zip=kind == "zTXt")
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), "purple").save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def animated_webp(tags: dict[int, str]) -> bytes:
    exif = Image.Exif()
    for tag, text in tags.items():
        exif[tag] = text
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, "WEBP", save_all=True, append_images=frames[1:], duration=80, exif=exif.tobytes()
    )
    return buffer.getvalue()


def comfy_png() -> bytes:
    return png(
        [
            ("tEXt", "prompt", fixture_text("api_txt2img.json")),
            ("tEXt", "workflow", fixture_text("editor_v04_txt2img.json")),
        ]
    )


def test_png_with_prompt_and_workflow_prefers_the_editor_workflow() -> None:
    result = import_file_bytes(comfy_png(), "ComfyUI_00001_.png")
    assert result.report.format == "comfy-editor"
    assert result.report.source == "png text chunk 'workflow'"
    assert result.workflow["nodes"]["6"]["ui"]["pos"] == [415, 186]


def test_png_with_only_a_prompt_reads_the_api_format() -> None:
    result = import_file_bytes(png([("tEXt", "prompt", fixture_text("api_txt2img.json"))]))
    assert result.report.format == "comfy-api"
    assert result.report.source == "png text chunk 'prompt'"
    assert result.workflow["nodes"]["3"]["type"] == "sampling.ksampler"


@pytest.mark.parametrize("kind", ["zTXt", "iTXt"])
def test_compressed_and_international_text_chunks_are_read(kind: str) -> None:
    result = import_file_bytes(png([(kind, "workflow", fixture_text("editor_v04_txt2img.json"))]))
    assert result.report.format == "comfy-editor"
    assert result.workflow["nodes"]["3"]["inputs"]["steps"] == 2


def test_our_own_chunk_wins_and_older_pngs_with_ours_in_workflow_open_as_ours() -> None:
    ours = load_example("txt2img.json").to_json()
    newer = png(
        [
            ("tEXt", "prompt", fixture_text("api_txt2img.json")),
            ("tEXt", "workflow", fixture_text("editor_v04_txt2img.json")),
            ("tEXt", "latentloom", json.dumps(ours)),
        ]
    )
    older = png([("tEXt", "workflow", json.dumps(ours))])
    for data, source in (
        (newer, "png text chunk 'latentloom'"),
        (older, "png text chunk 'workflow'"),
    ):
        result = import_file_bytes(data)
        assert result.report.format == "latentloom"
        assert result.report.source == source
        assert result.workflow == ours


def test_a_png_we_save_opens_as_the_same_graph(tmp_path: Path) -> None:
    workflow = load_example("txt2img.json").to_json()
    path = tmp_path / "saved.png"
    save_png(Image.new("RGB", (8, 8)), path, workflow)
    result = import_file_bytes(path.read_bytes(), path.name)
    assert result.workflow == workflow
    assert result.report.format == "latentloom"


def test_text_chunks_after_the_pixels_are_found() -> None:
    data = comfy_png()
    # Move every text chunk after IDAT, as some tools write them.
    chunks, offset = [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        chunks.append(data[offset : offset + 12 + length])
        offset += 12 + length
    texts = [c for c in chunks if c[4:8] == b"tEXt"]
    others = [c for c in chunks if c[4:8] != b"tEXt"]
    moved = data[:8] + b"".join(others[:-1] + texts + others[-1:])
    assert import_file_bytes(moved).report.format == "comfy-editor"


def test_animated_webp_exif_carries_prompt_and_workflow() -> None:
    data = animated_webp(
        {
            0x0110: "prompt:" + fixture_text("api_txt2img.json"),
            0x010F: "workflow:" + fixture_text("editor_v1_subgraph.json"),
        }
    )
    result = import_file_bytes(data, "ComfyUI_00001_.webp")
    assert result.report.format == "comfy-editor"
    assert result.report.source == "webp EXIF 0x010F 'workflow'"
    assert result.workflow["nodes"]["10"]["type"] == "subgraph:a3f4c2d1-7e6b-4a8f-9c1d-2b3e4f5a6b7c"
    only_prompt = animated_webp({0x0110: "prompt:" + fixture_text("api_txt2img.json")})
    result = import_file_bytes(only_prompt)
    assert (result.report.format, result.report.source) == (
        "comfy-api",
        "webp EXIF 0x0110 'prompt'",
    )


def test_image_from_png_runs(engine: Engine) -> None:
    workflow = parse_workflow(import_file_bytes(comfy_png()).workflow)
    assert engine.validate(workflow) == []
    assert engine.run(workflow).reports["9"]["images"]


def truncated_in_text_chunk() -> bytes:
    data = comfy_png()
    return data[: data.index(b"tEXt") + 40]


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (
            png([]),
            "plain.png",
            "plain.png carries no workflow (no 'prompt', 'workflow' or 'latentloom' metadata)",
        ),
        (
            png([("tEXt", "workflow", '{"nodes": [')]),
            "",
            "png text chunk 'workflow': is not valid JSON: Expecting value (line 1 column 12)",
        ),
        (
            truncated_in_text_chunk(),
            "cut.png",
            "cut.png chunk 1 (tEXt) at byte 33: the file ends {} byte(s) before this chunk does "
            "(truncated)",
        ),
        (
            animated_webp({0x0110: "prompt:{}"})[:-30],
            "cut.webp",
            "cut.webp RIFF container: declares {} bytes but the file has {} (truncated)",
        ),
        (
            animated_webp({0x010E: "other:1"}),
            "",
            "the image carries no workflow (no 'prompt', 'workflow' or 'latentloom' metadata)",
        ),
    ],
)
def test_broken_images_are_refused_naming_the_file_part(
    data: bytes, name: str, message: str
) -> None:
    with pytest.raises(ComfyFormatError) as raised:
        import_file_bytes(data, name)
    text = str(raised.value)
    parts = message.split("{}")
    assert text.startswith(parts[0]) and text.endswith(parts[-1]), text
    assert all(part in text for part in parts)


def test_a_png_with_a_corrupted_chunk_names_it() -> None:
    data = bytearray(comfy_png())
    at = data.index(b"tEXt") + 10
    data[at] ^= 0xFF
    with pytest.raises(ComfyFormatError) as raised:
        import_file_bytes(bytes(data), "bad.png")
    assert (
        str(raised.value) == "bad.png chunk 1 (tEXt) at byte 33: its checksum is wrong (corrupted)"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello", "line 1 column 1: x.json is not valid JSON: Expecting value"),
        (b'{"nodes": [}', "line 1 column 12: x.json is not valid JSON: Expecting value"),
        (b"\x80\x81", "x.json is neither JSON, PNG nor WebP (byte 0 is not UTF-8 text)"),
    ],
)
def test_files_that_are_not_json_or_images(data: bytes, message: str) -> None:
    with pytest.raises(ComfyFormatError) as raised:
        import_file_bytes(data, "x.json")
    assert str(raised.value) == message


def test_json_bytes_import(tmp_path: Path) -> None:
    data = (FIXTURES / "api_txt2img.json").read_bytes()
    result: Any = import_file_bytes(data, "api.json")
    assert result.report.source == "json"
    assert result.workflow["nodes"]["9"]["type"] == "image.save"
