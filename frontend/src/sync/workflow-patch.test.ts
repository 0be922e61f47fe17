import { describe, expect, it } from "vitest";
import { UndoManager, connect, createNode, disconnect, setTitle, setWidgetValue, toWorkflow, removeItems } from "../model";
import { exampleWorkflows, loadExample } from "../model/test-support";
import { applyMergePatch, createMergePatch } from "./merge-patch";
import { PatchCollector } from "./workflow-patch";

/** Two editors on one document: every patch the first takes is applied by the second. */
function pair(name = "txt2img.json") {
  const a = loadExample(name);
  const b = loadExample(name);
  const collector = new PatchCollector(a, () => undefined);
  const receiver = new PatchCollector(b, () => undefined);
  let server: unknown = toWorkflow(a);
  const sync = () => {
    const patch = collector.take();
    if (patch === undefined) return undefined;
    server = applyMergePatch(server as never, patch);
    receiver.acceptRemote(patch);
    return patch;
  };
  return { a, b, sync, server: () => server, receiver, collector };
}

describe("merge patch", () => {
  it("follows RFC 7386", () => {
    expect(applyMergePatch({ a: "b", c: { d: "e", f: "g" } }, { a: "z", c: { f: null } })).toEqual({ a: "z", c: { d: "e" } });
    expect(applyMergePatch({ a: [1, 2] }, { a: [3] })).toEqual({ a: [3] });
    expect(applyMergePatch("x", { a: 1 })).toEqual({ a: 1 });
  });

  it("creates minimal patches that reproduce the target", () => {
    const before = { a: 1, b: { c: 2, d: 3 }, e: [1] };
    const after = { a: 1, b: { c: 4 }, e: [1, 2], f: "new" };
    const patch = createMergePatch(before, after);
    expect(patch).toEqual({ b: { c: 4, d: null }, e: [1, 2], f: "new" });
    expect(applyMergePatch(before, patch)).toEqual(after);
  });
});

describe("store diffs to workflow patches and back", () => {
  it("sends only the edited node's changed input", () => {
    const { a, b, sync } = pair();
    setWidgetValue(a, "sampler", "steps", 5);
    expect(sync()).toEqual({ nodes: { sampler: { inputs: { steps: 5 } } } });
    expect(b.get("node", "sampler")?.inputs["steps"]).toBe(5);
  });

  it("syncs added, wired, renamed and removed nodes, ending equal on both sides and on the server", () => {
    const { a, b, sync, server } = pair();
    const node = createNode(a, "image.preview", [900, 400]);
    connect(a, { node: "decode", output: "image" }, { node: node.id, input: "images" });
    setTitle(a, "positive", undefined);
    removeItems(a, ["negative"]);
    const patch = sync();
    expect(patch?.["nodes"]).toMatchObject({ negative: null, positive: { title: null } });
    expect(toWorkflow(b)).toEqual(toWorkflow(a));
    expect(server()).toEqual(toWorkflow(a));
  });

  it("remote changes are not undoable here and are not echoed back", () => {
    const { a, b, sync, receiver } = pair();
    const undo = new UndoManager(b);
    disconnect(a, { node: "sampler", input: "latent" });
    sync();
    expect(b.has("link", "sampler:latent")).toBe(false);
    expect(undo.canUndo).toBe(false);
    expect(receiver.take()).toBeUndefined();
  });

  it("undo on the sender produces a patch that restores the receiver", () => {
    const { a, b, sync } = pair();
    const undo = new UndoManager(a);
    disconnect(a, { node: "sampler", input: "latent" });
    sync();
    undo.undo();
    sync();
    expect(b.get("link", "sampler:latent")?.from).toEqual({ node: "latent", output: "latent" });
  });

  it("round-trips every example workflow through edits of each node", () => {
    for (const name of exampleWorkflows().keys()) {
      const { a, b, sync } = pair(name);
      for (const node of [...a.list("node")]) {
        a.transact("move", (tx) => tx.update("node", node.id, (n) => ({ ...n, pos: [n.pos[0] + 7, n.pos[1]] })));
      }
      sync();
      expect(toWorkflow(b), name).toEqual(toWorkflow(a));
    }
  });

  it("a patch that breaks the document is refused and changes nothing", () => {
    const { b, receiver } = pair();
    const before = toWorkflow(b);
    expect(() => receiver.acceptRemote({ nodes: { sampler: { ui: { pos: "left" } } } })).toThrow("nodes.sampler.ui.pos");
    expect(toWorkflow(b)).toEqual(before);
  });
});
