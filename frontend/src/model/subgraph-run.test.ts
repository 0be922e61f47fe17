import { describe, expect, it } from "vitest";
import type { JsonObject } from "./json";
import { flatRunPlan, flatRunTargets, shownRunPlan } from "./subgraph-run";
import { parseWorkflowDocument, type WorkflowDocument } from "./workflow-document";
import renderText from "../../../tests/fixtures/subgraphs/txt2img_render.json?raw";

const render = (): WorkflowDocument => parseWorkflowDocument(JSON.parse(renderText));
const link = (node: string, output = "value"): JsonObject => ({ node, output });

/** five -> box (outer: one (inner: add) -> add) -> out, plus a second output from the inner level. */
const nested = (): WorkflowDocument =>
  parseWorkflowDocument({
    schema: "latentloom/workflow",
    version: 3,
    nodes: {
      five: { type: "arith.number", inputs: { value: 5 } },
      box: { type: "subgraph:outer", inputs: { x: link("five") } },
      out: { type: "arith.sink", inputs: { value: link("box", "sum") } },
    },
    subgraphs: {
      inner: {
        name: "Add one",
        inputs: [{ name: "x", type: "INT", targets: [{ node: "add", input: "a" }] }],
        outputs: [{ name: "sum", type: "INT", node: "add", output: "value" }],
        nodes: { add: { type: "arith.add", inputs: { b: 1 } } },
      },
      outer: {
        name: "Add three",
        inputs: [{ name: "x", type: "INT", targets: [{ node: "one", input: "x" }] }],
        outputs: [
          { name: "sum", type: "INT", node: "add", output: "value" },
          { name: "plus_one", type: "INT", node: "one", output: "sum" },
        ],
        nodes: {
          one: { type: "subgraph:inner", inputs: {} },
          add: { type: "arith.add", inputs: { a: link("one", "sum"), b: 2 } },
        },
      },
    },
  });

describe("run to here targets with subgraphs", () => {
  it("keeps a top-level ordinary node as it is", () => {
    expect(flatRunTargets(render(), "positive")).toEqual(["positive"]);
  });

  it("aims a subgraph node at the inner nodes behind its outputs", () => {
    expect(flatRunTargets(render(), "render")).toEqual(["render:decode"]);
  });

  it("follows outputs through nested instances, each inner node once", () => {
    expect(flatRunTargets(nested(), "box")).toEqual(["box:add", "box:one:add"]);
  });

  it("namespaces a node inside an open subgraph by the open instances", () => {
    expect(flatRunTargets(render(), "sampler", ["render"])).toEqual(["render:sampler"]);
    expect(flatRunTargets(nested(), "add", ["box", "one"])).toEqual(["box:one:add"]);
    expect(flatRunTargets(nested(), "one", ["box"])).toEqual(["box:one:add"]);
  });

  it("gives nothing for an id the level lacks and refuses a path through a non-instance", () => {
    expect(flatRunTargets(render(), "missing")).toEqual([]);
    expect(() => flatRunTargets(render(), "sampler", ["save"])).toThrow('node "save" is not a subgraph instance this workflow defines');
  });
});

describe("run to here plan with subgraphs", () => {
  it("lists what an inner target needs in the flattened graph, dependencies first", () => {
    expect(flatRunPlan(render(), ["render:sampler"])).toEqual(["checkpoint", "negative", "positive", "render:latent", "render:sampler"]);
  });

  it("marks the nodes the tab shows: inner nodes fold onto their instance", () => {
    expect(shownRunPlan(render(), ["render:sampler"])).toEqual(["checkpoint", "negative", "positive", "render"]);
    expect(shownRunPlan(nested(), ["box:one:add"])).toEqual(["five", "box"]);
    expect(shownRunPlan(render(), ["save"])).toEqual(["checkpoint", "negative", "positive", "render", "save"]);
  });
});
