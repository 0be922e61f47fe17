/**
 * Reroute typing. A reroute has no type of its own: it carries whatever flows through it.
 * Reroutes chained to each other form a network that carries one type, set when the first
 * node is wired to the network and cleared when the last one is unwired; the type is stored
 * on each reroute record so checks stay local and the renderer can colour an unplugged
 * chain that still has a type.
 */

import { linksTouching } from "./graph";
import type { Vec2 } from "./records";
import { uniqueId } from "./ids";
import type { Store, StoreReader, Transaction } from "./store";

/** Reroute ids reachable from `id` through reroute-to-reroute links (including `id`). */
export function rerouteNetwork(store: StoreReader, id: string): Set<string> {
  const network = new Set<string>();
  if (!store.has("reroute", id)) return network;
  const pending = [id];
  network.add(id);
  while (pending.length > 0) {
    const current = pending.pop();
    if (current === undefined) break;
    for (const link of linksTouching(store, new Set([current]))) {
      for (const end of [link.from.node, link.to.node]) {
        if (store.has("reroute", end) && !network.has(end)) {
          network.add(end);
          pending.push(end);
        }
      }
    }
  }
  return network;
}

/** Whether a link joins the network to a node (not just reroutes to each other). */
export function networkTouchesNode(store: StoreReader, network: ReadonlySet<string>): boolean {
  return linksTouching(store, network).some(
    (link) => !network.has(link.from.node) || !network.has(link.to.node),
  );
}

export function setNetworkType(tx: Transaction, network: ReadonlySet<string>, type: string | undefined): void {
  for (const id of network) {
    const reroute = tx.get("reroute", id);
    if (reroute === undefined || reroute.type === type) continue;
    const { type: _old, ...rest } = reroute;
    tx.put("reroute", type === undefined ? rest : { ...rest, type });
  }
}

/** After unwiring: every network among `ids` left without a node loses its type. */
export function releaseDetachedReroutes(tx: Transaction, ids: Iterable<string>): void {
  const done = new Set<string>();
  for (const id of ids) {
    if (done.has(id) || !tx.has("reroute", id)) continue;
    const network = rerouteNetwork(tx, id);
    network.forEach((member) => done.add(member));
    if (!networkTouchesNode(tx, network)) setNetworkType(tx, network, undefined);
  }
}

export function addReroute(store: Store, pos: Vec2, id?: string): string {
  return store.transact("Add reroute", (tx) => {
    const rerouteId = id ?? uniqueId(tx, "reroute");
    if (tx.has("reroute", rerouteId) || tx.has("node", rerouteId)) {
      throw new Error(`cannot add reroute "${rerouteId}": the id is taken`);
    }
    tx.put("reroute", { id: rerouteId, pos });
    return rerouteId;
  });
}
