/**
 * JSON merge patch (RFC 7386): an object patch sets its keys recursively, `null` deletes a
 * key, anything else (arrays included) replaces the target wholesale. This is the wire
 * format of workflow sync, so the server can apply a patch with no knowledge of the editor.
 */

import { isJsonObject, jsonEqual, type Json, type JsonObject } from "../model";

export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isJsonObject(patch)) return patch;
  const base: Record<string, Json> = isJsonObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete base[key];
    else base[key] = applyMergePatch(base[key], value);
  }
  return base;
}

/** Whether a patch changes nothing (an empty object at every level). */
export function isEmptyPatch(patch: JsonObject): boolean {
  return Object.keys(patch).length === 0;
}

/**
 * The smallest merge patch turning `before` into `after`: keys that disappeared become
 * `null`, changed objects recurse, anything else is replaced. `applyMergePatch(before,
 * createMergePatch(before, after))` equals `after` as long as `after` holds no nulls inside
 * objects (workflow documents never do).
 */
export function createMergePatch(before: Json | undefined, after: Json): Json {
  if (!isJsonObject(before) || !isJsonObject(after)) return after;
  const patch: Record<string, Json> = {};
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    const old = before[key];
    if (old !== undefined && jsonEqual(old, value)) continue;
    patch[key] = createMergePatch(old, value);
  }
  return patch;
}
