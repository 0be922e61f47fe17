import { describe, expect, it } from "vitest";
import {
  createMask,
  invertMask,
  maskFromRgba,
  overlayPixels,
  paintSegment,
  paintStamp,
  rgbaWithMask,
  stampAlpha,
  type Brush,
} from "./mask-stroke";

const at = (mask: { width: number; data: Uint8ClampedArray }, x: number, y: number): number => mask.data[y * mask.width + x] ?? -1;

describe("stampAlpha", () => {
  it("is opaque at the centre and zero at and beyond the edge, for any hardness", () => {
    for (const hardness of [0, 0.3, 1]) {
      expect(stampAlpha(0, 20, hardness)).toBe(1);
      expect(stampAlpha(10, 20, hardness)).toBe(0);
      expect(stampAlpha(12, 20, hardness)).toBe(0);
    }
  });

  it("holds full opacity out to hardness × radius, then falls along a smoothstep", () => {
    // size 20 → radius 10; hardness 0.5 → solid to 5, falling from 5 to 10
    expect(stampAlpha(5, 20, 0.5)).toBe(1);
    expect(stampAlpha(7.5, 20, 0.5)).toBeCloseTo(0.5, 12); // halfway: smoothstep(0.5) = 0.5
    expect(stampAlpha(9, 20, 0.5)).toBeCloseTo(0.104, 12); // t = 0.2: 0.04·2.6
    // hardness 0: the falloff starts at the centre
    expect(stampAlpha(5, 20, 0)).toBeCloseTo(0.5, 12);
    // hardness 1: a hard disc
    expect(stampAlpha(9.99, 20, 1)).toBe(1);
  });
});

describe("paintStamp", () => {
  const hard: Brush = { size: 4, hardness: 1, mode: "paint" };

  it("fills a hard disc of the brush's diameter around pixel centres and reports the box", () => {
    const mask = createMask(8, 8);
    const touched = paintStamp(mask, 4, 4, hard);
    expect(touched).toEqual([2, 2, 4, 4]);
    // pixel (3,3) has its centre at 3.5: 0.71 from (4,4) → inside; (2,2) at 2.12 → outside radius 2
    expect(at(mask, 3, 3)).toBe(255);
    expect(at(mask, 4, 4)).toBe(255);
    expect(at(mask, 2, 2)).toBe(0);
    expect(at(mask, 2, 3)).toBe(255); // centre (2.5, 3.5): 1.58 away
    expect(at(mask, 1, 4)).toBe(0);
    expect([...mask.data].filter((value) => value === 255).length).toBe(12);
  });

  it("gives a soft stamp the expected byte at centre and edge", () => {
    const mask = createMask(21, 21);
    paintStamp(mask, 10.5, 10.5, { size: 20, hardness: 0.5, mode: "paint" });
    expect(at(mask, 10, 10)).toBe(255); // centre
    expect(at(mask, 17, 10)).toBe(Math.round(stampAlpha(7, 20, 0.5) * 255)); // 7 px out
    expect(at(mask, 20, 10)).toBe(0); // 10 px out: the edge
  });

  it("clips at the image border", () => {
    const mask = createMask(4, 4);
    expect(paintStamp(mask, 0, 0, hard)).toEqual([0, 0, 2, 2]);
    expect(paintStamp(mask, -10, -10, hard)).toEqual([0, 0, 0, 0]);
  });

  it("keeps the maximum when painting and erases to 1 − stamp", () => {
    const mask = createMask(9, 1);
    paintStamp(mask, 4.5, 0.5, { size: 9, hardness: 0, mode: "paint" });
    const once = [...mask.data];
    paintStamp(mask, 4.5, 0.5, { size: 9, hardness: 0, mode: "paint" });
    expect([...mask.data]).toEqual(once); // no build-up
    paintStamp(mask, 4.5, 0.5, { size: 3, hardness: 1, mode: "erase" });
    expect([at(mask, 3, 0), at(mask, 4, 0), at(mask, 5, 0)]).toEqual([0, 0, 0]);
    expect(at(mask, 2, 0)).toBe(once[2]);
  });
});

describe("paintSegment", () => {
  it("leaves no gaps along a stroke", () => {
    const mask = createMask(40, 10);
    const touched = paintSegment(mask, [5, 5], [35, 5], { size: 4, hardness: 1, mode: "paint" });
    for (let x = 6; x < 36; x += 1) expect(at(mask, x, 5)).toBe(255);
    expect(at(mask, 5, 5)).toBe(255); // the first stamp past `from` reaches back over it
    expect(touched[0]).toBeLessThanOrEqual(6);
    expect(touched[0] + touched[2]).toBe(37);
    expect(at(mask, 20, 8)).toBe(0);
  });
});

describe("mask ↔ alpha", () => {
  it("reads 255 − alpha and writes it back onto untouched RGB", () => {
    const rgba = new Uint8Array([10, 20, 30, 255, 40, 50, 60, 0, 70, 80, 90, 128]);
    const mask = maskFromRgba(rgba, 3, 1);
    expect([...mask.data]).toEqual([0, 255, 127]);
    invertMask(mask);
    expect([...mask.data]).toEqual([255, 0, 128]);
    expect([...rgbaWithMask(rgba, mask)]).toEqual([10, 20, 30, 0, 40, 50, 60, 255, 70, 80, 90, 127]);
  });

  it("draws the overlay of a rectangle in the mask's colour", () => {
    const mask = createMask(2, 2);
    mask.data.set([0, 255, 100, 0]);
    expect([...overlayPixels(mask, [1, 0, 1, 2], [255, 0, 0], 0.5)]).toEqual([255, 0, 0, 128, 255, 0, 0, 0]);
  });
});
