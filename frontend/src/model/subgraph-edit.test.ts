import { describe, expect, it } from "vitest";
import { canConnect } from "./connect";
import { SubgraphCatalog, subgraphSpec } from "./subgraph-catalog";
import { addComponent, componentOf, definitionDocument, inlineSubgraphNode, makeSubgraphFromSelection, writeBackDefinition } from "./subgraph-edit";
import { catalog } from "./test-support";
import { UndoManager } from "./undo";
import { fromWorkflow, toWorkflow } from "./workflow";
import originalText from "../../../tests/fixtures/subgraphs/txt2img.json?raw";
import renderText from "../../../tests/fixtures/subgraphs/txt2img_render.json?raw";

const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe("subgraphs in the store", () => {
  it("makes the fixture's subgraph from a selection in one undoable step", () => {
    const subgraphs = new SubgraphCatalog(catalog);
    const store = fromWorkflow(JSON.parse(originalText), subgraphs);
    const undo = new UndoManager(store);
    const instance = makeSubgraphFromSelection(store, ["latent", "sampler", "decode"], "Render");
    expect(instance).toBe("render");
    const expected = JSON.parse(renderText) as Record<string, unknown>;
    expect(plain({ ...toWorkflow(store), meta: {} })).toEqual({ ...expected, meta: {} });
    expect(subgraphs.get("subgraph:render")?.outputs).toEqual([{ name: "image", type: "IMAGE" }]);
    undo.undo();
    expect(plain(toWorkflow(store))).toEqual(JSON.parse(originalText));
  });

  it("unpacks an instance back into the nodes it was made of", () => {
    const store = fromWorkflow(JSON.parse(renderText), new SubgraphCatalog(catalog));
    expect(inlineSubgraphNode(store, "render")).toEqual(["latent", "sampler", "decode"]);
    expect(plain({ ...toWorkflow(store), meta: {} })).toEqual({ ...(JSON.parse(originalText) as object), meta: {} });
  });

  it("opens a definition as a document and writes edits back as the next revision", () => {
    const store = fromWorkflow(JSON.parse(renderText), new SubgraphCatalog(catalog));
    const opened = definitionDocument(store, "render");
    expect(Object.keys(opened.nodes)).toEqual(["latent", "sampler", "decode"]);
    expect(opened.meta).toEqual({ title: "Render", subgraph: "render" });
    const inner = fromWorkflow(opened, catalog);
    inner.transact("steps", (tx) => tx.update("node", "sampler", (node) => ({ ...node, inputs: { ...node.inputs, steps: 5 } })));
    inner.transact("drop decode", (tx) => tx.remove("node", "decode"));
    expect(writeBackDefinition(store, "render", toWorkflow(inner))).toBe(2);
    const definition = store.document.subgraphs?.["render"];
    expect(definition?.nodes["sampler"]?.inputs["steps"]).toBe(5);
    expect(definition?.inputs.map((input) => input.name)).toEqual(["model", "positive", "negative"]);
    expect(definition?.outputs).toEqual([]);
    // Save's link to the output that went away is gone with it.
    expect(toWorkflow(store).nodes["save"]?.inputs["images"]).toBeUndefined();
  });

  it("gives an instance sockets typed like the definition's, which the wiring rules use", () => {
    const spec = subgraphSpec("render", (JSON.parse(renderText) as { subgraphs: { render: never } }).subgraphs.render);
    expect(spec.inputs.map((input) => [input.name, input.type, input.required])).toEqual([
      ["model", "MODEL", false],
      ["positive", "CONDITIONING", false],
      ["negative", "CONDITIONING", false],
      ["vae", "VAE", false],
    ]);
    const store = fromWorkflow(JSON.parse(renderText), new SubgraphCatalog(catalog));
    expect(canConnect(store, { node: "checkpoint", output: "vae" }, { node: "render", input: "vae" })).toEqual({ ok: true, type: "VAE" });
    expect(canConnect(store, { node: "checkpoint", output: "clip" }, { node: "render", input: "vae" }).ok).toBe(false);
  });
});

describe("components", () => {
  it("saves a definition as a component and adds it to another workflow as an instance", () => {
    const source = fromWorkflow(JSON.parse(renderText), new SubgraphCatalog(catalog));
    const component = componentOf(source, "render");
    expect(component.schema).toBe("latentloom/component");
    expect(component.definition.name).toBe("Render");
    expect(component.subgraphs).toBeUndefined();
    const subgraphs = new SubgraphCatalog(catalog);
    const target = fromWorkflow(JSON.parse(originalText), subgraphs);
    const id = addComponent(target, "My Render", component, [10.4, 20.6]);
    expect(id).toBe("my_render");
    expect(toWorkflow(target).nodes["my_render"]).toEqual({ type: "subgraph:my_render", inputs: {}, ui: { pos: [10, 21] } });
    expect(Object.keys(toWorkflow(target).subgraphs ?? {})).toEqual(["my_render"]);
    expect(subgraphs.get("subgraph:my_render")?.display_name).toBe("Render");
  });
});
