from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import DDPMScheduler
from safetensors.torch import load_file

from latentloom.models.build import Modules
from latentloom.models.errors import CheckpointError, PickleCheckpointError, WeightMismatchError
from latentloom.models.family import FamilyName
from latentloom.models.handles import Checkpoint
from latentloom.models.load import load_checkpoint
from latentloom.models.safetensors_file import SafetensorsFile
from latentloom.models.safetensors_write import save_tensors
from latentloom.text.tokenizer import clip_tokenizer
from tests.models.conftest import TinyFile, TinyReference


def loaded_modules(checkpoint: Checkpoint) -> dict[str, torch.nn.Module]:
    names = ("text_encoder", "text_encoder_2")
    return {
        "unet": checkpoint.model.unet,
        "vae": checkpoint.vae.module,
        **{
            name: encoder.model
            for name, encoder in zip(names, checkpoint.clip.encoders, strict=False)
        },
    }


def assert_matches_reference(
    checkpoint: Checkpoint, reference: Modules, dtype: torch.dtype = torch.float32
) -> None:
    got = loaded_modules(checkpoint)
    for component, module in reference.components().items():
        want_state, got_state = module.state_dict(), got[component].state_dict()
        assert sorted(got_state) == sorted(want_state), component
        wanted = torch.float32 if component == "vae" else dtype
        for key, value in want_state.items():
            assert got_state[key].dtype == wanted, key
            assert torch.equal(got_state[key], value.to(wanted)), f"{component} {key}"
    assert public(checkpoint.model.unet.config) == public(reference.config_of("unet"))
    assert public(checkpoint.vae.module.config) == public(reference.config_of("vae"))


