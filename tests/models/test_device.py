from __future__ import annotations

import pytest
import torch

from latentloom.models.device import VAE_DTYPE, DeviceError, choose_device, choose_dtype

no_accelerator = pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(),
    reason="this machine has an accelerator",
)


@no_accelerator
def test_automatic_choice_falls_back_to_the_cpu() -> None:
    assert choose_device(None) == torch.device("cpu")


def test_cpu_can_always_be_forced() -> None:
    assert choose_device("cpu") == torch.device("cpu")


@no_accelerator
def test_forcing_a_missing_cuda_device_says_what_exists() -> None:
    with pytest.raises(DeviceError) as caught:
        choose_device("cuda:1")
    assert str(caught.value) == (
        f"device 'cuda:1' was asked for but this machine has 0 CUDA device(s) "
        f"(torch {torch.__version__}); use 'cpu' or leave the device unset"
    )


def test_device_names_are_checked() -> None:
    with pytest.raises(DeviceError, match=r"^'banana' is not a device name"):
        choose_device("banana")


def test_default_dtypes_per_device() -> None:
    assert choose_dtype(torch.device("cpu")) == torch.float32
    assert choose_dtype(torch.device("cuda")) == torch.float16
    assert choose_dtype(torch.device("mps")) == torch.float16
    assert torch.float32 == VAE_DTYPE


def test_forced_dtypes() -> None:
    assert choose_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    assert choose_dtype(torch.device("cuda"), torch.float32) == torch.float32
    with pytest.raises(DeviceError) as caught:
        choose_dtype(torch.device("cpu"), "fp8")
    assert str(caught.value) == "dtype 'fp8' is not known; use one of fp16, bf16, fp32"
    with pytest.raises(DeviceError, match=r"dtype torch\.float64 is not supported"):
        choose_dtype(torch.device("cpu"), torch.float64)
