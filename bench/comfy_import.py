"""ComfyUI import: a generated 500-node editor workflow, against loading our own document.

The workflow is 50 copies of a txt2img chain (checkpoint, reroute, two prompts, primitive
seed, empty latent, KSampler, VAE decode, save, note): every import path but subgraphs.
The baseline is what opening the same graph costs when it is already ours: `json.loads` of
our document plus `parse_workflow`. Both are medians of several runs in this process.

.venv/bin/python -m bench.comfy_import
"""

from __future__ import annotations

import json
from typing import Any

from bench.common import median_seconds
from latentloom.graph.workflow import parse_workflow
from latentloom.interop.comfy.convert import default_registry
from latentloom.interop.comfy.importer import import_file_bytes

CHAINS = 50
REPEATS = 15


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.links: list[list[Any]] = []

    def node(self, kind: str, pos: list[float], widgets: list[Any], outputs: list[str]) -> int:
        node_id = len(self.nodes) + 1
        self.nodes.append(
            {
                "id": node_id, "type": kind, "pos": pos, "size": [300, 120], "flags": {},
                "order": node_id, "mode": 0, "inputs": [],
                "outputs": [{"name": o, "type": o, "links": []} for o in outputs],
                "properties": {"Node name for S&R": kind}, "widgets_values": widgets,
            }
        )  # fmt: skip
        return node_id

    def link(self, source: int, slot: int, target: int, name: str, kind: str) -> None:
        link_id = len(self.links) + 1
        inputs = self.nodes[target - 1]["inputs"]
        entry = {"name": name, "type": kind, "link": link_id}
        if kind in ("INT", "FLOAT", "STRING", "COMBO"):
            entry["widget"] = {"name": name}
        inputs.append(entry)
        self.nodes[source - 1]["outputs"][slot]["links"].append(link_id)
        self.links.append([link_id, source, slot, target, len(inputs) - 1, kind])


def editor_workflow(chains: int = CHAINS) -> dict[str, Any]:
    graph = _Graph()
    for chain in range(chains):
        y = chain * 800.0
        checkpoint = graph.node(
            "CheckpointLoaderSimple", [0, y], ["tiny-sd15.safetensors"], ["MODEL", "CLIP", "VAE"]
        )
        reroute = graph.node("Reroute", [330, y], [], ["CLIP"])
        positive = graph.node(
            "CLIPTextEncode", [400, y], [f"a photo of a cat, chain {chain}"], ["CONDITIONING"]
        )
        negative = graph.node("CLIPTextEncode", [400, y + 200], ["blurry"], ["CONDITIONING"])
        seed = graph.node("PrimitiveNode", [800, y - 100], [chain, "increment"], ["INT"])
        latent = graph.node("EmptyLatentImage", [400, y + 400], [64, 64, 1], ["LATENT"])
        sampler = graph.node(
            "KSampler", [800, y], [0, "randomize", 2, 7.0, "euler", "normal", 1.0], ["LATENT"]
        )
        decode = graph.node("VAEDecode", [1150, y], [], ["IMAGE"])
        save = graph.node("SaveImage", [1400, y], [f"chain{chain}"], [])
        graph.node("Note", [0, y + 200], [f"chain {chain}"], [])
        graph.link(checkpoint, 1, reroute, "", "*")
        graph.link(reroute, 0, positive, "clip", "CLIP")
        graph.link(reroute, 0, negative, "clip", "CLIP")
        for source, slot, name, kind in [
            (checkpoint, 0, "model", "MODEL"), (positive, 0, "positive", "CONDITIONING"),
            (negative, 0, "negative", "CONDITIONING"), (latent, 0, "latent_image", "LATENT"),
            (seed, 0, "seed", "INT"),
        ]:  # fmt: skip
            graph.link(source, slot, sampler, name, kind)
        graph.link(sampler, 0, decode, "samples", "LATENT")
        graph.link(checkpoint, 2, decode, "vae", "VAE")
        graph.link(decode, 0, save, "images", "IMAGE")
    return {
        "last_node_id": len(graph.nodes), "last_link_id": len(graph.links),
        "nodes": graph.nodes, "links": graph.links, "groups": [], "config": {},
        "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}}, "version": 0.4,
    }  # fmt: skip


def main() -> None:
    default_registry()  # built once per process, like the server does at start-up
    comfy_bytes = json.dumps(editor_workflow()).encode()
    result = import_file_bytes(comfy_bytes)
    assert result.report.complete, result.report.unsupported
    ours_text = json.dumps(result.workflow)
    imported = median_seconds(lambda: import_file_bytes(comfy_bytes), REPEATS)
    baseline = median_seconds(lambda: parse_workflow(json.loads(ours_text)), REPEATS)
    print(
        f"ComfyUI import, editor format 0.4, {CHAINS * 10} ComfyUI nodes "
        f"({len(result.workflow['nodes'])} of ours, {len(comfy_bytes) / 1024:.0f} KiB), "
        f"median of {REPEATS}"
    )
    print(f"  import_file_bytes (JSON bytes -> our document)   {imported * 1000:8.2f} ms")
    print(f"  baseline: json.loads + parse_workflow of ours    {baseline * 1000:8.2f} ms")
    print(f"  ratio import / baseline                          {imported / baseline:8.2f}x")


if __name__ == "__main__":
    main()
