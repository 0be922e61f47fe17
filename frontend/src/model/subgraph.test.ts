import { describe, expect, it } from "vitest";
import { jsonEqual, type JsonObject } from "./json";
import { flattenSubgraphs, inlineSubgraph, makeSubgraph, shownNode, SubgraphError, type MakeSubgraphOptions } from "./subgraph";
import { catalog, exampleWorkflows } from "./test-support";
import { fromWorkflow, toWorkflow } from "./workflow";
import { parseWorkflowDocument, type WorkflowDocument, type WorkflowLink } from "./workflow-document";
import renderText from "../../../tests/fixtures/subgraphs/txt2img_render.json?raw";
import flatText from "../../../tests/fixtures/subgraphs/txt2img_render.flat.json?raw";
import originalText from "../../../tests/fixtures/subgraphs/txt2img.json?raw";

const render = (): WorkflowDocument => parseWorkflowDocument(JSON.parse(renderText));
const flatFixture = (): JsonObject => JSON.parse(flatText) as JsonObject;

function example(name: string): WorkflowDocument {
  const text = exampleWorkflows().get(name);
  if (text === undefined) throw new Error(`${name} missing`);
  return parseWorkflowDocument(JSON.parse(text));
}

function options(document: WorkflowDocument, id = "render", name = "Render"): MakeSubgraphOptions {
  const typeOf = (source: WorkflowLink): string => {
    const type = document.nodes[source.node]?.type ?? "";
    return catalog.output(type, source.output)?.type ?? "*";
  };
  return { definitionId: id, instanceId: id, name, typeOf };
}

const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe("make a subgraph from a selection", () => {
  it("turns the three render nodes of txt2img into the fixture's definition and instance", () => {
    // A frozen copy of the txt2img example the fixture was made from.
    const txt2img = parseWorkflowDocument(JSON.parse(originalText));
    const made = makeSubgraph(txt2img, ["sampler", "latent", "decode"], options(txt2img));
    const expected = JSON.parse(renderText) as JsonObject;
    expect(plain({ ...made, meta: {} })).toEqual({ ...expected, meta: {} });
    expect(Object.keys(made.nodes)).toEqual(["checkpoint", "positive", "negative", "render", "save"]);
  });

  it("inlining the instance gives back the document exactly (unflatten -> flatten round trip)", () => {
    for (const [name, text] of exampleWorkflows()) {
      const original = parseWorkflowDocument(JSON.parse(text));
      const ids = Object.keys(original.nodes).slice(1, 4);
      const made = makeSubgraph(original, ids, options(original, "block", "Block"));
      const back = inlineSubgraph(made, "block");
      expect(jsonEqual(plain(back), plain(original)), name).toBe(true);
    }
  });

  it("names inputs after the first input they feed and makes repeated names unique", () => {
    const txt2img = example("txt2img.json");
    const made = makeSubgraph(txt2img, ["positive", "negative"], options(txt2img, "prompts", "Prompts"));
    const definition = made.subgraphs?.["prompts"];
    expect(definition?.inputs).toEqual([
      { name: "clip", type: "CLIP", targets: [{ node: "positive", input: "clip" }, { node: "negative", input: "clip" }] },
    ]);
    expect(definition?.outputs.map((output) => [output.name, output.node])).toEqual([
      ["conditioning", "positive"],
      ["conditioning_2", "negative"],
    ]);
    expect(made.nodes["sampler"]?.inputs["negative"]).toEqual({ node: "prompts", output: "conditioning_2" });
  });

  it("refuses an empty selection and a taken definition id, saying so", () => {
    const txt2img = example("txt2img.json");
    expect(() => makeSubgraph(txt2img, [], options(txt2img))).toThrow(new SubgraphError("select at least one node to make a subgraph from"));
    expect(() => makeSubgraph(render(), ["save"], options(render()))).toThrow('a subgraph "render" already exists');
  });
});

