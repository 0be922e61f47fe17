from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.safetensors_write import TensorSpec, save_tensors, write_safetensors


def tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return {
        "z.weight": torch.randn(4, 3, generator=generator).half(),
        "a.bias": torch.randn(5, generator=generator).bfloat16(),
        "m.steps": torch.arange(3),
        "scalar": torch.tensor(1.5),
    }


def test_output_reads_back_in_the_reference_library_and_ours(tmp_path: Path) -> None:
    path = tmp_path / "out.safetensors"
    save_tensors(path, tensors(), metadata={"b": "2", "a": "1"})
    reference = load_file(path)
    for name, tensor in tensors().items():
        assert reference[name].dtype == tensor.dtype and torch.equal(reference[name], tensor)
    with SafetensorsFile(path) as file:
        assert file.metadata == {"a": "1", "b": "2"}
        assert file.keys() == sorted(tensors())  # entries are written sorted by name
        (header_len,) = struct.unpack("<Q", path.read_bytes()[:8])
        assert header_len % 8 == 0


def test_same_tensors_give_the_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "1.safetensors", tmp_path / "2.safetensors"
    save_tensors(first, tensors(), metadata={"k": "v"})
    save_tensors(second, dict(reversed(tensors().items())), metadata={"k": "v"})
    assert first.read_bytes() == second.read_bytes()


def test_produced_tensor_must_match_its_spec_and_no_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    spec = TensorSpec("w", torch.float16, (2, 2))
    with pytest.raises(ValueError, match=r"'w' was declared torch.float16 \[2, 2\] but produced"):
        write_safetensors(path, [spec], lambda _: torch.zeros(2, 2))
    assert list(tmp_path.iterdir()) == []
