"""safe_name and confined against real folders and real symlinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from latentloom.server.paths import PathRefused, confined, real_subfolder, safe_name

IMAGES = frozenset({".png", ".jpg"})


@pytest.mark.parametrize(
    "name", ["cat.png", "my photo (1).png", "été.jpg", "a..b.png", "100%.png", "CONSOLE.png"]
)
def test_plain_names_pass_unchanged(name: str) -> None:
    assert safe_name(name, allowed_suffixes=IMAGES) == name


def test_names_are_nfc_normalised() -> None:
    assert safe_name("e\u0301te\u0301.png") == "\u00e9t\u00e9.png"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "the name is empty"),
        ("x" * 125 + ".png", "the name is 129 characters long; the limit is 128"),
        ("../cat.png", "a file name may not contain '/' or '\\'; pick a name without folders"),
        ("a/b.png", "a file name may not contain '/' or '\\'; pick a name without folders"),
        ("a\\b.png", "a file name may not contain '/' or '\\'; pick a name without folders"),
        ("cat\x00.png", "it contains a NUL byte"),
        ("cat\n.png", "it contains the control character U+000A"),
        ("gnp\u202e.exe", "it contains the control character U+202E"),
        ("c:cat.png", 'a file name may not contain any of < > : " | ? *'),
        ("what?.png", 'a file name may not contain any of < > : " | ? *'),
        ("%2e%2e.png", "it contains a %XX escape; send the name decoded"),
        ("..", "a file name may not start with '.'"),
        (".htaccess", "a file name may not start with '.'"),
        (" cat.png", "a file name may not start or end with a space, or end with '.'"),
        ("cat.png.", "a file name may not start or end with a space, or end with '.'"),
        ("nul.png", "'nul' is a reserved device name on Windows"),
        ("COM1", "'COM1' is a reserved device name on Windows"),
        ("page.html", "the name must end in one of .jpg, .png; got '.html'"),
        ("README", "the name must end in one of .jpg, .png; got 'no suffix'"),
    ],
)
def test_unsafe_names_are_refused(name: str, reason: str) -> None:
    with pytest.raises(PathRefused) as refused:
        safe_name(name, allowed_suffixes=IMAGES)
    assert refused.value.reason == reason
    assert str(refused.value) == f"refused {name!r}: {reason}"


def test_suffixes_compare_case_insensitively() -> None:
    assert safe_name("CAT.PNG", allowed_suffixes=IMAGES) == "CAT.PNG"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.png").write_bytes(b"a")
    (tmp_path / "secret.txt").write_text("secret")
    return folder


def test_relative_paths_resolve_inside(root: Path) -> None:
    assert confined(root, "sub/a.png") == (root / "sub" / "a.png").resolve()
    assert confined(root, "sub/new.png") == (root / "sub" / "new.png").resolve()  # need not exist


def test_percent_escapes_are_decoded_once(root: Path) -> None:
    assert confined(root, "sub/%61.png") == (root / "sub" / "a.png").resolve()
    assert confined(root, "100%.png") == (root / "100%.png").resolve()  # not an escape


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("../secret.txt", "'..' may not appear in a path"),
        ("sub/../../secret.txt", "'..' may not appear in a path"),
        ("%2e%2e/secret.txt", "'..' may not appear in a path"),
        ("%2E%2E/secret.txt", "'..' may not appear in a path"),
        ("%2e%2e%2fsecret.txt", "the escape %2f encodes a separator or NUL"),
        ("..%5csecret.txt", "the escape %5c encodes a separator or NUL"),
        ("a.png%00.txt", "the escape %00 encodes a separator or NUL"),
        ("%252e%252e/secret.txt", "it is percent-encoded twice"),
        ("%ff.png", "its %XX escapes are not valid UTF-8"),
        ("/etc/passwd", "absolute paths are not allowed; give a path relative to the folder"),
        ("%2fetc/passwd", "the escape %2f encodes a separator or NUL"),
        (
            "C:/Windows/win.ini",
            "absolute paths are not allowed; give a path relative to the folder",
        ),
        ("..\\secret.txt", "backslashes are not path separators here; use '/'"),
        ("sub\\a.png", "backslashes are not path separators here; use '/'"),
        ("a.png\x00.txt", "it contains a NUL byte"),
        ("sub/\x1b.png", "it contains the control character U+001B"),
        ("", "the path is empty"),
        ("sub//a.png", "empty or '.' path segments are not allowed"),
        ("./sub/a.png", "empty or '.' path segments are not allowed"),
        ("sub/", "empty or '.' path segments are not allowed"),
    ],
)
def test_escapes_are_refused(root: Path, relative: str, reason: str) -> None:
    with pytest.raises(PathRefused) as refused:
        confined(root, relative)
    assert refused.value.reason == reason
    assert refused.value.path == relative


def test_symlink_pointing_outside_is_refused(root: Path, tmp_path: Path) -> None:
    (root / "leak.png").symlink_to(tmp_path / "secret.txt")
    (root / "out").symlink_to(tmp_path, target_is_directory=True)
    for relative in ("leak.png", "out/secret.txt", "out"):
        with pytest.raises(PathRefused) as refused:
            confined(root, relative)
        assert refused.value.reason == "it resolves outside its folder (a symlink points out)"


def test_symlink_inside_the_folder_is_followed(root: Path) -> None:
    (root / "alias.png").symlink_to(root / "sub" / "a.png")
    assert confined(root, "alias.png") == (root / "sub" / "a.png").resolve()


def test_a_symlinked_root_is_fine(root: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(root, target_is_directory=True)
    assert confined(tmp_path / "link", "sub/a.png") == (root / "sub" / "a.png").resolve()


def test_a_looping_symlink_is_a_missing_file_not_an_error(root: Path) -> None:
    (root / "loop.png").symlink_to(root / "loop.png")
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    assert not confined(root, "loop.png").is_file()
    assert not confined(root, "a/x.png").exists()


def test_real_subfolder_creates_real_folders_and_refuses_links(root: Path, tmp_path: Path) -> None:
    made = real_subfolder(root, ".history", "portrait")
    assert made == root / ".history" / "portrait" and made.is_dir() and not made.is_symlink()
    (root / ".history" / "planted").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(PathRefused) as refused:
        real_subfolder(root, ".history", "planted")
    assert str(refused.value) == (
        f"refused '.history/planted': it is a symlink (to {tmp_path}); files are written only "
        "into real folders, so remove the link or replace it with a folder"
    )
    with pytest.raises(PathRefused) as refused:
        real_subfolder(root, ".history", "..")
    assert refused.value.reason == "a folder name may not be empty, '.', '..' or hold a separator"
