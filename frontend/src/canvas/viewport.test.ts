import { describe, expect, it } from "vitest";
import { IDENTITY, fitBounds, pan, toScreen, toWorld, unionRects, visibleWorldRect, zoomAt, MAX_SCALE } from "./viewport";

describe("viewport", () => {
  it("round-trips screen and world coordinates", () => {
    const view = { scale: 2, offset: [10, -20] as const };
    expect(toScreen(view, [5, 5])).toEqual([20, -10]);
    expect(toWorld(view, toScreen(view, [123, -45]))).toEqual([123, -45]);
  });

  it("zooms around the anchor, keeping the point under it fixed", () => {
    const view = zoomAt(pan(IDENTITY, 30, 40), [200, 100], 1.5);
    expect(view.scale).toBe(1.5);
    expect(toWorld(view, [200, 100])).toEqual(toWorld(pan(IDENTITY, 30, 40), [200, 100]));
  });

  it("clamps zoom", () => {
    expect(zoomAt(IDENTITY, [0, 0], 100).scale).toBe(MAX_SCALE);
  });

  it("reports the visible world rectangle", () => {
    expect(visibleWorldRect({ scale: 0.5, offset: [100, 0] }, [800, 600])).toEqual([-200, 0, 1600, 1200]);
  });

  it("fits bounds centred with a margin", () => {
    const view = fitBounds([0, 0, 1000, 500], [1040, 1000], 20, 4);
    expect(view.scale).toBe(1);
    expect(toScreen(view, [500, 250])).toEqual([520, 500]);
  });

  it("unions rectangles", () => {
    expect(unionRects([[0, 0, 10, 10], [-5, 5, 10, 20]])).toEqual([-5, 0, 15, 25]);
    expect(unionRects([])).toBeUndefined();
  });
});
