"""Load ControlNet Model and Apply ControlNet, on the tiny files the session's models_dir holds.

Node results are checked directly (which sources are attached where) and through the engine:
the canny example with the ControlNet differs from the same graph at strength 0, which equals
the graph without the Apply node bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from latentloom.engine.context import CancelToken, NodeContext, RunSettings
from latentloom.engine.executor import Engine
from latentloom.engine.folders import Folders
from latentloom.graph.workflow import Link
from latentloom.models.folders import ModelFolders
from latentloom.models.handles import Conditioning
from tests.node_calls import builtin_registry
from tests.support import load_example


@pytest.fixture
def call(models_dir: Path, tmp_path: Path) -> Any:
    """`call(node_type, **inputs)` on the CPU, with the session's model folder."""
    folders = Folders(ModelFolders.of([models_dir]), tmp_path)
    settings = RunSettings(torch.device("cpu"), torch.float32, folders, tmp_path)

    def direct(node_type: str, **inputs: Any) -> dict[str, Any]:
        spec = builtin_registry().specs[node_type]
        context = NodeContext(node_id="n", settings=settings, cancel=CancelToken())
        return dict(spec.function(context, **inputs))

    return direct


@pytest.mark.parametrize(
    ("name", "kind", "family"),
    [
        ("tiny-controlnet-sd15.safetensors", "ControlNet", "SD 1.x"),
        ("tiny-controlnet-sdxl.safetensors", "ControlNet", "SDXL"),
        ("tiny-t2i-adapter-sdxl.safetensors", "T2I-Adapter", "SDXL"),
    ],
)
def test_loader_reports_kind_family_and_layout(
    call: Any, name: str, kind: str, family: str
) -> None:
    out = call("loaders.controlnet", control_net_name=name)
    detection = out["report"]["detection"][0]
    assert (detection["kind"], detection["family"]) == (kind, family)
    assert detection["layout"].endswith("original layout") or "cldm" in detection["layout"]


def _prompt(seed: int) -> Conditioning:
    generator = torch.Generator().manual_seed(seed)
    return Conditioning.of(torch.randn(1, 77, 32, generator=generator))


def test_apply_attaches_one_source_to_both_sides_and_stacks(call: Any) -> None:
    net = call("loaders.controlnet", control_net_name="tiny-controlnet-sd15.safetensors")
    image = torch.rand(1, 64, 64, 3)
    args = {"control_net": net["control_net"], "image": image, "strength": 0.5}
    first = call(
        "conditioning.controlnet_apply_advanced",
        positive=_prompt(1),
        negative=_prompt(2),
        start_percent=0.1,
        end_percent=0.9,
        **args,
    )
    (source,) = first["positive"].first.control
    assert first["negative"].first.control == (source,)
    assert (source.strength, source.start_percent, source.end_percent) == (0.5, 0.1, 0.9)
    second = call(
        "conditioning.controlnet_apply_advanced",
        positive=first["positive"],
        negative=first["negative"],
        start_percent=0.0,
        end_percent=1.0,
        **args,
    )
    assert second["positive"].first.control[0] is source
    assert len(second["positive"].first.control) == 2
    assert second["negative"].first.control == second["positive"].first.control


def test_strength_zero_returns_the_conditioning_unchanged(call: Any) -> None:
    net = call("loaders.controlnet", control_net_name="tiny-controlnet-sd15.safetensors")
    positive, negative = _prompt(1), _prompt(2)
    out = call(
        "conditioning.controlnet_apply_advanced",
        positive=positive,
        negative=negative,
        control_net=net["control_net"],
        image=torch.rand(1, 64, 64, 3),
        strength=0.0,
        start_percent=0.0,
        end_percent=1.0,
    )
    assert out["positive"] is positive and out["negative"] is negative


def test_old_apply_and_bad_inputs(call: Any) -> None:
    net = call("loaders.controlnet", control_net_name="tiny-t2i-adapter-sdxl.safetensors")
    out = call(
        "conditioning.controlnet_apply",
        conditioning=_prompt(1),
        control_net=net["control_net"],
        image=torch.rand(1, 64, 64, 3),
        strength=1.0,
    )
    assert type(out["conditioning"].first.control[0]).__name__ == "AdapterSource"
    with pytest.raises(ValueError) as caught:
        call(
            "conditioning.controlnet_apply_advanced",
            positive=_prompt(1),
            negative=_prompt(2),
            control_net=net["control_net"],
            image=torch.rand(1, 64, 64, 3),
            strength=1.0,
            start_percent=0.7,
            end_percent=0.2,
        )
    assert str(caught.value) == (
        "Apply ControlNet: start_percent 0.7 is after end_percent 0.2; the ControlNet would "
        "never apply"
    )


def test_canny_example_is_steered_and_strength_zero_is_no_controlnet(engine: Engine) -> None:
    workflow = load_example("controlnet_canny.json")
    steered = engine.run(workflow, targets=["sampler"]).outputs["sampler"]["latent"].samples
    off = workflow.with_input("apply", "strength", 0.0)
    unsteered = engine.run(off, targets=["sampler"]).outputs["sampler"]["latent"].samples
    plain = workflow.model_copy(deep=True)
    for side in ("positive", "negative"):
        plain.nodes["sampler"].inputs[side] = Link(node=side, output="conditioning")
    without = engine.run(plain, targets=["sampler"]).outputs["sampler"]["latent"].samples
    assert torch.equal(unsteered, without)
    assert (steered - without).abs().max().item() > 0.1


def test_set_union_type_numbers_types_as_comfyui_and_refuses_plain_controlnets(
    call: Any, tmp_path: Path
) -> None:
    from latentloom.models.controlnet import load_control_model
    from latentloom.models.controlnet_union_tiny import make_tiny_union_controlnet

    union = load_control_model(make_tiny_union_controlnet(tmp_path / "u.safetensors"))
    set_type = "conditioning.controlnet_union_type"
    typed = call(set_type, control_net=union, type="canny/lineart/anime_lineart/mlsd")
    assert typed["control_net"].union_type == 3 and union.union_type is None  # a copy
    assert (
        call(set_type, control_net=typed["control_net"], type="auto")["control_net"].union_type
        is None
    )
    assert call(set_type, control_net=union, type="repaint")["control_net"].union_type == 7
    plain = call("loaders.controlnet", control_net_name="tiny-controlnet-sdxl.safetensors")
    with pytest.raises(ValueError, match=r"is a ControlNet, not a union ControlNet; load a union"):
        call(set_type, control_net=plain["control_net"], type="depth")
