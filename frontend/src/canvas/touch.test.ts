import { describe, expect, it } from "vitest";
import { pinchView } from "./touch";

describe("pinch and two-finger pan", () => {
  it("pans by the midpoint's movement when the fingers keep their distance", () => {
    const view = pinchView({ scale: 1, offset: [10, 20] }, [[0, 0], [100, 0]], [[30, 40], [130, 40]]);
    expect(view).toEqual({ scale: 1, offset: [40, 60] });
  });

  it("zooms about the midpoint by the change in distance, keeping the world point under it", () => {
    const view = pinchView({ scale: 1, offset: [0, 0] }, [[50, 100], [150, 100]], [[0, 100], [200, 100]]);
    expect(view).toEqual({ scale: 2, offset: [-100, -100] });
    // World point (100, 100) was under the midpoint (100, 100) and still is.
    expect([100 * view.scale + view.offset[0], 100 * view.scale + view.offset[1]]).toEqual([100, 100]);
  });

  it("stays within the zoom limits", () => {
    expect(pinchView({ scale: 3, offset: [0, 0] }, [[0, 0], [10, 0]], [[0, 0], [1000, 0]]).scale).toBe(4);
  });
});
