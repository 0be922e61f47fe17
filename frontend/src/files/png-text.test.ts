import { describe, expect, it } from "vitest";
import { PngError, ownDocumentFromPng, readPngText, workflowFromPng } from "./png-text";

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
    expect(() => workflowFromPng(png())).toThrow('this PNG carries no workflow (no "latentloom" or "workflow" text chunk)');
  });

  it("prefers our own chunk and leaves ComfyUI's to the server", () => {
    const ours = { schema: "latentloom/workflow", version: 2, nodes: {} };
    const comfyEditor = { last_node_id: 1, nodes: [], links: [], version: 0.4 };
    const comfyPrompt = { "3": { class_type: "KSampler", inputs: {} } };
    const saved = png(
      chunk("tEXt", encode(`prompt\0${JSON.stringify(comfyPrompt)}`)),
      chunk("tEXt", encode(`workflow\0${JSON.stringify(comfyEditor)}`)),
      chunk("tEXt", encode(`latentloom\0${JSON.stringify(ours)}`)),
    );
    expect(ownDocumentFromPng(saved)).toEqual(ours);
    expect(workflowFromPng(saved)).toEqual(ours);
    // An image saved before the latentloom chunk existed: ours is in "workflow".
    expect(ownDocumentFromPng(png(chunk("tEXt", encode(`workflow\0${JSON.stringify(ours)}`))))).toEqual(ours);
    // A ComfyUI image: nothing of ours, so the caller sends the bytes to the server.
    const comfy = png(chunk("tEXt", encode(`prompt\0${JSON.stringify(comfyPrompt)}`)), chunk("tEXt", encode(`workflow\0${JSON.stringify(comfyEditor)}`)));
    expect(ownDocumentFromPng(comfy)).toBeUndefined();
    expect(() => ownDocumentFromPng(png(chunk("tEXt", encode("latentloom\0{oops"))))).toThrow("the PNG's latentloom chunk is not valid JSON");
  });

  it("reports a truncated chunk", () => {
    const file = png(chunk("tEXt", encode("workflow\0{}")));
    expect(() => readPngText(file.subarray(0, 20))).toThrow("PNG chunk tEXt at byte 8 runs past the end of the file");
  });
});
