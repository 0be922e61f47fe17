/**
 * Wiring rules, enforced in the model so every caller (canvas drag, paste, server sync
 * replaying a user's edit) gets the same answer:
 *   - an output connects to an input of the same type; widget inputs take links of their
 *     widget type (an INT output into a seed);
 *   - an input holds one link, so connecting replaces what was there;
 *   - no cycles: the engine runs a DAG, and the reason names the nodes on the loop.
 * Reroutes pass a type through (see reroutes.ts).
 */

import { describeEndpoint } from "./describe";
import { downstreamPath } from "./graph";
import { placeholderOf, type PlaceholderSocket } from "./placeholder";
import { REROUTE_INPUT, REROUTE_OUTPUT, linkIdFor, type InputRef, type LinkRecord, type OutputRef } from "./records";
import { networkTouchesNode, releaseDetachedReroutes, rerouteNetwork, setNetworkType } from "./reroutes";
import type { Store, StoreReader } from "./store";

export type Refusal = { readonly ok: false; readonly reason: string };
/** `type` is what the link carries; undefined only when both ends are untyped reroutes. */
export type Connectability = { readonly ok: true; readonly type: string | undefined } | Refusal;
export type ConnectResult = { readonly ok: true; readonly link: LinkRecord } | Refusal;

type EndType = { readonly ok: true; readonly type: string | undefined; readonly what: string } | Refusal;

export function canConnect(store: StoreReader, from: OutputRef, to: InputRef): Connectability {
  const source = sourceType(store, from);
  if (!source.ok) return source;
  const target = targetType(store, to);
  if (!target.ok) return target;
  if (source.type !== undefined && target.type !== undefined && source.type !== target.type) {
    return refuse(`type mismatch: ${source.what} is ${source.type}, but ${target.what} takes ${target.type}`);
  }
  const loop = from.node === to.node ? [to.node] : downstreamPath(store, to.node, from.node);
  if (loop !== undefined) {
    const names = [from.node, ...loop].map((id) => describeEndpoint(store, id));
    return refuse(`would create a cycle: ${names.join(" → ")}`);
  }
  return { ok: true, type: source.type ?? target.type };
}

/** Connects if allowed (replacing the input's current link); otherwise changes nothing. */
export function connect(store: Store, from: OutputRef, to: InputRef): ConnectResult {
  const check = canConnect(store, from, to);
  if (!check.ok) return check;
  // Copies, because records are frozen in development and the caller may still own these.
  const link: LinkRecord = { id: linkIdFor(to), from: { node: from.node, output: from.output }, to: { node: to.node, input: to.input } };
  return store.transact("Connect", (tx) => {
    const replaced = tx.get("link", link.id);
    tx.put("link", link);
    if (check.type !== undefined) {
      for (const end of [from.node, to.node]) {
        const network = rerouteNetwork(tx, end);
        if (network.size > 0 && networkTouchesNode(tx, network)) setNetworkType(tx, network, check.type);
      }
    }
    if (replaced !== undefined) releaseDetachedReroutes(tx, [replaced.from.node]);
    return { ok: true, link: tx.get("link", link.id) ?? link };
  });
}

/** Removes the link into `to`, if any. */
export function disconnect(store: Store, to: InputRef): boolean {
  return store.transact("Disconnect", (tx) => {
    const link = tx.get("link", linkIdFor(to));
    if (link === undefined) return false;
    tx.remove("link", link.id);
    releaseDetachedReroutes(tx, [link.from.node, link.to.node]);
    return true;
  });
}

/** The type a link from `from` carries, or why there cannot be one. */
export function sourceType(store: StoreReader, from: OutputRef): EndType {
  const reroute = store.get("reroute", from.node);
  if (reroute !== undefined) {
    if (from.output !== REROUTE_OUTPUT) return refuse(`reroute "${from.node}" has only the output "${REROUTE_OUTPUT}"`);
    return { ok: true, type: reroute.type, what: `reroute "${from.node}"` };
  }
  const node = store.get("node", from.node);
  if (node === undefined) return refuse(`there is no node or reroute "${from.node}"`);
  const spec = store.catalog.get(node.type);
  const name = describeEndpoint(store, from.node);
  const placeholder = spec === undefined ? placeholderOf(node) : undefined;
  if (placeholder !== undefined) return placeholderEnd(placeholder.outputs, from.output, "output", name);
  if (spec === undefined) return refuse(`${name} has type "${node.type}", which the node catalog does not know`);
  const output = spec.outputs.find((candidate) => candidate.name === from.output);
  if (output === undefined) {
    const names = spec.outputs.map((candidate) => candidate.name).join(", ") || "none";
    return refuse(`${name} has no output "${from.output}" (outputs: ${names})`);
  }
  return { ok: true, type: output.type, what: `output "${from.output}" of ${name}` };
}

/** The type `to` accepts, or why nothing can be connected there. */
export function targetType(store: StoreReader, to: InputRef): EndType {
  const reroute = store.get("reroute", to.node);
  if (reroute !== undefined) {
    if (to.input !== REROUTE_INPUT) return refuse(`reroute "${to.node}" has only the input "${REROUTE_INPUT}"`);
    return { ok: true, type: reroute.type, what: `reroute "${to.node}"` };
  }
  const node = store.get("node", to.node);
  if (node === undefined) return refuse(`there is no node or reroute "${to.node}"`);
  const spec = store.catalog.get(node.type);
  const name = describeEndpoint(store, to.node);
  const placeholder = spec === undefined ? placeholderOf(node) : undefined;
  if (placeholder !== undefined) return placeholderEnd(placeholder.inputs, to.input, "input", name);
  if (spec === undefined) return refuse(`${name} has type "${node.type}", which the node catalog does not know`);
  const input = spec.inputs.find((candidate) => candidate.name === to.input);
  if (input === undefined) {
    const names = spec.inputs.map((candidate) => candidate.name).join(", ") || "none";
    return refuse(`${name} has no input "${to.input}" (inputs: ${names})`);
  }
  return { ok: true, type: input.type, what: `input "${to.input}" of ${name}` };
}

/**
 * A placeholder's sockets carry ComfyUI's types, which are ours for the shared ones (IMAGE,
 * LATENT...), so rewiring around an unsupported node is checked like any other; an untyped
 * ("*") socket takes anything, as in ComfyUI. Outputs are named by index ("0"), shown by name.
 */
function placeholderEnd(sockets: readonly PlaceholderSocket[], socket: string, side: "input" | "output", name: string): EndType {
  const found = sockets.find((candidate) => candidate.name === socket);
  if (found === undefined) {
    const names = sockets.map((candidate) => (side === "output" ? `${candidate.name} (${candidate.label})` : candidate.name)).join(", ") || "none";
    return refuse(`${name} has no ${side} "${socket}" (${side}s: ${names})`);
  }
  const what = side === "output" ? `output ${socket} ("${found.label}") of ${name}` : `input "${socket}" of ${name}`;
  return { ok: true, type: found.type === "*" ? undefined : found.type, what };
}

function refuse(reason: string): Refusal {
  return { ok: false, reason };
}
