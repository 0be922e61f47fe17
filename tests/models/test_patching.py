from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
import torch

from latentloom.models.patching import PatchTargetError, applied


@dataclass(frozen=True)
class AddPatch:
    """Adds a fixed float32 tensor; records the weight it was asked about."""

    target: str
    amount: torch.Tensor

    def delta(self, weight: torch.Tensor) -> torch.Tensor:
        return self.amount


def tiny_module(dtype: torch.dtype = torch.float32) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)).to(
        dtype
    )


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in module.state_dict().items()}


def assert_bits_equal(module: torch.nn.Module, saved: dict[str, torch.Tensor]) -> None:
    for name, value in module.state_dict().items():
        assert torch.equal(value.view(torch.uint8), saved[name].view(torch.uint8)), name


def random_delta(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 0.1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_patch_is_added_in_float32_then_restored_bit_for_bit(dtype: torch.dtype) -> None:
    module = tiny_module(dtype)
    saved = snapshot(module)
    delta = random_delta((16, 8), seed=1)
    with applied(module, [AddPatch("0.weight", delta)]) as patched:
        assert patched is module
        expected = (saved["0.weight"].float() + delta).to(dtype)
        assert torch.equal(module[0].weight, expected)
        assert torch.equal(module[2].weight, saved["2.weight"])
    assert_bits_equal(module, saved)


def test_patches_on_one_target_sum() -> None:
    module = tiny_module()
    saved = snapshot(module)
    first, second = random_delta((4,), seed=1), random_delta((4,), seed=2)
    with applied(module, [AddPatch("2.bias", first), AddPatch("2.bias", second)]):
        assert torch.equal(module[2].bias, saved["2.bias"] + first + second)
    assert_bits_equal(module, saved)


def test_forward_matches_a_module_with_the_delta_baked_in() -> None:
    module, baked = tiny_module(), tiny_module()
    delta = random_delta((16, 8), seed=3)
    with torch.no_grad():
        baked[0].weight.add_(delta)
    inputs = torch.randn(2, 8)
    with applied(module, [AddPatch("0.weight", delta)]):
        assert torch.equal(module(inputs), baked(inputs))


def test_restores_when_the_block_raises() -> None:
    module = tiny_module()
    saved = snapshot(module)
    with (
        pytest.raises(RuntimeError, match="boom"),
        applied(module, [AddPatch("0.weight", random_delta((16, 8), seed=1))]),
    ):
        raise RuntimeError("boom")
    assert_bits_equal(module, saved)


def test_unknown_target_changes_nothing() -> None:
    module = tiny_module()
    saved = snapshot(module)
    patches = [AddPatch("0.weight", random_delta((16, 8), 1)), AddPatch("9.weight", torch.ones(1))]
    with pytest.raises(PatchTargetError) as caught, applied(module, patches):
        pytest.fail("the block must not run")
    assert str(caught.value) == "cannot patch '9.weight': the module has no parameter of that name"
    assert_bits_equal(module, saved)


def test_wrong_delta_shape_restores_earlier_targets() -> None:
    module = tiny_module()
    saved = snapshot(module)
    patches = [AddPatch("0.weight", random_delta((16, 8), 1)), AddPatch("2.weight", torch.ones(3))]
    with pytest.raises(PatchTargetError) as caught, applied(module, patches):
        pytest.fail("the block must not run")
    assert str(caught.value) == (
        "cannot patch '2.weight': delta has shape (3,), parameter has (4, 16)"
    )
    assert_bits_equal(module, saved)


def test_no_patches_leaves_the_module_alone() -> None:
    module = tiny_module()
    saved = snapshot(module)
    with applied(module, []):
        assert_bits_equal(module, saved)
    assert_bits_equal(module, saved)


def test_nesting_on_one_module_in_one_thread_unwinds_in_order() -> None:
    module = tiny_module()
    saved = snapshot(module)
    first, second = random_delta((4,), 1), random_delta((4,), 2)
    with applied(module, [AddPatch("2.bias", first)]):
        with applied(module, [AddPatch("2.bias", second)]):
            assert torch.equal(module[2].bias, saved["2.bias"] + first + second)
        assert torch.equal(module[2].bias, saved["2.bias"] + first)
    assert_bits_equal(module, saved)


def test_a_second_thread_waits_until_the_first_restores() -> None:
    module = tiny_module()
    saved = snapshot(module)
    inside = threading.Event()
    release = threading.Event()
    seen_by_second: list[torch.Tensor] = []

    def first_user() -> None:
        with applied(module, [AddPatch("2.bias", torch.ones(4))]):
            inside.set()
            release.wait(timeout=10)

    def second_user() -> None:
        with applied(module, [AddPatch("2.bias", torch.full((4,), 2.0))]):
            seen_by_second.append(module[2].bias.detach().clone())

    first = threading.Thread(target=first_user)
    first.start()
    assert inside.wait(timeout=10)
    second = threading.Thread(target=second_user)
    second.start()
    second.join(timeout=0.2)
    assert second.is_alive() and not seen_by_second  # blocked while the first holds the module
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)
    # The second user saw only its own patch on the original weights, never both.
    assert torch.equal(seen_by_second[0], saved["2.bias"] + 2.0)
    assert_bits_equal(module, saved)
