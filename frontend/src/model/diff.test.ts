import { describe, expect, it } from "vitest";
import { DiffBuilder, composeDiffs, invertDiff, isEmptyDiff } from "./diff";
import type { RerouteRecord } from "./records";

const r1: RerouteRecord = { id: "r", pos: [0, 0] };
const r2: RerouteRecord = { id: "r", pos: [1, 1] };
const r3: RerouteRecord = { id: "r", pos: [2, 2] };

function diffOf(before: RerouteRecord | undefined, after: RerouteRecord | undefined) {
  const builder = new DiffBuilder();
  builder.record("reroute", "r", before, after);
  return builder.build();
}

describe("diffs", () => {
  it("inverts additions, updates and removals", () => {
    expect(invertDiff(diffOf(undefined, r1)).reroute.removed).toEqual({ r: r1 });
    expect(invertDiff(diffOf(r1, undefined)).reroute.added).toEqual({ r: r1 });
    expect(invertDiff(diffOf(r1, r2)).reroute.updated).toEqual({ r: [r2, r1] });
  });

  it("composes consecutive diffs into their net effect", () => {
    expect(composeDiffs(diffOf(r1, r2), diffOf(r2, r3)).reroute.updated).toEqual({ r: [r1, r3] });
    expect(composeDiffs(diffOf(undefined, r1), diffOf(r1, r2)).reroute.added).toEqual({ r: r2 });
    expect(isEmptyDiff(composeDiffs(diffOf(undefined, r1), diffOf(r1, undefined)))).toBe(true);
    expect(composeDiffs(diffOf(r1, undefined), diffOf(undefined, r2)).reroute.updated).toEqual({ r: [r1, r2] });
  });

  it("is plain JSON, so it can travel to the server as is", () => {
    const diff = diffOf(r1, r2);
    expect(JSON.parse(JSON.stringify(diff))).toEqual(diff);
  });
});
