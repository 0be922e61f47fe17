import { describe, expect, it } from "vitest";
import { PatchCollector } from "../sync/workflow-patch";
import { copySelection, paste } from "./clipboard";
import { setMode, toggleMode } from "./nodes";
import type { Change } from "./store";
import { loadExample } from "./test-support";
import { UndoManager } from "./undo";
import { toWorkflow } from "./workflow";

describe("node modes", () => {
  it("toggles bypass as one undoable transaction over the selection", () => {
    const store = loadExample("txt2img.json");
    const undo = new UndoManager(store);
    const changes: Change[] = [];
    store.listen((change) => changes.push(change));
    expect(toggleMode(store, ["decode", "save"], "bypass")).toBe("bypass");
    expect(changes).toHaveLength(1);
    expect(changes[0]?.label).toBe("Bypass");
    expect(Object.keys(changes[0]?.diff.node.updated ?? {})).toEqual(["decode", "save"]);
    expect(store.get("node", "decode")?.mode).toBe("bypass");
    expect(toWorkflow(store).nodes["save"]?.mode).toBe("bypass");
    undo.undo();
    expect(store.get("node", "decode")?.mode).toBeUndefined();
    expect(toWorkflow(store).nodes["save"]?.mode).toBeUndefined();
    undo.redo();
    expect(store.get("node", "save")?.mode).toBe("bypass");
  });

  it("turns a mode off when every selected node has it, and on when some lack it", () => {
    const store = loadExample("txt2img.json");
    setMode(store, ["decode"], "mute");
    // A mixed selection: all muted first...
    expect(toggleMode(store, ["decode", "save"], "mute")).toBe("mute");
    expect(store.get("node", "save")?.mode).toBe("mute");
    // ...then all back to running, with no "mode" key left on the record.
    expect(toggleMode(store, ["decode", "save"], "mute")).toBe("run");
    expect("mode" in (store.get("node", "decode") ?? {})).toBe(false);
    // Bypass replaces mute rather than stacking with it.
    setMode(store, ["decode"], "mute");
    toggleMode(store, ["decode"], "bypass");
    expect(store.get("node", "decode")?.mode).toBe("bypass");
  });

  it("ignores an empty selection and refuses unknown ids, naming them", () => {
    const store = loadExample("txt2img.json");
    expect(toggleMode(store, [], "bypass")).toBeUndefined();
    expect(() => setMode(store, ["decode", "nope"], "mute")).toThrow('cannot set the mode of "nope": there is no such node');
    expect(store.get("node", "decode")?.mode).toBeUndefined();
  });

  it("keeps modes through copy and paste", () => {
    const store = loadExample("txt2img.json");
    setMode(store, ["sampler"], "bypass");
    const clipboard: unknown = JSON.parse(JSON.stringify(copySelection(store, ["sampler", "decode"])));
    const result = paste(store, clipboard, { offset: [10, 10], withLinks: false });
    expect(store.get("node", result.ids.get("sampler") ?? "")?.mode).toBe("bypass");
    expect(store.get("node", result.ids.get("decode") ?? "")?.mode).toBeUndefined();
  });

  it("syncs a mode change to another editor as a patch, and its removal as null", () => {
    const a = loadExample("txt2img.json");
    const b = loadExample("txt2img.json");
    const sender = new PatchCollector(a, () => undefined);
    const receiver = new PatchCollector(b, () => undefined);
    setMode(a, ["decode"], "mute");
    const on = sender.take();
    expect(on).toEqual({ nodes: { decode: { mode: "mute" } } });
    receiver.acceptRemote(on ?? {});
    expect(b.get("node", "decode")?.mode).toBe("mute");
    setMode(a, ["decode"], "run");
    const off = sender.take();
    expect(off).toEqual({ nodes: { decode: { mode: null } } });
    receiver.acceptRemote(off ?? {});
    expect(b.get("node", "decode")?.mode).toBeUndefined();
    expect(toWorkflow(b)).toEqual(toWorkflow(a));
  });
});
