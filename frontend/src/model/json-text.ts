/**
 * JSON text to values and back, keeping integers exact.
 *
 * `JSON.parse` reads the 64-bit seed 18446744073709551615 as 18446744073709552000: every
 * integer beyond ±2^53 is silently rounded. Here such an integer literal becomes a `bigint`,
 * and a `bigint` is written back as its digits, so seeds survive the editor end to end
 * (server → store → widgets → server). Integers within ±2^53 stay plain numbers.
 *
 * The native parser does the work. Text without an integer literal of 16 digits or more cannot
 * hold an unsafe integer and is parsed as is; otherwise one regular-expression pass (strings first, so
 * digits inside strings are left alone) wraps each unsafe integer literal in a string carrying
 * a tag made unique per call, and the reviver turns tagged strings into bigints.
 */

// An integer literal of 16+ digits (not the fraction or exponent of a float).
const LONG_INTEGER = /(?<![\d.])\d{16,}(?![\d.eE])/;
const TOKENS = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
const INTEGER = /^-?\d+$/;

function uniqueTag(): string {
  return `\u0000int${Math.random().toString(36).slice(2)}:`;
}

function isUnsafeInteger(token: string): boolean {
  return INTEGER.test(token) && !Number.isSafeInteger(Number(token));
}

/** `JSON.parse`, except that integers beyond ±2^53 come back exact, as bigints. */
export function parseJson(text: string): unknown {
  if (!LONG_INTEGER.test(text)) return JSON.parse(text) as unknown;
  const tag = uniqueTag();
  const tagged = text.replace(TOKENS, (token) => (isUnsafeInteger(token) ? JSON.stringify(tag + token) : token));
  return JSON.parse(tagged, (_key, value: unknown) =>
    typeof value === "string" && value.startsWith(tag) ? BigInt(value.slice(tag.length)) : value,
  ) as unknown;
}

/** `JSON.stringify`, except that bigints are written as their digits (never rounded). */
export function stringifyJson(value: unknown, indent?: number): string {
  const tag = uniqueTag();
  let tagged = false;
  const text = JSON.stringify(
    value,
    (_key, item: unknown) => {
      if (typeof item !== "bigint") return item;
      tagged = true;
      return tag + item.toString();
    },
    indent,
  );
  if (!tagged) return text;
  const quoted = JSON.stringify(tag).slice(1, -1).replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
  return text.replace(new RegExp(`"${quoted}(-?\\d+)"`, "g"), "$1");
}

/** An integer as a number when that is exact, else as a bigint. */
export function exactInteger(value: bigint): number | bigint {
  return value >= -BigInt(Number.MAX_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}
