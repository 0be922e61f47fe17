/**
 * The lightbox: one result large, with zoom (wheel, + / − / 1:1 buttons and keys), the
 * other images of its batch or history (← / →), "Open workflow" (the graph the PNG carries,
 * in a new tab) and "Compare" (a before/after slider against the previous image). Escape
 * closes it and focus returns to where it was. It is a modal dialog: focus stays inside.
 */

import { outputUrl, type ImageRef } from "../api/client";
import { workflowFromPng } from "../files/png-text";
import { CompareView } from "./compare";
import { el } from "./dom";

export interface LightboxHost {
  open(document: unknown, name: string): void;
  toast(text: string): void;
}

const ZOOM_STEP = 1.25;

export class Lightbox {
  readonly element = el("div", { className: "lightbox", data: { lightbox: "" } });
  private readonly image = el("img", { className: "lightbox-image" });
  private readonly stage = el("div", { className: "lightbox-stage" });
  private readonly caption = el("span", { className: "lightbox-caption" });
  private readonly compare = new CompareView();
  private readonly compareButton: HTMLButtonElement;
  private images: readonly ImageRef[] = [];
  private index = 0;
  private zoom = 1;
  private comparing = false;
  private returnFocus: Element | null = null;

  constructor(private readonly host: LightboxHost) {
    this.element.hidden = true;
    this.element.setAttribute("role", "dialog");
    this.element.setAttribute("aria-modal", "true");
    this.element.setAttribute("aria-label", "Result viewer");
    this.image.alt = "";
    const button = (text: string, title: string, action: string, run: () => void): HTMLButtonElement =>
      el("button", { text, title, data: { action }, onClick: run });
    this.compareButton = button("Compare", "Compare with the previous image (C)", "compare", () => this.toggleCompare());
    const bar = el(
      "div",
      { className: "lightbox-bar" },
      button("←", "Previous image (←)", "previous", () => this.step(-1)),
      button("→", "Next image (→)", "next", () => this.step(1)),
      this.caption,
      button("−", "Zoom out (−)", "zoom-out", () => this.setZoom(this.zoom / ZOOM_STEP)),
      button("1:1", "Actual size (0)", "zoom-reset", () => this.setZoom(1)),
      button("+", "Zoom in (+)", "zoom-in", () => this.setZoom(this.zoom * ZOOM_STEP)),
      this.compareButton,
      button("Open workflow", "Open the workflow that made this image in a new tab", "open-workflow", () => void this.openWorkflow()),
      button("×", "Close (Escape)", "close", () => this.close()),
    );
    this.stage.append(this.image, this.compare.element);
    this.element.append(bar, this.stage);
    this.stage.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.setZoom(this.zoom * (event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP));
    });
    this.element.addEventListener("keydown", (event) => this.key(event));
    this.element.addEventListener("click", (event) => {
      if (event.target === this.element) this.close();
    });
  }

  get isOpen(): boolean {
    return !this.element.hidden;
  }

  get zoomLevel(): number {
    return this.zoom;
  }

  show(images: readonly ImageRef[], index = 0, compareWith?: ImageRef): void {
    if (images.length === 0) return;
    this.returnFocus = document.activeElement;
    this.images = images;
    this.index = Math.max(0, Math.min(index, images.length - 1));
    this.zoom = 1;
    this.comparing = compareWith !== undefined;
    this.element.hidden = false;
    this.render(compareWith);
    (this.element.querySelector("[data-action=close]") as HTMLElement | null)?.focus();
  }

  close(): void {
    if (!this.isOpen) return;
    this.element.hidden = true;
    if (this.returnFocus instanceof HTMLElement) this.returnFocus.focus();
  }

  private current(): ImageRef | undefined {
    return this.images[this.index];
  }

  private step(delta: number): void {
    if (this.images.length < 2) return;
    this.index = (this.index + delta + this.images.length) % this.images.length;
    this.zoom = 1;
    this.render();
  }

  private setZoom(zoom: number): void {
    this.zoom = Math.max(0.1, Math.min(16, zoom));
    this.image.style.transform = `scale(${this.zoom})`;
  }

  private toggleCompare(): void {
    this.comparing = !this.comparing;
    this.render();
  }

  private render(compareWith?: ImageRef): void {
    const image = this.current();
    if (image === undefined) return;
    this.image.src = outputUrl(image);
    this.image.alt = image.filename;
    this.image.style.transform = `scale(${this.zoom})`;
    this.caption.textContent = `${image.filename} (${this.index + 1} of ${this.images.length})`;
    const other = compareWith ?? this.images[(this.index - 1 + this.images.length) % this.images.length];
    const canCompare = other !== undefined && other !== image;
    this.compareButton.disabled = !canCompare;
    const comparing = this.comparing && canCompare;
    this.compareButton.setAttribute("aria-pressed", String(comparing));
    this.image.hidden = comparing;
    this.compare.element.hidden = !comparing;
    if (comparing) this.compare.show(outputUrl(image), outputUrl(other));
  }

  private key(event: KeyboardEvent): void {
    const actions: Record<string, () => void> = {
      Escape: () => this.close(),
      ArrowLeft: () => this.step(-1),
      ArrowRight: () => this.step(1),
      "+": () => this.setZoom(this.zoom * ZOOM_STEP),
      "=": () => this.setZoom(this.zoom * ZOOM_STEP),
      "-": () => this.setZoom(this.zoom / ZOOM_STEP),
      "0": () => this.setZoom(1),
      c: () => this.toggleCompare(),
    };
    // The compare slider uses the arrow keys itself.
    if (event.target === this.compare.slider && event.key.startsWith("Arrow")) return;
    const action = actions[event.key];
    if (action === undefined) {
      if (event.key === "Tab") this.trapFocus(event);
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    action();
  }

  private trapFocus(event: KeyboardEvent): void {
    const focusable = [...this.element.querySelectorAll<HTMLElement>("button:not([disabled]), input")].filter((item) => !item.closest("[hidden]"));
    const first = focusable[0];
    const last = focusable.at(-1);
    if (first === undefined || last === undefined) return;
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }

  private async openWorkflow(): Promise<void> {
    const image = this.current();
    if (image === undefined) return;
    try {
      const response = await fetch(outputUrl(image));
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const document = workflowFromPng(new Uint8Array(await response.arrayBuffer()));
      this.close();
      this.host.open(document, image.filename.replace(/\.png$/i, ""));
    } catch (error) {
      this.host.toast(`could not open the workflow of ${image.filename}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
