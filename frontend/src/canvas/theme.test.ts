import { describe, expect, it } from "vitest";
import { SOCKET_TYPES } from "../model";
import { socketColor } from "./theme";

describe("socket colours", () => {
  it("gives every socket type its own colour, none the unknown-type grey", () => {
    const colours = SOCKET_TYPES.map((type) => socketColor(type));
    expect(colours).not.toContain(socketColor("NO_SUCH_TYPE"));
    expect(new Set(colours).size).toBe(SOCKET_TYPES.length);
    // The types issue 8 brings, as the browser test reads them off the canvas.
    expect([socketColor("MASK"), socketColor("SIGMAS")]).toEqual(["#81c784", "#cddc39"]);
  });
});
