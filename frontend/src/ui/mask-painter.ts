/**
 * The mask painter: an in-page overlay over the editor that paints a mask onto a Load Image
 * node's image and saves it as a new upload (the original file is never changed).
 *
 * Pixels live at the image's own resolution (mask-stroke.ts does the rasterising), so the
 * two picture canvases have the image's size and are only scaled by CSS to fit the window;
 * what is painted is what is saved, whatever the zoom or the screen's pixel ratio. The brush
 * outline is drawn on a third canvas sized in device pixels, so it stays crisp on HiDPI
 * screens. Input is pointer events only (mouse, pen and touch alike), with coalesced events
 * for smooth fast strokes; the overlay redraws once per animation frame, and only the
 * rectangle the strokes touched.
 *
 * The saved PNG keeps the original RGB and carries the mask as alpha (0 where painted), so
 * Load Image's MASK (1 − alpha) is 1 where the user painted, ComfyUI's convention. Reopening
 * the painter on such a file reads its alpha back as the mask. Files are read and written
 * with png-image.ts's codec, not a canvas, which would lose the RGB under alpha 0.
 */

import { decodePngRgba, encodePngRgba, platformDeflate, platformInflate, type DecodedImage } from "../files/png-image";
import { el } from "./dom";
import {
  EMPTY_RECT,
  clearMask,
  invertMask,
  maskFromRgba,
  opaque,
  overlayPixels,
  paintSegment,
  paintStamp,
  rgbaWithMask,
  unionRect,
  type BrushMode,
  type MaskBuffer,
  type PixelRect,
} from "./mask-stroke";

/** What the painted area is tinted with on screen (not saved). */
const OVERLAY_COLOR: readonly [number, number, number] = [255, 64, 96];
const OVERLAY_OPACITY = 0.6;

export interface MaskPainterOptions {
  /** The input image's name (what the node's widget holds) and its bytes. */
  readonly name: string;
  readonly bytes: Uint8Array;
  /** Stores the masked PNG; resolves with the name the server gave it. */
  readonly upload: (png: Blob, filename: string) => Promise<string>;
  /** Called with the new file's name after a successful save; the painter then closes. */
  readonly onSaved: (name: string) => void;
  readonly onError: (message: string) => void;
}

/** The name to upload the masked copy under: "cat.jpg" → "cat-mask.png", and never "cat-mask-mask.png". */
export function maskedName(name: string): string {
  const base = name.slice(name.lastIndexOf("/") + 1).replace(/\.[^.]+$/, "");
  const stem = base.replace(/-mask( \(\d+\))?$/, "") || "image";
  return `${stem}-mask.png`;
}

