import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_PREFERENCES, applyPreferences, orthogonalPoints, preferences, snapPoint } from "./preferences";

afterEach(() => Object.assign(preferences, DEFAULT_PREFERENCES));

describe("preferences", () => {
  it("takes valid stored values and ignores the rest", () => {
    applyPreferences({ linkStyle: "orthogonal", snapToGrid: true, gridSize: 25, badges: "id+pack", other: 1 });
    expect({ ...preferences }).toEqual({ linkStyle: "orthogonal", snapToGrid: true, gridSize: 25, badges: "id+pack" });
    applyPreferences({ linkStyle: "wiggly", gridSize: 1.5, badges: "all", snapToGrid: "yes" });
    expect({ ...preferences }).toEqual({ linkStyle: "orthogonal", snapToGrid: true, gridSize: 25, badges: "id+pack" });
  });

  it("snaps moved nodes to the grid only when asked", () => {
    expect(snapPoint([31.4, 48.6])).toEqual([31, 49]);
    applyPreferences({ snapToGrid: true, gridSize: 20 });
    expect(snapPoint([31.4, 48.6])).toEqual([40, 40]);
    expect(snapPoint([-29, 9])).toEqual([-20, 0]);
  });

  it("routes orthogonal links through the middle, or round when the input is behind", () => {
    expect(orthogonalPoints([0, 0], [200, 100])).toEqual([[100, 0], [100, 100], [200, 100]]);
    expect(orthogonalPoints([200, 0], [100, 100])).toEqual([[220, 0], [220, 50], [80, 50], [80, 100], [100, 100]]);
  });
});