def public(config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers config without its bookkeeping entries (`_class_name`, ...)."""
    return {key: value for key, value in config.items() if not key.startswith("_")}


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_tiny_checkpoint_loads_exactly_the_modules_it_was_written_from(
    tiny_file: TinyFile, tiny_reference: TinyReference, family: FamilyName
) -> None:
    checkpoint = load_checkpoint(tiny_file(family), device="cpu", dtype=torch.float32)
    assert_matches_reference(checkpoint, tiny_reference(family))
    for module in loaded_modules(checkpoint).values():
        assert not module.training
        assert not any(parameter.requires_grad for parameter in module.parameters())
        assert not any(buffer.is_meta for buffer in module.buffers())
    assert checkpoint.model.family.name == family
    assert checkpoint.model.prediction_type == "epsilon"
    assert checkpoint.model.source == str(tiny_file(family))
    assert checkpoint.clip.family is checkpoint.vae.family is checkpoint.model.family


def test_text_encoders_are_read_the_way_each_family_was_trained(tiny_file: TinyFile) -> None:
    def usage(family: FamilyName) -> list[tuple[str, str, bool, int]]:
        checkpoint = load_checkpoint(tiny_file(family), device="cpu", dtype=torch.float32)
        return [
            (type(e.model).__name__, e.layer, e.final_norm_on_penultimate, e.pad_token_id)
            for e in checkpoint.clip.encoders
        ]

    assert usage("sd15") == [("CLIPTextModel", "last", False, 49407)]
    assert usage("sd2") == [("CLIPTextModel", "penultimate", True, 0)]
    assert usage("sdxl") == [
        ("CLIPTextModel", "penultimate", False, 49407),
        ("CLIPTextModelWithProjection", "penultimate", False, 0),
    ]
    checkpoint = load_checkpoint(tiny_file("sdxl"), device="cpu", dtype=torch.float32)
    for encoder in checkpoint.clip.encoders:
        assert encoder.tokenizer.pad_token_id == encoder.pad_token_id


def test_alphas_cumprod_is_sd_scaled_linear_in_float64(tiny_file: TinyFile) -> None:
    checkpoint = load_checkpoint(tiny_file("sd15"), device="cpu", dtype=torch.float32)
    alphas = checkpoint.model.alphas_cumprod
    assert alphas.dtype == torch.float64 and alphas.shape == (1000,)
    assert alphas[0].item() == pytest.approx(1 - 0.00085, abs=1e-15)
    reference = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    torch.testing.assert_close(alphas.float(), reference.alphas_cumprod, rtol=1e-6, atol=1e-7)


def test_half_precision_load_keeps_the_vae_in_float32(
    tiny_file: TinyFile, tiny_reference: TinyReference
) -> None:
    checkpoint = load_checkpoint(tiny_file("sdxl"), device="cpu", dtype=torch.float16)
    assert_matches_reference(checkpoint, tiny_reference("sdxl"), dtype=torch.float16)


def test_v_prediction_marker_and_caller_override(tiny_file: TinyFile) -> None:
    v_file = tiny_file("sd2", v_prediction=True)
    checkpoint = load_checkpoint(v_file, device="cpu", dtype=torch.float32)
    assert checkpoint.model.prediction_type == "v_prediction"
    assert checkpoint.model.unet.config["upcast_attention"] is True
    # An unmarked SD 2.x file can only be told v-prediction by its user.
    forced = load_checkpoint(
        tiny_file("sd2"), device="cpu", dtype=torch.float32, prediction_type="v_prediction"
    )
    assert forced.model.prediction_type == "v_prediction"


def rewrite(
    source: Path,
    target: Path,
    edit: Callable[[dict[str, torch.Tensor]], None] = lambda _: None,
    metadata: dict[str, str] | None = None,
) -> Path:
    tensors = load_file(source)
    edit(tensors)
    save_tensors(target, tensors, metadata=metadata)
    return target


def test_modelspec_metadata_marks_v_prediction(tiny_file: TinyFile, tmp_path: Path) -> None:
    path = rewrite(
        tiny_file("sd2"),
        tmp_path / "v.safetensors",
        metadata={"modelspec.prediction_type": "v"},
    )
    checkpoint = load_checkpoint(path, device="cpu", dtype=torch.float32)
    assert checkpoint.model.prediction_type == "v_prediction"


def test_extra_tensors_found_in_real_files_are_skipped(
    tiny_file: TinyFile, tiny_reference: TinyReference, tmp_path: Path
) -> None:
    def add_extras(tensors: dict[str, torch.Tensor]) -> None:
        tensors["model_ema.decay"] = torch.tensor(0.9999)
        tensors["model_ema.diffusion_modelout2weight"] = torch.zeros(4, 32, 3, 3)
        tensors["alphas_cumprod"] = torch.ones(1000)
        tensors["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(
            77
        )[None]

    path = rewrite(tiny_file("sd15"), tmp_path / "extras.safetensors", add_extras)
    checkpoint = load_checkpoint(path, device="cpu", dtype=torch.float32)
    assert_matches_reference(checkpoint, tiny_reference("sd15"))


def test_mismatched_tensors_are_all_reported_before_anything_is_read(
    tiny_file: TinyFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def damage(tensors: dict[str, torch.Tensor]) -> None:
        tensors["model.diffusion_model.out.2.bias"] = torch.zeros(5)
        tensors["model.diffusion_model.input_blocks.1.0.extra.weight"] = torch.zeros(1)
        del tensors["first_stage_model.decoder.norm_out.bias"]

    path = rewrite(tiny_file("sd15"), tmp_path / "damaged.safetensors", damage)

    def no_reading(*args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("a tensor was read before the checks passed")

    monkeypatch.setattr(SafetensorsFile, "read", no_reading)
    with pytest.raises(WeightMismatchError) as caught:
        load_checkpoint(path, device="cpu", dtype=torch.float32)
    assert str(caught.value) == (
        f"{path}: 'model.diffusion_model.input_blocks.1.0.extra.weight' has no unet "
        "counterpart; 'model.diffusion_model.out.2.bias' has shape [5] but the unet built "
        "from the detected config expects [4] for 'conv_out.bias'; missing from the file: "
        "vae 'decoder.conv_norm_out.bias'"
    )


def test_pickle_and_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(PickleCheckpointError, match=r"'\.ckpt' files are pickle checkpoints"):
        load_checkpoint(tmp_path / "model.ckpt", device="cpu", dtype=torch.float32)
    missing = tmp_path / "nothing.safetensors"
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(missing, device="cpu", dtype=torch.float32)
    assert str(caught.value) == f"{missing}: no such file or folder"


def test_automatic_device_and_dtype_on_a_cpu_machine(tiny_file: TinyFile) -> None:
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("an accelerator is present; the automatic choice is not the CPU")
    checkpoint = load_checkpoint(tiny_file("sd15"), device=None, dtype=None)
    parameter = next(checkpoint.model.unet.parameters())
    assert (parameter.device.type, parameter.dtype) == ("cpu", torch.float32)


def test_tokenizer_pad_ids_match_the_layout_constants() -> None:
    assert clip_tokenizer("<|endoftext|>").pad_token_id == 49407
    assert clip_tokenizer("!").pad_token_id == 0
