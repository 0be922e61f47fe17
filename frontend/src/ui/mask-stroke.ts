/**
 * The mask painter's pixels, without a DOM: a brush stamp's alpha, strokes rasterised into a
 * mask, and the conversions between a mask and an image's alpha channel.
 *
 * A mask is one byte per image pixel (0 = keep, 255 = change this), at the image's own
 * resolution, so what is painted is exactly what is saved. A stamp of diameter `size` and
 * `hardness` h is fully opaque out to h·radius and falls to 0 at the radius along a
 * smoothstep (soft brushes have no visible ring); distances are measured from pixel
 * centres. Painting keeps the maximum of mask and stamp (erasing the minimum of mask and
 * 1 − stamp), so overlapping stamps along a stroke never build up darker than one stamp:
 * a stroke looks the same however fast the pointer moved.
 *
 * Saved images follow ComfyUI's convention: Load Image's MASK is 1 − alpha, so a painted
 * pixel has alpha 0 and the RGB of the original underneath it.
 */

export interface MaskBuffer {
  readonly width: number;
  readonly height: number;
  /** Row-major, one byte per pixel: 0 keep, 255 change. */
  readonly data: Uint8ClampedArray;
}

export type BrushMode = "paint" | "erase";

export interface Brush {
  /** Diameter in image pixels. */
  readonly size: number;
  /** 0 (all falloff) .. 1 (a hard disc). */
  readonly hardness: number;
  readonly mode: BrushMode;
}

/** A pixel rectangle [x, y, width, height] that a change touched (empty: width 0). */
export type PixelRect = readonly [number, number, number, number];

export const EMPTY_RECT: PixelRect = [0, 0, 0, 0];

export function createMask(width: number, height: number): MaskBuffer {
  return { width, height, data: new Uint8ClampedArray(width * height) };
}

/** The stamp's opacity (0..1) at `distance` pixels from its centre. */
export function stampAlpha(distance: number, size: number, hardness: number): number {
  const radius = size / 2;
  if (distance >= radius) return 0;
  const solid = radius * Math.min(1, Math.max(0, hardness));
  if (distance <= solid) return 1;
  const t = (radius - distance) / (radius - solid);
  return t * t * (3 - 2 * t);
}

/** One stamp centred at (cx, cy) in image pixels; returns the rectangle it touched. */
export function paintStamp(mask: MaskBuffer, cx: number, cy: number, brush: Brush): PixelRect {
  const radius = brush.size / 2;
  const left = Math.max(0, Math.floor(cx - radius));
  const top = Math.max(0, Math.floor(cy - radius));
  const right = Math.min(mask.width, Math.ceil(cx + radius));
  const bottom = Math.min(mask.height, Math.ceil(cy + radius));
  if (right <= left || bottom <= top) return EMPTY_RECT;
  const data = mask.data;
  for (let y = top; y < bottom; y += 1) {
    const dy = y + 0.5 - cy;
    for (let x = left; x < right; x += 1) {
      const alpha = stampAlpha(Math.hypot(x + 0.5 - cx, dy), brush.size, brush.hardness);
      if (alpha === 0) continue;
      const index = y * mask.width + x;
      const value = Math.round(alpha * 255);
      const current = data[index] ?? 0;
      data[index] = brush.mode === "paint" ? Math.max(current, value) : Math.min(current, 255 - value);
    }
  }
  return [left, top, right - left, bottom - top];
}

/**
 * Stamps from `from` to `to` (image pixels) a quarter radius apart, `to` included and
 * `from` not (the previous segment stamped it), so a continuous stroke has no gaps.
 */
export function paintSegment(mask: MaskBuffer, from: readonly [number, number], to: readonly [number, number], brush: Brush): PixelRect {
  const length = Math.hypot(to[0] - from[0], to[1] - from[1]);
  const spacing = Math.max(0.5, brush.size / 8);
  const count = Math.max(1, Math.ceil(length / spacing));
  let touched = EMPTY_RECT;
  for (let step = 1; step <= count; step += 1) {
    const t = step / count;
    touched = unionRect(touched, paintStamp(mask, from[0] + (to[0] - from[0]) * t, from[1] + (to[1] - from[1]) * t, brush));
  }
  return touched;
}

export function unionRect(a: PixelRect, b: PixelRect): PixelRect {
  if (a[2] === 0 || a[3] === 0) return b;
  if (b[2] === 0 || b[3] === 0) return a;
  const left = Math.min(a[0], b[0]);
  const top = Math.min(a[1], b[1]);
  const right = Math.max(a[0] + a[2], b[0] + b[2]);
  const bottom = Math.max(a[1] + a[3], b[1] + b[3]);
  return [left, top, right - left, bottom - top];
}

export function invertMask(mask: MaskBuffer): void {
  const data = mask.data;
  for (let index = 0; index < data.length; index += 1) data[index] = 255 - (data[index] ?? 0);
}

export function clearMask(mask: MaskBuffer): void {
  mask.data.fill(0);
}

/** The mask an RGBA image carries: 255 − alpha (ComfyUI's Load Image reads it as 1 − alpha). */
export function maskFromRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): MaskBuffer {
  const mask = createMask(width, height);
  for (let index = 0; index < width * height; index += 1) mask.data[index] = 255 - (rgba[index * 4 + 3] ?? 255);
  return mask;
}

/** The image to save: the source's RGB untouched, alpha 255 − mask. */
export function rgbaWithMask(rgba: Uint8Array | Uint8ClampedArray, mask: MaskBuffer): Uint8Array {
  const out = new Uint8Array(rgba);
  for (let index = 0; index < mask.width * mask.height; index += 1) out[index * 4 + 3] = 255 - (mask.data[index] ?? 0);
  return out;
}

/** The source with every pixel opaque: what the painter shows under the mask overlay. */
export function opaque(rgba: Uint8Array | Uint8ClampedArray): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(rgba);
  for (let index = 3; index < out.length; index += 4) out[index] = 255;
  return out;
}

/**
 * The overlay's pixels for `rect` of the mask: `color` (r, g, b) with the mask scaled to
 * `opacity` as alpha, row-major over the rectangle (what `new ImageData` takes).
 */
export function overlayPixels(mask: MaskBuffer, rect: PixelRect, color: readonly [number, number, number], opacity: number): Uint8ClampedArray<ArrayBuffer> {
  const [left, top, width, height] = rect;
  const out = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const value = mask.data[(top + y) * mask.width + left + x] ?? 0;
      const at = (y * width + x) * 4;
      out[at] = color[0];
      out[at + 1] = color[1];
      out[at + 2] = color[2];
      out[at + 3] = Math.round(value * opacity);
    }
  }
  return out;
}

/** Whether anything is painted (a mask of all zeros changes nothing). */
export function isEmptyMask(mask: MaskBuffer): boolean {
  return mask.data.every((value) => value === 0);
}
