import { describe, expect, it } from "vitest";
import { catalog } from "../model/test-support";
import type { NodeRecord } from "../model";
import { DEFAULT_WIDTH, TITLE_HEIGHT, bezierPoint, inputSlot, linkCurve, nodeLayout, outputSlot, socketAt } from "./geometry";

const sampler: NodeRecord = { id: "s", type: "sampling.ksampler", pos: [100, 50], collapsed: false, inputs: {} };

describe("node geometry", () => {
  it("puts sockets on the edges and widgets below them", () => {
    const layout = nodeLayout(catalog, sampler);
    expect(layout.rect[2]).toBe(DEFAULT_WIDTH);
    expect(inputSlot(layout, "model")?.at).toEqual([100, 50 + TITLE_HEIGHT + 10]);
    expect(outputSlot(layout, "latent")?.at).toEqual([100 + DEFAULT_WIDTH, 50 + TITLE_HEIGHT + 10]);
    const seed = layout.widgets.find((widget) => widget.input.name === "seed");
    expect(seed?.rect[1]).toBeGreaterThan(inputSlot(layout, "latent")?.at[1] ?? Infinity);
    expect(layout.rect[3]).toBeGreaterThan((seed?.rect[1] ?? 0) - 50);
  });

  it("caches by record and recomputes for a new record", () => {
    expect(nodeLayout(catalog, sampler)).toBe(nodeLayout(catalog, sampler));
    const moved = { ...sampler, pos: [0, 0] as const };
    expect(nodeLayout(catalog, moved).rect[0]).toBe(0);
  });

  it("collapses to the title bar with every socket on it", () => {
    const layout = nodeLayout(catalog, { ...sampler, collapsed: true });
    expect(layout.rect[3]).toBe(TITLE_HEIGHT);
    expect(layout.widgets).toEqual([]);
    expect(new Set(layout.inputs.map((slot) => slot.at[1]))).toEqual(new Set([50 + TITLE_HEIGHT / 2]));
  });

  it("finds the socket under the pointer within its radius", () => {
    const layout = nodeLayout(catalog, sampler);
    expect(socketAt(layout, [103, 50 + TITLE_HEIGHT + 12])?.slot.name).toBe("model");
    expect(socketAt(layout, [160, 50 + TITLE_HEIGHT + 12])).toBeUndefined();
  });

  it("draws links as symmetric curves whose middle is the midpoint", () => {
    expect(bezierPoint(linkCurve([0, 0], [300, 100]), 0.5)).toEqual([150, 50]);
  });
});
