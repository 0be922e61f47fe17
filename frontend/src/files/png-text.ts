/**
 * Reads the text chunks of a PNG (tEXt, and uncompressed iTXt), which is where saved images
 * carry their workflow. Only the chunk framing is parsed; image data is skipped, so even a
 * large PNG costs a walk over its chunk headers.
 *
 * Our images carry three chunks: `prompt` and `workflow` in ComfyUI's formats (so ComfyUI
 * opens them) and our own document under `latentloom`; images saved before that carry ours
 * under `workflow`. Reading prefers `latentloom`, then a `workflow` chunk that is ours (it has
 * `"schema": "latentloom/workflow"`); ComfyUI's own chunks are the server's to convert.
 */

import { parseJson } from "../model/json-text";

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

export class PngError extends Error {
  override name = "PngError";
}

export function readPngText(bytes: Uint8Array): Map<string, string> {
  if (bytes.length < 8 || SIGNATURE.some((value, index) => bytes[index] !== value)) {
    throw new PngError("not a PNG file (the 8-byte PNG signature is missing)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const texts = new Map<string, string>();
  let offset = 8;
  while (offset + 8 <= bytes.length) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    const start = offset + 8;
    const end = start + length;
    if (end + 4 > bytes.length) throw new PngError(`PNG chunk ${type} at byte ${offset} runs past the end of the file`);
    const data = bytes.subarray(start, end);
    if (type === "tEXt") readText(data, texts);
    else if (type === "iTXt") readInternationalText(data, texts);
    else if (type === "IEND") break;
    offset = end + 4; // skip the CRC
  }
  return texts;
}

function readText(data: Uint8Array, texts: Map<string, string>): void {
  const zero = data.indexOf(0);
  if (zero <= 0) return;
  // tEXt is Latin-1 by the spec; writers that put UTF-8 JSON in it are common, and JSON
  // survives a UTF-8 decode of Latin-1 ASCII, so decode as UTF-8.
  texts.set(latin1(data.subarray(0, zero)), new TextDecoder().decode(data.subarray(zero + 1)));
}

function readInternationalText(data: Uint8Array, texts: Map<string, string>): void {
  const zero = data.indexOf(0);
  if (zero <= 0) return;
  const compressed = data[zero + 1];
  if (compressed !== 0) return; // compressed iTXt would need inflate; our server never writes it
  let cursor = zero + 3;
  const languageEnd = data.indexOf(0, cursor);
  if (languageEnd < 0) return;
  const translatedEnd = data.indexOf(0, languageEnd + 1);
  if (translatedEnd < 0) return;
  cursor = translatedEnd + 1;
  texts.set(latin1(data.subarray(0, zero)), new TextDecoder().decode(data.subarray(cursor)));
}

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

/** The workflow JSON embedded in a PNG (ours first), parsed, or a PngError saying why there is none. */
export function workflowFromPng(bytes: Uint8Array): unknown {
  const texts = readPngText(bytes);
  const keyword = texts.has(OWN_KEYWORD) ? OWN_KEYWORD : "workflow";
  const text = texts.get(keyword);
  if (text === undefined) throw new PngError('this PNG carries no workflow (no "latentloom" or "workflow" text chunk)');
  return parseChunk(keyword, text);
}

export const OWN_KEYWORD = "latentloom";

/**
 * Our own document in a PNG, or undefined when it carries only other tools' chunks (then
 * the server's importer reads them). Throws PngError for a broken file or chunk.
 */
export function ownDocumentFromPng(bytes: Uint8Array): unknown {
  const texts = readPngText(bytes);
  const own = texts.get(OWN_KEYWORD);
  if (own !== undefined) return parseChunk(OWN_KEYWORD, own);
  const workflow = texts.get("workflow");
  if (workflow === undefined || !workflow.includes(SCHEMA_MARK)) return undefined;
  const document = parseChunk("workflow", workflow);
  return isOwnDocument(document) ? document : undefined;
}

/** Whether a parsed JSON value says it is a Latentloom workflow (any version). */
export function isOwnDocument(value: unknown): boolean {
  return typeof value === "object" && value !== null && (value as { schema?: unknown }).schema === "latentloom/workflow";
}

const SCHEMA_MARK = "latentloom/workflow";

function parseChunk(keyword: string, text: string): unknown {
  try {
    return parseJson(text);
  } catch (error) {
    throw new PngError(`the PNG's ${keyword} chunk is not valid JSON: ${String(error)}`);
  }
}
