import { describe, expect, it } from "vitest";
import { catalog } from "../model/test-support";
import { parseCatalog, type NodeRecord, type NodeSpec } from "../model";
import { ACTION_ROW, DEFAULT_WIDTH, PLOT_HEIGHT, SOCKET_ROW, TITLE_HEIGHT, WIDGET_ROW, bezierPoint, imageInputOf, inputSlot, linkCurve, nodeLayout, outputSlot, socketAt } from "./geometry";

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

const SPLIT_SIGMAS: NodeSpec = {
  id: "sampling.split_sigmas",
  display_name: "Split Sigmas",
  category: "sampling/custom_sampling/sigmas",
  description: "",
  version: 1,
  inputs: [
    { name: "sigmas", type: "SIGMAS", kind: "socket", required: true },
    { name: "step", type: "INT", kind: "widget", required: true, default: 0 },
  ],
  outputs: [
    { name: "high_sigmas", type: "SIGMAS" },
    { name: "low_sigmas", type: "SIGMAS" },
  ],
  output_node: false,
  nondeterministic: false,
};

describe("rows below the widgets", () => {
  it("gives Load Image an Upload and an Edit mask button on the image widget, side by side", () => {
    const load = catalog.get("image.load");
    expect(load === undefined ? undefined : imageInputOf(load)).toBe("image");
    const layout = nodeLayout(catalog, { id: "l", type: "image.load", pos: [0, 0], collapsed: false, inputs: {} });
    const top = TITLE_HEIGHT + SOCKET_ROW + 4 + WIDGET_ROW; // one output row, then the image widget
    expect(layout.actions?.map((action) => [action.id, action.input, action.rect])).toEqual([
      ["upload", "image", [8, top + 3, 109, ACTION_ROW - 6]],
      ["edit-mask", "image", [123, top + 3, 109, ACTION_ROW - 6]],
    ]);
    expect(layout.rect[3]).toBe(top + ACTION_ROW + 6);
    expect(nodeLayout(catalog, sampler).actions).toBeUndefined();
  });

  it("reserves one plot per SIGMAS output, whether or not the node has run", () => {
    const withSplit = parseCatalog([...catalog.specs, SPLIT_SIGMAS]);
    const layout = nodeLayout(withSplit, { id: "s", type: "sampling.split_sigmas", pos: [10, 20], collapsed: false, inputs: {} });
    const top = 20 + TITLE_HEIGHT + 2 * SOCKET_ROW + 4 + WIDGET_ROW;
    expect(layout.plots).toEqual([
      { output: "high_sigmas", rect: [18, top + 4, DEFAULT_WIDTH - 16, PLOT_HEIGHT - 8] },
      { output: "low_sigmas", rect: [18, top + PLOT_HEIGHT + 4, DEFAULT_WIDTH - 16, PLOT_HEIGHT - 8] },
    ]);
    expect(layout.rect[3]).toBe(top + 2 * PLOT_HEIGHT + 6 - 20);
    expect(nodeLayout(withSplit, { id: "s", type: "sampling.split_sigmas", pos: [10, 20], collapsed: true, inputs: {} }).plots).toBeUndefined();
  });
});