describe("flatten, as the backend does", () => {
  it("flattens the fixture to its expected flat form, node order included", () => {
    const flat = flattenSubgraphs(render());
    const expected = flatFixture();
    expect(plain(flat.nodes)).toEqual(expected["nodes"]);
    expect(Object.keys(flat.nodes)).toEqual(Object.keys(expected["nodes"] as JsonObject));
    expect(flat.version).toBe(2);
    expect(flat.subgraphs).toBeUndefined();
  });

  it("namespaces nested instances and carries an instance's mode onto its inner nodes", () => {
    const link = (node: string, output = "value"): JsonObject => ({ node, output });
    const document = parseWorkflowDocument({
      schema: "latentloom/workflow",
      version: 3,
      nodes: {
        five: { type: "arith.number", inputs: { value: 5 } },
        box: { type: "subgraph:outer", inputs: { x: link("five") }, mode: "mute" },
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
          outputs: [{ name: "sum", type: "INT", node: "add", output: "value" }],
          nodes: {
            one: { type: "subgraph:inner", inputs: {} },
            add: { type: "arith.add", inputs: { a: link("one", "sum"), b: 2 } },
          },
        },
      },
    });
    expect(plain(flattenSubgraphs(document).nodes)).toEqual({
      five: { type: "arith.number", inputs: { value: 5 } },
      "box:one:add": { type: "arith.add", inputs: { b: 1, a: link("five") }, mode: "mute" },
      "box:add": { type: "arith.add", inputs: { a: link("box:one:add"), b: 2 }, mode: "mute" },
      out: { type: "arith.sink", inputs: { value: link("box:add") } },
    });
  });

  it("refuses a definition that contains itself", () => {
    const document = parseWorkflowDocument({
      schema: "latentloom/workflow",
      version: 3,
      nodes: { a: { type: "subgraph:loop", inputs: {} } },
      subgraphs: { loop: { name: "Loop", nodes: { again: { type: "subgraph:loop", inputs: {} } } } },
    });
    expect(() => flattenSubgraphs(document)).toThrow("subgraphs loop -> loop contain each other");
  });
});

describe("the version-3 format in the store", () => {
  it("keeps subgraph definitions on the document record and writes them back exactly", () => {
    const store = fromWorkflow(JSON.parse(renderText), catalog);
    expect(Object.keys(store.document.subgraphs ?? {})).toEqual(["render"]);
    expect(plain(toWorkflow(store))).toEqual(JSON.parse(renderText));
  });

  it("migrates versions 1 and 2 and writes a document without subgraphs as version 2", () => {
    for (const version of [1, 2]) {
      const store = fromWorkflow({ schema: "latentloom/workflow", version, nodes: {} }, catalog);
      expect(toWorkflow(store).version).toBe(2);
    }
  });

  it("reports every malformed definition part at once", () => {
    expect(() =>
      parseWorkflowDocument({
        schema: "latentloom/workflow",
        version: 3,
        nodes: {},
        subgraphs: { bad: { name: "", inputs: [{ name: "x" }], outputs: "no", nodes: {}, extra: 1 } },
      }),
    ).toThrow(
      "invalid workflow document:\n" +
        "  subgraphs.bad.extra: unknown key (a subgraph has name, revision, description, inputs, outputs, nodes, ui)\n" +
        '  subgraphs.bad.name: expected a non-empty string, got ""\n' +
        '  subgraphs.bad.inputs[0]: expected {"name", "type", "targets": [{"node", "input"}]}, got {"name":"x"}\n' +
        '  subgraphs.bad.outputs: expected a list, got "no"',
    );
  });
});

describe("run state of inner nodes", () => {
  it("shows an inner node's events on the outermost instance the graph has", () => {
    const ids = new Set(["box", "plain", "a:b"]);
    const has = (id: string): boolean => ids.has(id);
    expect(shownNode(has, "box:one:add")).toBe("box");
    expect(shownNode(has, "plain")).toBe("plain");
    expect(shownNode(has, "a:b")).toBe("a:b");
    expect(shownNode(has, "gone:x")).toBe("gone:x");
  });
});
