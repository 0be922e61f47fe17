import { describe, expect, it } from "vitest";
import { catalog } from "../model/test-support";
import { formatSize, groupModels, loaderFor } from "./library-models";
import { groupNodes, packLabel } from "./library-nodes";
import { copyName, filterWorkflows } from "./library-workflows";

describe("models library", () => {
  it("finds the loader node and input for a folder", () => {
    expect(loaderFor(catalog, "checkpoints")).toEqual({ type: "loaders.checkpoint", input: "checkpoint" });
    expect(loaderFor(catalog, "loras")).toEqual({ type: "loaders.lora", input: "lora" });
    expect(loaderFor(catalog, "no-such-folder")).toBeUndefined();
  });

  it("groups files by folder, then by family, with readable sizes", () => {
    const groups = groupModels([
      { folder: "checkpoints", name: "b.safetensors", size: 2_000_000_000, family: "sdxl" },
      { folder: "checkpoints", name: "a.safetensors", size: 1, family: "sd15" },
      { folder: "checkpoints", name: "odd.safetensors", size: 1, family: null, family_unknown: "no rule" },
      { folder: "loras", name: "l.safetensors", size: 5_000_000, family: null },
    ]);
    expect([...groups.keys()]).toEqual(["checkpoints", "loras"]);
    expect([...(groups.get("checkpoints")?.keys() ?? [])]).toEqual(["SD 1.x", "SDXL", "unknown family"]);
    expect(groups.get("loras")?.get("")?.map((entry) => entry.name)).toEqual(["l.safetensors"]);
    expect([formatSize(2_000_000_000), formatSize(5_000_000), formatSize(2048), formatSize(7)]).toEqual(["1.86 GB", "4.8 MB", "2 KB", "7 B"]);
  });
});

describe("node library", () => {
  it("groups by category and by pack, sorted, built-in packs named plainly", () => {
    const byCategory = groupNodes(catalog.specs, "category");
    expect([...byCategory.keys()]).toEqual([...new Set(catalog.specs.map((spec) => spec.category))].sort((a, b) => a.localeCompare(b)));
    const byPack = groupNodes(catalog.specs, "pack", { "sampling.ksampler": "nodes/sampling.py" });
    expect(byPack.get("built-in: sampling")?.map((spec) => spec.id)).toEqual(["sampling.ksampler"]);
    expect(packLabel("my_pack/nodes.py")).toBe("my_pack/nodes.py");
    expect(packLabel(undefined)).toBe("subgraphs");
  });
});

describe("workflows library", () => {
  const list = [
    { name: "portrait v2", modified: "2026-01-02T00:00:00Z", size: 1 },
    { name: "Portrait", modified: "2026-01-03T00:00:00Z", size: 1 },
    { name: "landscape", modified: "2026-01-04T00:00:00Z", size: 1 },
  ];

  it("matches every word, ignoring case, newest first", () => {
    expect(filterWorkflows(list, "PORT").map((info) => info.name)).toEqual(["Portrait", "portrait v2"]);
    expect(filterWorkflows(list, "port v2").map((info) => info.name)).toEqual(["portrait v2"]);
    expect(filterWorkflows(list, "").map((info) => info.name)).toEqual(["landscape", "Portrait", "portrait v2"]);
  });

  it("names a duplicate after the original, counting past taken names", () => {
    expect(copyName("a", new Set(["a"]))).toBe("a copy");
    expect(copyName("a", new Set(["a", "a copy", "a copy 2"]))).toBe("a copy 3");
  });
});
