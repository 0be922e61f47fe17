import { describe, expect, it } from "vitest";
import { PLOT_PADDING, plotLabel, plotPoints, plotRange, sigmaReport } from "./sigma-plot";

describe("plotPoints", () => {
  // A 108 x 58 rectangle at (10, 20): the curve's box is 100 x 50 from (14, 24).
  const rect = [10, 20, 100 + 2 * PLOT_PADDING, 50 + 2 * PLOT_PADDING] as const;

  it("spreads steps evenly and puts the largest sigma on top, zero on the bottom", () => {
    const points = plotPoints([10, 5, 2.5, 0], rect);
    const expected = [
      [14, 24],
      [14 + 100 / 3, 49],
      [14 + 200 / 3, 61.5],
      [114, 74],
    ];
    expect(points).toHaveLength(4);
    points.forEach(([x, y], index) => {
      expect(x).toBeCloseTo(expected[index]?.[0] ?? NaN, 9);
      expect(y).toBeCloseTo(expected[index]?.[1] ?? NaN, 9);
    });
  });

  it("centres a single value and keeps a flat list inside the box", () => {
    expect(plotPoints([3], rect)).toEqual([[64, 24]]);
    expect(plotPoints([0, 0], rect)).toEqual([
      [14, 74],
      [114, 74],
    ]);
    expect(plotPoints([], rect)).toEqual([]);
  });

  it("on a log scale spaces the sigmas by ratio and drops zeros to the bottom edge", () => {
    const points = plotPoints([100, 10, 1, 0], rect, "log");
    expect(points.map(([, y]) => y)).toEqual([24, 49, 74, 74]);
    expect(plotRange([100, 10, 1, 0], "log")).toEqual([0, Math.log(100)]);
  });
});

describe("sigmaReport", () => {
  it("reads the report's series by output and skips malformed entries", () => {
    const report = sigmaReport({
      sigmas: [
        { output: "high_sigmas", values: [14.6, 7.0, 3.1] },
        { output: "low_sigmas", values: [3.1, 0] },
        { output: "broken", values: ["x"] },
        { values: [1] },
      ],
      images: [],
    });
    expect(report).toEqual(
      new Map([
        ["high_sigmas", [14.6, 7.0, 3.1]],
        ["low_sigmas", [3.1, 0]],
      ]),
    );
    expect(sigmaReport({ images: [] })).toBeUndefined();
    expect(sigmaReport(null)).toBeUndefined();
  });

  it("labels a schedule with its step count and end points", () => {
    expect(plotLabel([14.61, 1.23, 0.0292, 0])).toBe("3 steps · σ 14.6→0.00");
    expect(plotLabel([3.1, 0.5])).toBe("2 steps · σ 3.10→0.50");
  });
});
