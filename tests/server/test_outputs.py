"""Output files: confined resolution, image-only media types, resized previews."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from latentloom.server.outputs import MediaRefused, media_type_for, preview_bytes, resolve_output
from latentloom.server.paths import PathRefused


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "output"
    (folder / "previews").mkdir(parents=True)
    Image.new("RGB", (400, 200), (200, 30, 30)).save(folder / "wide.png")
    Image.new("RGBA", (100, 300), (0, 0, 255, 0)).save(folder / "previews" / "tall.png")
    (tmp_path / "private.png").write_bytes(b"not yours")
    return folder


def test_outputs_resolve_inside_the_folder(output_dir: Path) -> None:
    assert (
        resolve_output(output_dir, "previews/tall.png")
        == (output_dir / "previews" / "tall.png").resolve()
    )


@pytest.mark.parametrize(
    "relative",
    ["../private.png", "%2e%2e/private.png", "/etc/passwd", "..\\private.png", "x\x00.png"],
)
def test_escaping_outputs_are_refused(output_dir: Path, relative: str) -> None:
    with pytest.raises(PathRefused):
        resolve_output(output_dir, relative)


def test_symlinks_out_of_the_output_folder_are_refused(output_dir: Path, tmp_path: Path) -> None:
    (output_dir / "link.png").symlink_to(tmp_path / "private.png")
    with pytest.raises(PathRefused, match="resolves outside its folder"):
        resolve_output(output_dir, "link.png")


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("a.png", "image/png"),
        ("a.JPG", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.webp", "image/webp"),
        ("a.gif", "image/gif"),
    ],
)
def test_image_media_types(name: str, media_type: str) -> None:
    assert media_type_for(Path(name)) == media_type


@pytest.mark.parametrize("name", ["a.svg", "a.html", "a.htm", "a.json", "a.js", "a", "a.png.html"])
def test_everything_else_is_not_served(name: str) -> None:
    with pytest.raises(MediaRefused) as refused:
        media_type_for(Path(name))
    assert str(refused.value) == (
        f"{name!r} is not served: only .png, .jpg, .jpeg, .webp and .gif images are"
    )


@pytest.mark.parametrize("image_format", ["webp", "jpeg"])
def test_previews_are_shrunk_to_max_size(output_dir: Path, image_format: str) -> None:
    data = preview_bytes(output_dir / "wide.png", max_size=100, format=image_format)  # type: ignore[arg-type]
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.format == image_format.upper()
        assert preview.size == (100, 50)
        red, green, blue = preview.convert("RGB").getpixel((50, 25))  # type: ignore[misc]
        assert red > 150 and green < 80 and blue < 80


def test_small_images_are_not_enlarged(output_dir: Path) -> None:
    data = preview_bytes(output_dir / "wide.png", max_size=1000, format="webp")
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.size == (400, 200)


def test_jpeg_previews_put_transparency_on_white(output_dir: Path) -> None:
    data = preview_bytes(output_dir / "previews" / "tall.png", max_size=60, format="jpeg")
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.size == (20, 60)
        assert preview.mode == "RGB"
        assert min(preview.getpixel((10, 30))) > 240  # type: ignore[arg-type]
    webp = preview_bytes(output_dir / "previews" / "tall.png", max_size=60, format="webp")
    with Image.open(io.BytesIO(webp)) as preview:
        assert preview.mode == "RGBA"


def test_preview_arguments_are_checked(output_dir: Path) -> None:
    with pytest.raises(ValueError, match="max_size must be at least 1 pixel, got 0"):
        preview_bytes(output_dir / "wide.png", max_size=0, format="webp")
    with pytest.raises(
        ValueError, match="preview format must be one of \\['jpeg', 'webp'\\], got 'png'"
    ):
        preview_bytes(output_dir / "wide.png", max_size=10, format="png")  # type: ignore[arg-type]
    (output_dir / "page.html").write_text("<script>")
    with pytest.raises(MediaRefused):
        preview_bytes(output_dir / "page.html", max_size=10, format="webp")
