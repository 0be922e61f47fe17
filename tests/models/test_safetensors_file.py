from __future__ import annotations

import json
import mmap
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from latentloom.models import safetensors_file
from latentloom.models.errors import (
    PICKLE_ADVICE,
    CheckpointError,
    CorruptCheckpointError,
    PickleCheckpointError,
)
from latentloom.models.safetensors_file import SafetensorsFile


def sample_tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(3, 5, generator=generator)
    return {
        "f32": base,
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "f64": base.double(),
        "i64": torch.arange(7),
        "i8": torch.tensor([-3, 0, 5], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }


def write_raw(path: Path, header: object, data: bytes, header_len: int | None = None) -> Path:
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    length = len(encoded) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", length) + encoded + data)
    return path


def entry(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def test_reads_every_dtype_exactly_as_the_reference_library(tmp_path: Path) -> None:
    path = tmp_path / "sample.safetensors"
    save_file(sample_tensors(), path, metadata={"note": "hello"})
    reference = load_file(path)
    with SafetensorsFile(path) as file:
        assert sorted(file.keys()) == sorted(reference)
        assert file.metadata == {"note": "hello"}
        for name, expected in reference.items():
            assert file.shape(name) == tuple(expected.shape)
            assert file.dtype(name) == expected.dtype
            got = file.read(name)
            assert got.dtype == expected.dtype and torch.equal(got, expected), name


@pytest.mark.parametrize(
    ("stored", "wanted"),
    [
        (torch.float16, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.float32, torch.float16),
        (torch.float16, torch.bfloat16),
    ],
)
def test_converting_read_goes_through_small_slices_and_is_exact(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stored: torch.dtype,
    wanted: torch.dtype,
) -> None:
    # A 24-byte scratch forces many slices, including a short last one; without madvise the
    # conversion cannot go through the memory map, so it takes the slices.
    monkeypatch.setattr(safetensors_file, "SCRATCH_BYTES", 24)
    monkeypatch.delattr(mmap, "MADV_DONTNEED", raising=False)
    tensor = torch.randn(7, 9, generator=torch.Generator().manual_seed(1)).to(stored)
    path = tmp_path / "one.safetensors"
    save_file({"w": tensor}, path)
    with SafetensorsFile(path) as file:
        got = file.read("w", dtype=wanted)
    assert got.dtype == wanted
    assert torch.equal(got, tensor.to(wanted))


def test_converting_reads_from_the_map_and_spares_a_patched_neighbours_page(
    tmp_path: Path,
) -> None:
    # 3001 fp16 values: "a" ends mid-page, so its last page is also "b"'s first.
    generator = torch.Generator().manual_seed(2)
    a = torch.randn(3001, generator=generator).half()
    b = torch.randn(5000, generator=generator).half()
    path = tmp_path / "two.safetensors"
    save_file({"a": a, "b": b}, path)
    with SafetensorsFile(path) as file:
        mapped = file.map("a")
        assert mapped is not None
        mapped[-1] = 123.0  # patched in place: a private copy of the shared page
        got = file.read("b", dtype=torch.float32)
        assert file._scratch is None  # converted from the map, not through the slices
        assert torch.equal(got, b.float())
        assert mapped[-1].item() == 123.0  # dropping "b"'s pages kept the shared one
        assert torch.equal(mapped[:-1], a[:-1])


def test_unknown_key_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "one.safetensors"
    save_file({"w": torch.zeros(2)}, path)
    with SafetensorsFile(path) as file, pytest.raises(KeyError, match="no tensor named 'x'"):
        file.read("x")


# --- damaged files: every problem named, with the file ---------------------------------


def corrupt_message(path: Path) -> str:
    with pytest.raises(CorruptCheckpointError) as caught:
        SafetensorsFile(path)
    assert isinstance(caught.value, CheckpointError)
    assert str(caught.value).startswith(f"{path}: ")
    return caught.value.problem


def test_file_shorter_than_the_length_field(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x01\x02\x03\x04")
    assert corrupt_message(path) == (
        "file is 4 bytes; a safetensors file starts with an 8-byte header length"
    )


def test_header_length_beyond_the_file(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "long.safetensors", {}, b"", header_len=5_000)
    assert corrupt_message(path) == (
        "header length field says 5,000 bytes but the file has 2 after it "
        "(limit 100,000,000); not a safetensors file, or a damaged one"
    )


def test_header_that_is_not_json(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "json.safetensors", b"{not json}", b"")
    assert corrupt_message(path).startswith("header is not valid UTF-8 JSON (")


def test_header_that_is_not_an_object(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "list.safetensors", b"[]", b"")
    assert corrupt_message(path) == "header is a JSON list, expected an object"


def test_entries_with_missing_or_bad_fields_are_all_reported(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "F32", "shape": [1]},
        "b": entry("F33", [1], 0, 4),
        "c": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]},
        "d": {"dtype": "F32", "shape": [1], "data_offsets": [4]},
        "e": entry("F32", [4], 0, 8),
    }
    path = write_raw(tmp_path / "fields.safetensors", header, bytes(8))
    assert corrupt_message(path) == (
        "entry 'a' lacks data_offsets; "
        "entry 'b' has dtype 'F33'; known: F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, "
        "I16, I8, U8, BOOL; "
        "entry 'c' has shape [-1], expected a list of non-negative integers; "
        "entry 'd' has data_offsets [4], expected [begin, end]; "
        "entry 'e' spans 8 bytes but F32 [4] needs 16"
    )


