/**
 * Copy and paste. The clipboard holds a workflow document fragment, not records: it is plain
 * JSON for the system clipboard, pasting a whole workflow file works the same way, and the
 * fragment goes through the same validation as a file.
 *
 * A copied node keeps the links among the copied items, and also its links from items left
 * behind (they point at ids outside the fragment). Pasting drops those outside links, unless
 * it is a "paste with links", which reconnects them to the same sources if they still exist
 * and still fit.
 */

import { canConnect } from "./connect";
import { uniqueId } from "./ids";
import { REROUTE_INPUT, linkIdFor, type LinkRecord, type Vec2 } from "./records";
import { releaseDetachedReroutes } from "./reroutes";
import { Store, type Snapshot, type StoreReader, type Transaction } from "./store";
import { recordsFromWorkflow, toWorkflow } from "./workflow";
import type { WorkflowDocument } from "./workflow-document";

export interface PasteOptions {
  /** Added to every pasted position, so a paste does not sit exactly on its original. */
  readonly offset: Vec2;
  /** Reconnect links from items that were not copied (Ctrl+Shift+V). */
  readonly withLinks: boolean;
}

export interface PasteResult {
  /** Copied id -> pasted id, for every pasted node, reroute and group. */
  readonly ids: ReadonlyMap<string, string>;
  /** Outside links that could not be reconnected, with the reason. */
  readonly skipped: readonly string[];
}

/** The selected nodes, reroutes and groups as a workflow fragment. */
export function copySelection(store: StoreReader, ids: Iterable<string>): WorkflowDocument {
  const selected = new Set(ids);
  const pick = <T extends { readonly id: string }>(records: Iterable<T>): T[] => [...records].filter((r) => selected.has(r.id));
  const snapshot: Snapshot = {
    node: pick(store.list("node")),
    reroute: pick(store.list("reroute")),
    group: pick(store.list("group")),
    // Links into copied items, from anywhere: ones from outside become outside links.
    link: [...store.list("link")].filter((link) => selected.has(link.to.node)),
  };
  return toWorkflow(new Store(store.catalog, snapshot));
}

export function paste(store: Store, clipboard: unknown, options: PasteOptions): PasteResult {
  const records = recordsFromWorkflow(clipboard);
  const [dx, dy] = options.offset;
  const move = (pos: Vec2): Vec2 => [pos[0] + dx, pos[1] + dy];
  return store.transact("Paste", (tx) => {
    const ids = new Map<string, string>();
    const claim = (id: string): string => {
      const fresh = uniqueId(tx, id, new Set(ids.values()));
      ids.set(id, fresh);
      return fresh;
    };
    for (const node of records.node) tx.put("node", { ...node, id: claim(node.id), pos: move(node.pos) });
    for (const reroute of records.reroute) tx.put("reroute", { ...reroute, id: claim(reroute.id), pos: move(reroute.pos) });
    for (const group of records.group) {
      const [x, y, width, height] = group.rect;
      tx.put("group", { ...group, id: claim(group.id), rect: [x + dx, y + dy, width, height] });
    }
    const skipped: string[] = [];
    const outsideSources: string[] = [];
    for (const link of records.link) {
      const to = { node: ids.get(link.to.node) ?? link.to.node, input: link.to.input };
      const inside = ids.get(link.from.node);
      if (inside !== undefined) {
        tx.put("link", { id: linkIdFor(to), from: { node: inside, output: link.from.output }, to });
        continue;
      }
      if (!options.withLinks) {
        restoreDefault(tx, link, to.node);
        continue;
      }
      const check = canConnect(tx, link.from, to);
      if (check.ok) {
        tx.put("link", { id: linkIdFor(to), from: link.from, to });
        outsideSources.push(link.from.node);
      } else {
        skipped.push(`${to.node}.${to.input}: ${check.reason}`);
        restoreDefault(tx, link, to.node);
      }
    }
    // Pasted reroutes whose source stayed behind carry nothing now.
    releaseDetachedReroutes(tx, [...records.reroute.map((reroute) => ids.get(reroute.id) ?? reroute.id), ...outsideSources]);
    return { ids, skipped };
  });
}

/**
 * A linked widget has no literal in the file, so when its outside link is dropped the
 * pasted node would have an empty widget; it gets the catalog default instead.
 */
function restoreDefault(tx: Transaction, link: LinkRecord, nodeId: string): void {
  if (link.to.input === REROUTE_INPUT && tx.has("reroute", nodeId)) return;
  const node = tx.get("node", nodeId);
  const spec = node === undefined ? undefined : tx.catalog.input(node.type, link.to.input);
  if (node === undefined || spec?.kind !== "widget" || spec.default === undefined || link.to.input in node.inputs) return;
  tx.put("node", { ...node, inputs: { ...node.inputs, [link.to.input]: spec.default } });
}
