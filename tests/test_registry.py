"""The registry: packs from folders and entry points, and load-time checks that name the node."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from latentloom.node import NodeSpec, Output, WidgetType, enum_input, int_input
from latentloom.registry import (
    Registry,
    RegistryError,
    build_registry,
    load_entry_points,
    load_pack_folder,
)
from tests.support import ARITH_PACK

VALUE = int_input("value", 0, min=0, max=9)


def _spec(node_id: str, function, inputs=(VALUE,)) -> NodeSpec:
    return NodeSpec(
        node_id, "Thing", "test", tuple(inputs), (Output("value", WidgetType.INT),), function
    )


def test_folder_pack_registers_every_node() -> None:
    registry = Registry()
    load_pack_folder(registry, ARITH_PACK)
    assert {"arith.number", "arith.add", "arith.sink"} <= set(registry.specs)
    assert registry.pack_of["arith.add"] == "arith/arith.py"


def test_duplicate_id_names_both_packs() -> None:
    registry = Registry()
    load_pack_folder(registry, ARITH_PACK)
    with pytest.raises(RegistryError) as error:
        registry.register_pack("other", [_spec("arith.add", lambda ctx, value: {})])
    assert "node id 'arith.add' is already registered by pack 'arith/arith.py'" in str(error.value)
    assert "pack 'other' cannot be loaded" in str(error.value)


def test_signature_disagreeing_with_spec_names_the_node_and_the_parameters() -> None:
    with pytest.raises(RegistryError) as error:
        Registry().register_pack("bad", [_spec("test.thing", lambda ctx, valeu: {})])
    message = str(error.value)
    assert "node 'test.thing': its function has no parameter for inputs ['value']" in message
    assert (
        "node 'test.thing': its function takes ['valeu'], which the spec does not declare"
        in message
    )


def test_every_problem_of_a_pack_is_reported_together() -> None:
    specs = [
        _spec("Bad Id", lambda ctx, value: {}),
        _spec("test.kwargs", lambda ctx, **inputs: {}),
        _spec("test.choice", lambda ctx, mode: {}, [enum_input("mode", ("a", "b"), "c")]),
    ]
    with pytest.raises(RegistryError) as error:
        Registry().register_pack("bad", specs)
    message = str(error.value)
    assert "node 'Bad Id': id must look like 'family.name'" in message
    assert "node 'test.kwargs': its function must not take *args or **kwargs" in message
    assert (
        "node 'test.choice': input 'mode': default 'c' is not among the choices ['a', 'b']"
        in message
    )


def test_entry_point_pack_loads_through_the_same_mechanism(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "third_party_pack.py").write_text(
        textwrap.dedent("""
        from latentloom.node import NodeSpec, Output, WidgetType, int_input
        def double(ctx, value):
            return {"value": value * 2}
        NODES = [NodeSpec("thirdparty.double", "Double", "math", (int_input("value", 1, min=0, max=9),),
                          (Output("value", WidgetType.INT),), double)]
    """)
    )
    dist_info = tmp_path / "third_party_pack-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: third-party-pack\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[latentloom.nodes]\ndouble = third_party_pack:NODES\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    load_entry_points(registry)
    assert registry.pack_of["thirdparty.double"] == "third-party-pack:double"
    sys.modules.pop("third_party_pack", None)


def test_builtin_pack_has_the_core_nodes_with_display_names() -> None:
    registry = build_registry(entry_point_packs=False)
    names = {spec.id: spec.display_name for spec in registry}
    assert names["loaders.checkpoint"] == "Load Checkpoint"
    assert names["conditioning.encode_prompt"] == "Encode Prompt"
    assert names["sampling.ksampler"] == "KSampler"
    assert names["image.vae_decode"] == "VAE Decode"
    assert {
        "latent.empty",
        "latent.interpolate",
        "latent.add_noise",
        "latent.upscale",
        "image.vae_encode",
        "image.load",
        "image.save",
        "image.preview",
        "image.save_animation",
        "loaders.lora",
    } <= set(names)