def test_truncated_file_says_how_much_is_missing(tmp_path: Path) -> None:
    header = {"big": entry("F32", [525_000_000], 0, 2_100_000_000)}
    path = write_raw(tmp_path / "truncated.safetensors", header, bytes(1_000_000))
    assert corrupt_message(path) == (
        "truncated: header says 2,100,000,000 bytes of tensors, file has 1,000,000"
    )


def test_overlapping_gapped_and_trailing_offsets(tmp_path: Path) -> None:
    overlapping = {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}
    path = write_raw(tmp_path / "overlap.safetensors", overlapping, bytes(12))
    assert corrupt_message(path) == "entry 'b' overlaps the tensor before it"

    gapped = {"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}
    path = write_raw(tmp_path / "gap.safetensors", gapped, bytes(12))
    assert corrupt_message(path) == "gap of 4 bytes before entry 'b'"

    trailing = {"a": entry("F32", [1], 0, 4)}
    path = write_raw(tmp_path / "trailing.safetensors", trailing, bytes(10))
    assert corrupt_message(path) == "6 bytes after the last tensor that no header entry covers"


def test_metadata_must_be_strings(tmp_path: Path) -> None:
    header = {"__metadata__": {"steps": 5}, "a": entry("F32", [1], 0, 4)}
    path = write_raw(tmp_path / "meta.safetensors", header, bytes(4))
    assert corrupt_message(path) == "__metadata__ must map strings to strings"


# --- pickle checkpoints: refused, never unpickled ----------------------------------------


def test_torch_zip_checkpoint_renamed_to_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "renamed.safetensors"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(PickleCheckpointError) as caught:
        SafetensorsFile(path)
    assert str(caught.value) == (
        f"{path}: this is not a safetensors file but a zip archive, the format torch.save "
        f"writes (a pickle checkpoint). {PICKLE_ADVICE}"
    )
    assert "torch.load(path, weights_only=True)" in PICKLE_ADVICE
    assert "safetensors.torch.save_file" in PICKLE_ADVICE


def test_bare_pickle_renamed_to_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "renamed.safetensors"
    path.write_bytes(pickle.dumps({"w": [0.0, 1.0]}, protocol=2))
    with pytest.raises(PickleCheckpointError, match=r"a pickle stream \(protocol 2\)"):
        SafetensorsFile(path)


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth", ".bin", ".CKPT"])
def test_pickle_suffixes_are_refused_without_opening_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"  # does not exist: refusing must not need to open it
    with pytest.raises(PickleCheckpointError) as caught:
        SafetensorsFile(path)
    assert str(caught.value) == (
        f"{path}: '{suffix}' files are pickle checkpoints and are not loaded. {PICKLE_ADVICE}"
    )


# --- hostile headers: refused cheaply, naming the file -----------------------------------


def test_metadata_nested_ten_thousand_deep(tmp_path: Path) -> None:
    nested = b'{"__metadata__": ' + b'{"a": ' * 10_000 + b'"x"' + b"}" * 10_000 + b"}"
    path = write_raw(tmp_path / "deep.safetensors", nested, b"")
    assert corrupt_message(path) == (
        "header nests JSON too deeply to parse (a safetensors header nests 3 levels)"
    )


def test_a_header_with_too_many_values_is_refused_before_parsing(tmp_path: Path) -> None:
    shape = b"[" + b"0," * 2_000_000 + b"0]"
    header = b'{"a": {"dtype": "F32", "shape": ' + shape + b', "data_offsets": [0, 0]}}'
    path = write_raw(tmp_path / "wide.safetensors", header, b"")
    assert corrupt_message(path) == (
        "header holds up to 2,000,008 JSON values; the limit is 2,000,000 "
        "(a real checkpoint's header holds far fewer)"
    )


def test_values_of_the_wrong_types_and_absurd_shapes(tmp_path: Path) -> None:
    header = {
        "list_dtype": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]},
        "float_shape": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]},
        "bool_offsets": {"dtype": "F32", "shape": [1], "data_offsets": [False, True]},
        "many_dims": entry("F32", [1] * 17, 0, 4),
        "huge_dim": entry("F32", [0, 2**64], 4, 4),
        "x" * 500: {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]},
    }
    path = write_raw(tmp_path / "types.safetensors", header, bytes(4))
    assert corrupt_message(path) == (
        "entry 'list_dtype' has dtype ['F32']; known: F64, F32, F16, BF16, F8_E4M3, F8_E5M2, "
        "I64, I32, I16, I8, U8, BOOL; "
        "entry 'float_shape' has shape [1.0], expected a list of non-negative integers; "
        "entry 'bool_offsets' has data_offsets [False, True], expected [begin, end]; "
        "entry 'many_dims' has shape [1, 1, 1, 1, 1, 1, 1, 1, ...]: at most 16 dimensions of at "
        "most 2^63 - 1 each; "
        "entry 'huge_dim' has shape [0, 18446744073709551616]: at most 16 dimensions of at "
        "most 2^63 - 1 each; "
        f"entry '{'x' * 77}...' has shape '1', expected a list of non-negative integers"
    )


def test_an_integer_too_long_to_convert(tmp_path: Path) -> None:
    header = b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 4]}}'
    path = write_raw(tmp_path / "digits.safetensors", header, bytes(4))
    assert corrupt_message(path).startswith(
        "header is not valid UTF-8 JSON (Exceeds the limit (4300 digits) for integer string"
    )


def test_overlapping_offsets_that_tile_the_file_size(tmp_path: Path) -> None:
    # the sizes add up to the file, but two tensors share bytes and one runs past the end
    header = {"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}
    path = write_raw(tmp_path / "shared.safetensors", header, bytes(8))
    assert corrupt_message(path) == (
        "entry 'b' overlaps the tensor before it; truncated: header says 12 bytes of tensors, "
        "file has 8"
    )
