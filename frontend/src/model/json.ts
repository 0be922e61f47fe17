/**
 * JSON values as `parseJson` (json-text.ts) produces them, typed readonly so records can hold
 * them: integers beyond ±2^53 (64-bit seeds) are bigints, so they are never rounded.
 *
 * The workflow format keeps editor state it does not interpret (unknown `ui` keys, `meta`,
 * group fields) verbatim; these helpers let the model carry such values without `any`.
 */

import { stringifyJson } from "./json-text";

export type Json = null | boolean | number | bigint | string | readonly Json[] | JsonObject;

export interface JsonObject {
  readonly [key: string]: Json;
}

/** A plain JSON object (not an array, not null). */
export function isPlainObject(value: unknown): value is { readonly [key: string]: unknown } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Narrows an unknown parsed value to Json, rejecting what JSON cannot hold (functions, NaN...). */
export function isJson(value: unknown): value is Json {
  if (value === null || typeof value === "boolean" || typeof value === "string" || typeof value === "bigint") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJson);
  if (isPlainObject(value)) return Object.values(value).every(isJson);
  return false;
}

/** Structural equality of JSON values; object key order does not matter (as in the format). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, index) => jsonEqual(item, b[index]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]));
  }
  return false;
}

/** A short, readable rendering of a value for error messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = stringifyJson(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Narrows an already-validated JSON value to an object. */
export function isJsonObject(value: Json | undefined): value is JsonObject {
  return isPlainObject(value);
}
