import { describe, expect, it } from "vitest";
import { SpatialIndex } from "./spatial-index";

describe("SpatialIndex", () => {
  it("finds only what intersects the query", () => {
    const index = new SpatialIndex(100);
    index.set("a", [0, 0, 50, 50]);
    index.set("b", [250, 250, 50, 50]);
    index.set("wide", [-500, 10, 2000, 10]);
    expect(index.query([0, 0, 60, 60]).sort()).toEqual(["a", "wide"]);
    expect(index.query([240, 240, 20, 20])).toEqual(["b"]);
    expect(index.query([1000, 1000, 10, 10])).toEqual([]);
  });

  it("moves and deletes entries", () => {
    const index = new SpatialIndex(100);
    index.set("a", [0, 0, 50, 50]);
    index.set("a", [1000, 1000, 50, 50]);
    expect(index.query([0, 0, 60, 60])).toEqual([]);
    expect(index.query([990, 990, 30, 30])).toEqual(["a"]);
    index.delete("a");
    expect(index.size).toBe(0);
    expect(index.query([990, 990, 30, 30])).toEqual([]);
  });

  it("returns each id once on a 1,000-entry grid and visits only the visible ones", () => {
    const index = new SpatialIndex();
    for (let i = 0; i < 1000; i += 1) index.set(`n${i}`, [(i % 40) * 300, Math.floor(i / 40) * 260, 240, 200]);
    const visible = index.query([0, 0, 1280, 800]);
    expect(new Set(visible).size).toBe(visible.length);
    // 5 columns (0..1200) x 4 rows (0..780) intersect a 1280x800 window.
    expect(visible.length).toBe(5 * 4);
  });

  it("answers a query larger than the populated area", () => {
    const index = new SpatialIndex(10);
    index.set("a", [0, 0, 5, 5]);
    expect(index.query([-1e6, -1e6, 2e6, 2e6])).toEqual(["a"]);
  });
});
