/**
 * A small PNG codec for 8-bit RGBA, so the mask painter keeps the original RGB exactly.
 *
 * A 2D canvas stores premultiplied alpha: an image put into one with alpha 0 comes back out
 * with black RGB, and partly transparent pixels lose precision. The painter's file must keep
 * the original colours under the painted (alpha 0) pixels, as ComfyUI's masked uploads do,
 * so it encodes the PNG itself, and reads its own files back the same way. zlib comes from
 * the platform (`CompressionStream("deflate")` is zlib-wrapped deflate, what PNG's IDAT
 * holds), injected so the codec stays pure.
 *
 * Encoding writes filter type 1 (Sub) on every row: cheap and much smaller than none on
 * photos. Decoding handles 8-bit RGB and RGBA, non-interlaced, with all five filters, which
 * covers our own files and most others; anything else returns undefined and the caller
 * decodes through the browser (exact for opaque images, the usual input).
 */

export type Zlib = (bytes: Uint8Array) => Promise<Uint8Array>;

const SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array, crc = 0xffffffff): number {
  let c = crc;
  for (const byte of bytes) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return c;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let index = 0; index < 4; index += 1) out[4 + index] = type.charCodeAt(index);
  out.set(data, 8);
  view.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0);
  return out;
}

/** A PNG of `rgba` (width·height·4 bytes, straight alpha). */
export async function encodePngRgba(width: number, height: number, rgba: Uint8Array | Uint8ClampedArray, deflate: Zlib): Promise<Uint8Array> {
  if (rgba.length !== width * height * 4) throw new Error(`expected ${width}x${height}x4 = ${width * height * 4} bytes of RGBA, got ${rgba.length}`);
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA, deflate, adaptive filters, no interlace
  const stride = width * 4;
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y += 1) {
    const row = y * (stride + 1);
    raw[row] = 1; // Sub: each byte minus the same channel of the pixel to its left
    for (let x = 0; x < stride; x += 1) {
      const byte = rgba[y * stride + x] ?? 0;
      const left = x >= 4 ? (rgba[y * stride + x - 4] ?? 0) : 0;
      raw[row + 1 + x] = (byte - left) & 0xff;
    }
  }
  const parts = [SIGNATURE, chunk("IHDR", header), chunk("IDAT", await deflate(raw)), chunk("IEND", new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  /** Straight (not premultiplied) RGBA, width·height·4 bytes. */
  readonly rgba: Uint8Array;
}

/** 8-bit RGB or RGBA non-interlaced PNGs; undefined for any other PNG or non-PNG bytes. */
export async function decodePngRgba(bytes: Uint8Array, inflate: Zlib): Promise<DecodedImage | undefined> {
  if (bytes.length < 8 || SIGNATURE.some((value, index) => bytes[index] !== value)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0;
  let height = 0;
  let channels = 0;
  const data: Uint8Array[] = [];
  for (let offset = 8; offset + 12 <= bytes.length; ) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    const body = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      width = view.getUint32(offset + 8);
      height = view.getUint32(offset + 12);
      const [depth, colour, , , interlace] = body.subarray(8, 13);
      if (depth !== 8 || interlace !== 0 || (colour !== 2 && colour !== 6)) return undefined;
      channels = colour === 6 ? 4 : 3;
    } else if (type === "IDAT") data.push(body);
    else if (type === "tRNS") return undefined; // a transparent colour key: the browser applies it
    else if (type === "IEND") break;
    offset += 12 + length;
  }
  if (channels === 0 || data.length === 0) return undefined;
  const joined = new Uint8Array(data.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of data) {
    joined.set(part, at);
    at += part.length;
  }
  const raw = await inflate(joined);
  const stride = width * channels;
  if (raw.length < (stride + 1) * height) return undefined;
  const pixels = unfilter(raw, stride, height, channels);
  if (channels === 4) return { width, height, rgba: pixels };
  const rgba = new Uint8Array(width * height * 4);
  for (let index = 0; index < width * height; index += 1) {
    rgba.set(pixels.subarray(index * 3, index * 3 + 3), index * 4);
    rgba[index * 4 + 3] = 255;
  }
  return { width, height, rgba };
}

/** Undoes PNG's per-row filters (None, Sub, Up, Average, Paeth). */
function unfilter(raw: Uint8Array, stride: number, height: number, bpp: number): Uint8Array {
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y += 1) {
    const filter = raw[y * (stride + 1)];
    const source = y * (stride + 1) + 1;
    const row = y * stride;
    for (let x = 0; x < stride; x += 1) {
      const a = x >= bpp ? (out[row + x - bpp] ?? 0) : 0;
      const b = y > 0 ? (out[row - stride + x] ?? 0) : 0;
      const c = x >= bpp && y > 0 ? (out[row - stride + x - bpp] ?? 0) : 0;
      const byte = raw[source + x] ?? 0;
      let predicted = 0;
      if (filter === 1) predicted = a;
      else if (filter === 2) predicted = b;
      else if (filter === 3) predicted = (a + b) >> 1;
      else if (filter === 4) predicted = paeth(a, b, c);
      out[row + x] = (byte + predicted) & 0xff;
    }
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** The platform's zlib, through the Compression Streams API. */
export const platformDeflate: Zlib = (bytes) => throughStream(bytes, new CompressionStream("deflate"));
export const platformInflate: Zlib = (bytes) => throughStream(bytes, new DecompressionStream("deflate"));

async function throughStream(bytes: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const copy = new Uint8Array(bytes); // a plain ArrayBuffer-backed copy, whatever `bytes` views
  const response = new Response(new Blob([copy]).stream().pipeThrough(stream));
  return new Uint8Array(await response.arrayBuffer());
}
