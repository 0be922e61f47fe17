import { describe, expect, it } from "vitest";
import { PngError, readPngText, workflowFromPng } from "./png-text";

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  new DataView(out.buffer).setUint32(0, data.length);
  out.set([...type].map((c) => c.charCodeAt(0)), 4);
  out.set(data, 8);
  return out; // CRC left zero: the reader does not check it
}

function png(...chunks: Uint8Array[]): Uint8Array {
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), ...chunks, chunk("IEND", new Uint8Array())];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

describe("PNG text chunks", () => {
  it("reads tEXt and uncompressed iTXt", () => {
    const file = png(
      chunk("IHDR", new Uint8Array(13)),
      chunk("tEXt", encode("workflow\0{\"a\": \"é\"}")),
      chunk("iTXt", encode("note\0\0\0en\0Note\0héllo")),
    );
    const texts = readPngText(file);
    expect(texts.get("workflow")).toBe('{"a": "é"}');
    expect(texts.get("note")).toBe("héllo");
    expect(workflowFromPng(file)).toEqual({ a: "é" });
  });

  it("refuses files that are not PNGs or carry no workflow", () => {
    expect(() => readPngText(encode("GIF89a..."))).toThrow("not a PNG file (the 8-byte PNG signature is missing)");
    expect(() => workflowFromPng(png())).toThrow(PngError);
    expect(() => workflowFromPng(png())).toThrow('this PNG carries no workflow (no "workflow" text chunk)');
  });

  it("reports a truncated chunk", () => {
    const file = png(chunk("tEXt", encode("workflow\0{}")));
    expect(() => readPngText(file.subarray(0, 20))).toThrow("PNG chunk tEXt at byte 8 runs past the end of the file");
  });
});