/** Pixels of any image the browser decodes; PNGs our codec reads keep exact RGB under alpha 0. */
export async function decodeImage(bytes: Uint8Array): Promise<DecodedImage> {
  const exact = await decodePngRgba(bytes, platformInflate).catch(() => undefined);
  if (exact !== undefined) return exact;
  const bitmap = await createImageBitmap(new Blob([new Uint8Array(bytes)]), { premultiplyAlpha: "none", colorSpaceConversion: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d");
  if (context === null) throw new Error("this browser gives no 2D canvas context");
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  return { width: canvas.width, height: canvas.height, rgba: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export class MaskPainter {
  readonly element: HTMLElement;
  private readonly image: DecodedImage;
  readonly mask: MaskBuffer;
  private readonly picture: HTMLCanvasElement;
  private readonly overlay: HTMLCanvasElement;
  private readonly cursor: HTMLCanvasElement;
  private readonly stage: HTMLElement;
  private tool: BrushMode = "paint";
  private size: number;
  private hardness = 0.7;
  private stroke: { pointer: number; last: [number, number]; mode: BrushMode } | undefined;
  private dirty: PixelRect = EMPTY_RECT;
  private frame = 0;
  private saving = false;
  private readonly toolButtons = new Map<BrushMode, HTMLButtonElement>();
  private readonly onKey = (event: KeyboardEvent): void => this.key(event);
  private readonly onResize = (): void => this.fit();

  private constructor(
    image: DecodedImage,
    private readonly options: MaskPainterOptions,
  ) {
    this.image = image;
    this.mask = maskFromRgba(image.rgba, image.width, image.height);
    this.size = Math.max(4, Math.round(Math.min(image.width, image.height) / 12));
    this.picture = canvasOf(image.width, image.height, "mask-painter-picture");
    this.overlay = canvasOf(image.width, image.height, "mask-painter-mask");
    this.cursor = el("canvas", { className: "mask-painter-cursor" });
    this.stage = el("div", { className: "mask-painter-stage" }, this.picture, this.overlay, this.cursor);
    this.element = el("div", { className: "mask-painter", data: { painter: options.name } }, this.toolbar(), this.stage);
    this.element.setAttribute("role", "dialog");
    this.element.setAttribute("aria-label", `Edit mask of ${options.name}`);
    this.context(this.picture).putImageData(new ImageData(opaque(image.rgba), image.width, image.height), 0, 0);
    this.redraw([0, 0, image.width, image.height]);
    this.listen();
  }

  /** Decodes the image and shows the painter over `host`. */
  static async open(host: HTMLElement, options: MaskPainterOptions): Promise<MaskPainter> {
    const painter = new MaskPainter(await decodeImage(options.bytes), options);
    host.append(painter.element);
    addEventListener("keydown", painter.onKey, true);
    addEventListener("resize", painter.onResize);
    painter.fit();
    return painter;
  }

  close(): void {
    cancelAnimationFrame(this.frame);
    removeEventListener("keydown", this.onKey, true);
    removeEventListener("resize", this.onResize);
    this.element.remove();
  }

  /** Uploads the image with the mask as its alpha and reports the new name. */
  async save(): Promise<void> {
    if (this.saving) return;
    this.saving = true;
    try {
      const { width, height } = this.image;
      const png = await encodePngRgba(width, height, rgbaWithMask(this.image.rgba, this.mask), platformDeflate);
      const name = await this.options.upload(new Blob([new Uint8Array(png)], { type: "image/png" }), maskedName(this.options.name));
      this.close();
      this.options.onSaved(name);
    } catch (error) {
      this.options.onError(error instanceof Error ? error.message : String(error));
    } finally {
      this.saving = false;
    }
  }

  private toolbar(): HTMLElement {
    const tool = (mode: BrushMode, label: string, hint: string): HTMLButtonElement => {
      const button = el("button", { text: label, title: hint, data: { tool: mode }, onClick: () => this.setTool(mode) });
      this.toolButtons.set(mode, button);
      return button;
    };
    const slider = (name: string, label: string, min: number, max: number, step: number, value: number, set: (value: number) => void): HTMLElement => {
      const input = el("input", { data: { control: name } });
      input.type = "range";
      input.min = String(min);
      input.max = String(max);
      input.step = String(step);
      input.value = String(value);
      const readout = el("span", { className: "mask-painter-readout", text: String(value) });
      input.addEventListener("input", () => {
        set(Number(input.value));
        readout.textContent = input.value;
      });
      return el("label", { className: "mask-painter-slider", text: `${label} ` }, input, readout);
    };
    const bar = el("div", { className: "mask-painter-toolbar" },
      el("strong", { text: `Mask: ${this.options.name}` }),
      tool("paint", "Brush", "Paint the area to change (B)"),
      tool("erase", "Eraser", "Erase (E; or paint with the right button)"),
      slider("size", "size", 1, Math.max(8, Math.min(512, Math.max(this.image.width, this.image.height))), 1, this.size, (value) => {
        this.size = value;
      }),
      slider("hardness", "hardness", 0, 1, 0.05, this.hardness, (value) => {
        this.hardness = value;
      }),
      el("button", { text: "Clear", data: { action: "clear" }, onClick: () => this.whole(clearMask) }),
      el("button", { text: "Invert", data: { action: "invert" }, onClick: () => this.whole(invertMask) }),
      el("span", { className: "spacer" }),
      el("button", { text: "Cancel", title: "Close without saving (Esc)", data: { action: "cancel" }, onClick: () => this.close() }),
      el("button", { className: "primary", text: "Save", title: "Save as a new input image (Ctrl+Enter)", data: { action: "save" }, onClick: () => void this.save() }),
    );
    this.setTool("paint");
    return bar;
  }

  private setTool(mode: BrushMode): void {
    this.tool = mode;
    for (const [name, button] of this.toolButtons) button.classList.toggle("active", name === mode);
  }

  private whole(change: (mask: MaskBuffer) => void): void {
    change(this.mask);
    this.redraw([0, 0, this.mask.width, this.mask.height]);
  }

  private key(event: KeyboardEvent): void {
    // The painter is modal: the editor's shortcuts (delete, undo...) must not reach the graph.
    event.stopPropagation();
    if (event.key === "Escape") this.close();
    else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) void this.save();
    else if (event.target instanceof HTMLInputElement) return;
    else if (event.key === "b" || event.key === "B") this.setTool("paint");
    else if (event.key === "e" || event.key === "E") this.setTool("erase");
  }

  private listen(): void {
    const target = this.overlay;
    target.addEventListener("contextmenu", (event) => event.preventDefault());
    target.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 && event.button !== 2) return;
      event.preventDefault();
      target.setPointerCapture(event.pointerId);
      const point = this.toImage(event);
      const mode = event.button === 2 ? "erase" : this.tool;
      this.stroke = { pointer: event.pointerId, last: point, mode };
      this.touch(paintStamp(this.mask, point[0], point[1], this.brush(mode)));
    });
    target.addEventListener("pointermove", (event) => {
      this.drawCursor(event);
      const stroke = this.stroke;
      if (stroke === undefined || stroke.pointer !== event.pointerId) return;
      for (const sample of event.getCoalescedEvents?.() ?? [event]) {
        const point = this.toImage(sample);
        this.touch(paintSegment(this.mask, stroke.last, point, this.brush(stroke.mode)));
        stroke.last = point;
      }
    });
    const end = (event: PointerEvent): void => {
      if (this.stroke?.pointer === event.pointerId) this.stroke = undefined;
    };
    target.addEventListener("pointerup", end);
    target.addEventListener("pointercancel", end);
    target.addEventListener("pointerleave", () => this.context(this.cursor).clearRect(0, 0, this.cursor.width, this.cursor.height));
  }

  private brush(mode: BrushMode): { size: number; hardness: number; mode: BrushMode } {
    return { size: this.size, hardness: this.hardness, mode };
  }

  /** A pointer's position in image pixels (the canvases are CSS-scaled copies of the image). */
  private toImage(event: PointerEvent): [number, number] {
    const box = this.overlay.getBoundingClientRect();
    return [((event.clientX - box.left) * this.image.width) / box.width, ((event.clientY - box.top) * this.image.height) / box.height];
  }

  private touch(rect: PixelRect): void {
    this.dirty = unionRect(this.dirty, rect);
    if (this.frame === 0) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        const dirty = this.dirty;
        this.dirty = EMPTY_RECT;
        this.redraw(dirty);
      });
    }
  }

  private redraw(rect: PixelRect): void {
    const [x, y, width, height] = rect;
    if (width === 0 || height === 0) return;
    this.context(this.overlay).putImageData(new ImageData(overlayPixels(this.mask, rect, OVERLAY_COLOR, OVERLAY_OPACITY), width, height), x, y);
  }

  /** Scales the picture to fit the stage (small images grow, up to 4x) and sizes the cursor layer in device pixels. */
  private fit(): void {
    const box = this.stage.getBoundingClientRect();
    const scale = Math.min(4, (box.width - 16) / this.image.width, (box.height - 16) / this.image.height);
    const width = Math.max(1, Math.floor(this.image.width * scale));
    const height = Math.max(1, Math.floor(this.image.height * scale));
    const ratio = devicePixelRatio || 1;
    for (const canvas of [this.picture, this.overlay, this.cursor]) {
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
    }
    this.cursor.width = Math.round(width * ratio);
    this.cursor.height = Math.round(height * ratio);
  }

  private drawCursor(event: PointerEvent): void {
    const context = this.context(this.cursor);
    const box = this.cursor.getBoundingClientRect();
    const ratio = this.cursor.width / Math.max(1, box.width);
    const scale = box.width / this.image.width; // CSS pixels per image pixel
    context.clearRect(0, 0, this.cursor.width, this.cursor.height);
    context.beginPath();
    context.arc((event.clientX - box.left) * ratio, (event.clientY - box.top) * ratio, Math.max(1, (this.size / 2) * scale * ratio), 0, Math.PI * 2);
    context.lineWidth = ratio;
    context.strokeStyle = this.tool === "erase" ? "#fff" : "#ff4060";
    context.stroke();
  }

  private context(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
    const context = canvas.getContext("2d");
    if (context === null) throw new Error("this browser gives no 2D canvas context");
    return context;
  }
}

function canvasOf(width: number, height: number, className: string): HTMLCanvasElement {
  const canvas = el("canvas", { className });
  canvas.width = width;
  canvas.height = height;
  return canvas;
}
