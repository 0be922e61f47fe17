import { describe, expect, it } from "vitest";
import type { InputSpec, NodeRecord } from "../model";
import { SEED_CONTROLS, clampNumber, nextSeed, seedControl, sliderValue, stepNumber, widgetKind, widgetZones } from "./widgets";

const int = (extra: Partial<InputSpec> = {}): InputSpec => ({ name: "steps", type: "INT", kind: "widget", required: true, ...extra });
const float = (extra: Partial<InputSpec> = {}): InputSpec => ({ name: "cfg", type: "FLOAT", kind: "widget", required: true, ...extra });

describe("widgets", () => {
  it("picks a control per input", () => {
    expect(widgetKind(int({ name: "seed" }))).toBe("seed");
    expect(widgetKind(int({ name: "noise_seed" }))).toBe("seed");
    expect(widgetKind(int())).toBe("number");
    expect(widgetKind(float({ min: 0, max: 1 }))).toBe("slider");
    expect(widgetKind(float({ min: 0, max: 30 }))).toBe("number");
    expect(widgetKind({ name: "t", type: "STRING", kind: "widget", required: false, multiline: true })).toBe("multiline");
    expect(widgetKind({ name: "b", type: "BOOLEAN", kind: "widget", required: false })).toBe("toggle");
    expect(widgetKind({ name: "e", type: "ENUM", kind: "widget", required: false })).toBe("combo");
  });

  it("keeps numbers in bounds and on their step", () => {
    const steps = int({ min: 1, max: 100 });
    expect(stepNumber(steps, 100, 1)).toBe(100);
    expect(stepNumber(steps, 1, -3)).toBe(1);
    expect(clampNumber(steps, 4.6)).toBe(5);
    const cfg = float({ min: 0, max: 30, step: 0.5 });
    expect(stepNumber(cfg, 7, 1)).toBe(7.5);
    expect(clampNumber(cfg, 0.1 + 0.2)).toBe(0.3);
    expect(sliderValue(float({ min: 0, max: 1, step: 0.01 }), 0.333)).toBe(0.33);
    expect(sliderValue(float({ min: 0, max: 1 }), 7)).toBe(1);
  });

  it("moves seeds after a run by their control mode", () => {
    const seed = int({ name: "seed", min: 0, max: 10 });
    expect(nextSeed("fixed", 4, seed)).toBe(4);
    expect(nextSeed("increment", 4, seed)).toBe(5);
    expect(nextSeed("increment", 10, seed)).toBe(0);
    expect(nextSeed("randomize", 4, seed, () => 0.999)).toBe(10);
    expect(nextSeed("decrement", 4, seed)).toBe(3);
    // Wraps at the bottom as increment wraps at the top.
    expect(nextSeed("decrement", 0, seed)).toBe(10);
    expect(seedControl({ id: "d", type: "x", pos: [0, 0], collapsed: false, inputs: {}, extraUi: { seed_control: { seed: "decrement" } } }, "seed")).toBe("decrement");
    // Clicking the mode cycles through all four, decrement after increment as ComfyUI lists them.
    expect(SEED_CONTROLS).toEqual(["fixed", "increment", "decrement", "randomize"]);
    const node: NodeRecord = { id: "s", type: "x", pos: [0, 0], collapsed: false, inputs: {}, extraUi: { seed_control: { seed: "increment" } } };
    expect(seedControl(node, "seed")).toBe("increment");
    expect(seedControl(node, "other")).toBe("fixed");
  });

  it("keeps 64-bit seeds exact when stepping, clamping and moving them after a run", () => {
    const seed = int({ name: "seed", min: 0, max: 18446744073709551615n });
    const top = 18446744073709551615n;
    expect(nextSeed("increment", 9007199254740992, seed)).toBe(9007199254740993n);
    expect(nextSeed("increment", top, seed)).toBe(0);
    expect(nextSeed("decrement", 0, seed)).toBe(top);
    expect(nextSeed("decrement", 9007199254740992n, seed)).toBe(Number.MAX_SAFE_INTEGER);
    expect(stepNumber(seed, top - 1n, 1)).toBe(top);
    expect(stepNumber(seed, top, 5)).toBe(top);
    expect(clampNumber(seed, top + 10n)).toBe(top);
    expect(clampNumber(seed, 12345678901234567890n)).toBe(12345678901234567890n);
    expect(clampNumber(int({ min: 1, max: 1000 }), 7.6)).toBe(8);
  });

  it("splits a seed row into arrows, value and mode", () => {
    const zones = widgetZones("seed", [0, 0, 200, 18]);
    expect(zones.mode).toEqual([150, 0, 50, 18]);
    expect(zones.increment).toEqual([134, 0, 14, 18]);
  });
});
