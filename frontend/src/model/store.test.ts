import { describe, expect, it } from "vitest";
import { isEmptyDiff } from "./diff";
import type { NodeRecord } from "./records";
import { Store, type Change } from "./store";
import { catalog } from "./test-support";

function node(id: string, x = 0): NodeRecord {
  return { id, type: "latent.empty", pos: [x, 0], collapsed: false, inputs: { width: 512 } };
}

function recordingStore(): { store: Store; changes: Change[] } {
  const store = new Store(catalog, { node: [node("a"), node("b")] });
  const changes: Change[] = [];
  store.listen((change) => changes.push(change));
  return { store, changes };
}

describe("Store.transact", () => {
  it("reports additions, updates and removals per record kind", () => {
    const { store, changes } = recordingStore();
    const a = store.get("node", "a");
    store.transact("Edit", (tx) => {
      tx.put("node", node("c"));
      tx.update("node", "a", (record) => ({ ...record, pos: [5, 5] }));
      tx.remove("node", "b");
      tx.put("link", { id: "c:model", from: { node: "a", output: "latent" }, to: { node: "c", input: "model" } });
    });
    expect(changes).toHaveLength(1);
    const [change] = changes;
    expect(change?.label).toBe("Edit");
    expect(change?.origin).toBe("user");
    expect(Object.keys(change?.diff.node.added ?? {})).toEqual(["c"]);
    expect(change?.diff.node.updated["a"]?.[0]).toBe(a);
    expect(change?.diff.node.updated["a"]?.[1].pos).toEqual([5, 5]);
    expect(change?.diff.node.removed["b"]?.id).toBe("b");
    expect(Object.keys(change?.diff.link.added ?? {})).toEqual(["c:model"]);
    expect(store.get("node", "b")).toBeUndefined();
  });

  it("folds several changes of one record into its net change", () => {
    const { store, changes } = recordingStore();
    const originalA = store.get("node", "a");
    store.transact("Net", (tx) => {
      tx.put("node", node("temp"));
      tx.remove("node", "temp"); // added then removed: nothing
      tx.update("node", "a", (r) => ({ ...r, pos: [1, 1] }));
      tx.update("node", "a", (r) => ({ ...r, pos: [2, 2] })); // one update, first before
      tx.remove("node", "b");
      tx.put("node", node("b", 9)); // removed then added: an update
    });
    const diff = changes[0]?.diff;
    expect(diff?.node.added).toEqual({});
    expect(diff?.node.removed).toEqual({});
    expect(diff?.node.updated["a"]?.[0]).toBe(originalA);
    expect(diff?.node.updated["a"]?.[1].pos).toEqual([2, 2]);
    expect(diff?.node.updated["b"]?.[1].pos).toEqual([9, 0]);
  });

  it("merges nested transactions into the outermost one", () => {
    const { store, changes } = recordingStore();
    const result = store.transact("Outer", (tx) => {
      tx.put("node", node("c"));
      return store.transact("Inner", (inner) => {
        inner.put("node", node("d"));
        return inner.get("node", "c")?.id; // reads see the transaction's own writes
      });
    });
    expect(result).toBe("c");
    expect(changes.map((change) => change.label)).toEqual(["Outer"]);
    expect(Object.keys(changes[0]?.diff.node.added ?? {}).sort()).toEqual(["c", "d"]);
  });

  it("rolls back a failed transaction and tells nobody", () => {
    const { store, changes } = recordingStore();
    const version = store.version;
    expect(() =>
      store.transact("Broken", (tx) => {
        tx.remove("node", "a");
        tx.put("node", node("c"));
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(store.get("node", "a")?.id).toBe("a");
    expect(store.has("node", "c")).toBe(false);
    expect(changes).toEqual([]);
    expect(store.version).toBe(version);
  });

  it("rolls back only a failed inner transaction when the outer one recovers", () => {
    const { store, changes } = recordingStore();
    store.transact("Outer", (tx) => {
      tx.put("node", node("kept"));
      try {
        store.transact("Inner", (inner) => {
          inner.put("node", node("dropped"));
          throw new Error("inner failure");
        });
      } catch {
        // recovered
      }
    });
    expect(store.has("node", "kept")).toBe(true);
    expect(store.has("node", "dropped")).toBe(false);
    expect(Object.keys(changes[0]?.diff.node.added ?? {})).toEqual(["kept"]);
  });

  it("emits nothing for a transaction that changes nothing", () => {
    const { store, changes } = recordingStore();
    store.transact("Noop", (tx) => {
      tx.put("node", node("c"));
      tx.remove("node", "c");
    });
    expect(changes).toEqual([]);
  });

  it("freezes records in development, so in-place mutation fails", () => {
    const { store } = recordingStore();
    const record = store.get("node", "a");
    expect(Object.isFrozen(record)).toBe(true);
    expect(Object.isFrozen(record?.pos)).toBe(true);
    expect(() => {
      (record?.inputs as Record<string, unknown>)["width"] = 64;
    }).toThrow(TypeError);
  });

  it("refuses writes through a transaction handle after it has ended", () => {
    const { store } = recordingStore();
    let leaked: Parameters<Parameters<Store["transact"]>[1]>[0] | undefined;
    store.transact("Leak", (tx) => {
      leaked = tx;
    });
    expect(() => leaked?.put("node", node("late"))).toThrow('transaction "Leak" has ended');
  });

  it("applies a diff as one transaction with the given origin", () => {
    const { store, changes } = recordingStore();
    store.transact("Move", (tx) => tx.update("node", "a", (r) => ({ ...r, pos: [3, 3] })));
    const diff = changes[0]?.diff;
    if (diff === undefined) throw new Error("expected a change");
    const other = new Store(catalog, { node: [node("a"), node("b")] });
    const heard: Change[] = [];
    other.listen((change) => heard.push(change));
    other.applyDiff(diff, "Remote move", { origin: "remote" });
    expect(other.get("node", "a")?.pos).toEqual([3, 3]);
    expect(heard[0]?.origin).toBe("remote");
    expect(isEmptyDiff(heard[0]?.diff ?? diff)).toBe(false);
  });

  it("keeps records in insertion order and rejects duplicate ids at construction", () => {
    const store = new Store(catalog, { node: [node("z"), node("a"), node("m")] });
    expect([...store.list("node")].map((record) => record.id)).toEqual(["z", "a", "m"]);
    expect(() => new Store(catalog, { node: [node("a"), node("a")] })).toThrow('duplicate node id "a"');
  });
});
