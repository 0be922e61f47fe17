/**
 * A small in-page menu (the node's right-click menu): a list of entries at a point of the
 * canvas, closed by choosing, by Escape, or by a press anywhere else. It is plain DOM over
 * the canvas, like the search box, so tests and screen readers find real buttons.
 */

import type { Vec2 } from "../model";
import { el } from "./dom";

export interface MenuEntry {
  readonly label: string;
  /** Shown as a tick: the state the entry toggles is on (e.g. the node is bypassed). */
  readonly checked?: boolean;
  /** The shortcut, shown on the right. */
  readonly hint?: string;
  readonly run: () => void;
}

export class ContextMenu {
  private element: HTMLElement | undefined;
  private readonly onOutside = (event: Event): void => {
    if (this.element !== undefined && event.target instanceof Node && this.element.contains(event.target)) return;
    this.close();
  };
  private readonly onKey = (event: KeyboardEvent): void => {
    if (event.key === "Escape") this.close();
  };

  constructor(private readonly host: HTMLElement) {}

  get open(): boolean {
    return this.element !== undefined;
  }

  show(at: Vec2, title: string, entries: readonly MenuEntry[]): void {
    this.close();
    const list = el("ul", { className: "context-menu", data: { menu: "node" } });
    list.setAttribute("role", "menu");
    list.append(el("li", { className: "context-menu-title", text: title }));
    for (const entry of entries) {
      const item = el("li", {
        className: entry.checked === true ? "checked" : "",
        data: { entry: entry.label },
        onClick: () => {
          this.close();
          entry.run();
        },
      },
        el("span", { text: `${entry.checked === true ? "✓ " : ""}${entry.label}` }),
        el("small", { text: entry.hint ?? "" }),
      );
      item.setAttribute("role", "menuitem");
      list.append(item);
    }
    list.style.left = `${at[0]}px`;
    list.style.top = `${at[1]}px`;
    this.host.append(list);
    // Keep the menu inside the canvas when opened near its right or bottom edge.
    const box = list.getBoundingClientRect();
    const bounds = this.host.getBoundingClientRect();
    if (box.right > bounds.right) list.style.left = `${Math.max(0, at[0] - box.width)}px`;
    if (box.bottom > bounds.bottom) list.style.top = `${Math.max(0, at[1] - box.height)}px`;
    this.element = list;
    addEventListener("pointerdown", this.onOutside, true);
    addEventListener("keydown", this.onKey);
  }

  close(): void {
    this.element?.remove();
    this.element = undefined;
    removeEventListener("pointerdown", this.onOutside, true);
    removeEventListener("keydown", this.onKey);
  }
}
