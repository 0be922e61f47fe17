/**
 * Placeholder nodes: a ComfyUI node whose class Latentloom does not support is imported as a
 * node of type `comfy:<ClassName>` rather than dropped. Its record keeps what the file said
 * under `ui.comfy = {class_type, inputs: [{name, type}], outputs: [{name, type}],
 * widgets_values?}` (an `extraUi` key here, so it round-trips untouched), its literal inputs
 * under ComfyUI's input names, and its links: into it under ComfyUI's input names, out of it
 * under the output's index as a string ("0", "1", ...), since ComfyUI links name outputs by
 * position.
 *
 * The catalog has no spec for such a node, so this module reads its shape from `ui.comfy`
 * for the canvas (sockets to draw links to) and for the wiring rules (types to check).
 * Reading is forgiving: a hand-edited or truncated `ui.comfy` gives fewer sockets, never an
 * error, because the node is already reported as unsupported and must stay visible.
 */

import { isJsonObject, type Json } from "./json";
import type { NodeRecord } from "./records";

export const PLACEHOLDER_PREFIX = "comfy:";

export interface PlaceholderSocket {
  /** The name links use: ComfyUI's input name, or the output index as a string. */
  readonly name: string;
  /** What the canvas shows: ComfyUI's input or output name. */
  readonly label: string;
  /** ComfyUI's type (e.g. "IMAGE", "UPSCALE_MODEL"); "*" when the file did not say. */
  readonly type: string;
}

export interface Placeholder {
  readonly classType: string;
  readonly inputs: readonly PlaceholderSocket[];
  readonly outputs: readonly PlaceholderSocket[];
}

export function isPlaceholderType(type: string): boolean {
  return type.startsWith(PLACEHOLDER_PREFIX);
}

const cache = new WeakMap<NodeRecord, Placeholder>();

/** The placeholder shape of a `comfy:` node, or undefined for any other node. */
export function placeholderOf(node: NodeRecord): Placeholder | undefined {
  if (!isPlaceholderType(node.type)) return undefined;
  const cached = cache.get(node);
  if (cached !== undefined) return cached;
  const comfy = node.extraUi?.["comfy"];
  const info = isJsonObject(comfy) ? comfy : {};
  const classType = typeof info["class_type"] === "string" && info["class_type"] !== "" ? info["class_type"] : node.type.slice(PLACEHOLDER_PREFIX.length);
  const placeholder: Placeholder = {
    classType,
    inputs: sockets(info["inputs"]).map((socket) => ({ name: socket.name, label: socket.name, type: socket.type })),
    outputs: sockets(info["outputs"]).map((socket, index) => ({ name: String(index), label: outputLabel(socket, index), type: socket.type })),
  };
  cache.set(node, placeholder);
  return placeholder;
}

/** An API file names outputs only by index; ComfyUI labels such an output with its type. */
function outputLabel(socket: { name: string; type: string }, index: number): string {
  return socket.name === String(index) && socket.type !== "*" ? socket.type : socket.name;
}

function sockets(value: Json | undefined): { name: string; type: string }[] {
  if (!Array.isArray(value)) return [];
  const list: readonly Json[] = value;
  return list.map((entry, index) => {
    const name = isJsonObject(entry) && typeof entry["name"] === "string" && entry["name"] !== "" ? entry["name"] : String(index);
    const type = isJsonObject(entry) && typeof entry["type"] === "string" && entry["type"] !== "" ? entry["type"] : "*";
    return { name, type };
  });
}
