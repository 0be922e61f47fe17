import { describe, expect, it } from "vitest";
import { alignedPositions, distributedPositions } from "./align";
import type { Rect } from "./records";

const rects = new Map<string, Rect>([
  ["a", [0, 0, 100, 50]],
  ["b", [300, 40, 200, 80]],
  ["c", [120, 200, 60, 20]],
]);

describe("align and distribute", () => {
  it("lines up each edge and centre with the extreme one", () => {
    expect(Object.fromEntries(alignedPositions(rects, "left"))).toEqual({ a: [0, 0], b: [0, 40], c: [0, 200] });
    expect(Object.fromEntries(alignedPositions(rects, "right"))).toEqual({ a: [400, 0], b: [300, 40], c: [440, 200] });
    expect(Object.fromEntries(alignedPositions(rects, "top"))).toEqual({ a: [0, 0], b: [300, 0], c: [120, 0] });
    expect(Object.fromEntries(alignedPositions(rects, "bottom"))).toEqual({ a: [0, 170], b: [300, 140], c: [120, 200] });
    expect(Object.fromEntries(alignedPositions(rects, "centre-x"))).toEqual({ a: [200, 0], b: [150, 40], c: [220, 200] });
  });

  it("spaces nodes with equal gaps, keeping the outermost where they are", () => {
    // Horizontal: a spans 0..100, c 120..180, b 300..500; 500 - 360 of widths = 140, 70 per gap.
    expect(Object.fromEntries(distributedPositions(rects, "horizontal"))).toEqual({ a: [0, 0], c: [170, 200], b: [300, 40] });
    // Vertical: a 0..50, b 40..120, c 200..220; 220 - 150 of heights = 70, 35 per gap.
    expect(Object.fromEntries(distributedPositions(rects, "vertical"))).toEqual({ a: [0, 0], b: [300, 85], c: [120, 200] });
    const two = new Map([...rects].slice(0, 2));
    expect(Object.fromEntries(distributedPositions(two, "horizontal"))).toEqual({ a: [0, 0], b: [300, 40] });
  });
});
