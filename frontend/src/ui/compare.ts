/**
 * Before/after compare: two images stacked, the top one clipped at a slider's position, so
 * dragging the slider (or pressing the arrow keys on it) wipes from one result to the other.
 * The slider is a plain range input: keyboard-reachable and labelled for screen readers.
 */

import { el } from "./dom";

export class CompareView {
  readonly element = el("div", { className: "compare", data: { compare: "" } });
  readonly before = el("img", { className: "compare-before" });
  readonly after = el("img", { className: "compare-after" });
  readonly slider = el("input", { className: "compare-slider", title: "Drag to compare" });

  constructor() {
    this.slider.type = "range";
    this.slider.min = "0";
    this.slider.max = "100";
    this.slider.value = "50";
    this.slider.setAttribute("aria-label", "Compare position (percent of the first image shown)");
    this.slider.addEventListener("input", () => this.apply());
    this.before.alt = "first result";
    this.after.alt = "second result";
    this.element.append(el("div", { className: "compare-stack" }, this.after, this.before), this.slider);
    this.apply();
  }

  show(beforeUrl: string, afterUrl: string): void {
    this.before.src = beforeUrl;
    this.after.src = afterUrl;
    this.apply();
  }

  /** The percentage of the first image that shows (0..100). */
  get position(): number {
    return Number(this.slider.value);
  }

  set position(value: number) {
    this.slider.value = String(Math.max(0, Math.min(100, value)));
    this.apply();
  }

  private apply(): void {
    // Clip the first image from the right: at 100 it covers the second entirely.
    this.before.style.clipPath = `inset(0 ${100 - this.position}% 0 0)`;
  }
}
