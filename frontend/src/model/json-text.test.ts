import { describe, expect, it } from "vitest";
import { exactInteger, parseJson, stringifyJson } from "./json-text";
import { fromWorkflow, toWorkflow } from "./workflow";
import { catalog } from "./test-support";

const MAX_SEED = 18446744073709551615n; // 2^64 - 1, the largest seed KSampler takes

describe("JSON text with exact integers", () => {
  it("reads integers beyond 2^53 as bigints and writes them back digit for digit", () => {
    const text = '{"seed":18446744073709551615,"small":42,"negative":-9007199254740993,"list":[9007199254740993]}';
    const value = parseJson(text) as Record<string, unknown>;
    expect(value["seed"]).toBe(MAX_SEED);
    expect(value["small"]).toBe(42);
    expect(value["negative"]).toBe(-9007199254740993n);
    expect(value["list"]).toEqual([9007199254740993n]);
    expect(stringifyJson(value)).toBe(text);
    // What the browser's own parser would have done.
    expect(JSON.stringify(JSON.parse(text))).not.toBe(text);
  });

  it("leaves floats, exponents and digits inside strings alone", () => {
    const text = '{"cfg":0.30000000000000004,"big":1e400,"x":12345678901234567.5,"id":"18446744073709551615","e":"\\"9007199254740993"}';
    const value = parseJson(text) as Record<string, unknown>;
    expect(value["cfg"]).toBe(0.30000000000000004);
    expect(value["x"]).toBe(12345678901234567.5);
    expect(value["id"]).toBe("18446744073709551615");
    expect(value["e"]).toBe('"9007199254740993');
    expect(value["big"]).toBe(Infinity);
  });

  it("indents like JSON.stringify and keeps the number when a bigint is safe", () => {
    expect(stringifyJson({ a: [1n, MAX_SEED] }, 2)).toBe('{\n  "a": [\n    1,\n    18446744073709551615\n  ]\n}');
    expect(exactInteger(5n)).toBe(5);
    expect(exactInteger(MAX_SEED)).toBe(MAX_SEED);
  });

  it("carries a 64-bit seed through a workflow document unchanged", () => {
    const document = {
      schema: "latentloom/workflow",
      version: 2,
      nodes: { k: { type: "sampling.ksampler", inputs: { seed: 18446744073709551615n, steps: 20 } } },
    };
    const text = stringifyJson(document);
    const store = fromWorkflow(parseJson(text), catalog);
    const back = toWorkflow(store) as { nodes: Record<string, { inputs: Record<string, unknown> }> };
    expect(back.nodes["k"]?.inputs["seed"]).toBe(MAX_SEED);
    expect(stringifyJson(back)).toContain('"seed":18446744073709551615');
  });
});
