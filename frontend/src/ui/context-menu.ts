/**
 * The right-click menus (canvas, node, link, group): a list of entries at a point of the
 * canvas, closed by choosing, by Escape, or by a press anywhere else. Plain DOM over the
 * canvas, like the search box, so tests and screen readers find real menu items. An entry
 * with `children` opens a submenu beside it (on hover, click, Enter or →). The keyboard
 * works throughout: ↑/↓ move, Enter/Space choose, → opens, ← or Escape goes back, and the
 * focused entry is outlined.
 */

import type { Vec2 } from "../model";
import { el } from "./dom";

export interface MenuEntry {
  readonly label: string;
  /** Shown as a tick: the state the entry toggles is on (e.g. the node is bypassed). */
  readonly checked?: boolean;
  /** The shortcut, shown on the right. */
  readonly hint?: string;
  readonly run?: () => void;
  /** A submenu, built when it opens. */
  readonly children?: () => readonly MenuEntry[];
  /** Shown greyed, with the reason as its tooltip; choosing it does nothing. */
  readonly disabled?: string;
  /** A small swatch before the label (colour menus). */
  readonly swatch?: string;
}

export type MenuKind = "node" | "canvas" | "link" | "group";

export class ContextMenu {
  private element: HTMLElement | undefined;
  private readonly onOutside = (event: Event): void => {
    if (this.element !== undefined && event.target instanceof Node && this.element.contains(event.target)) return;
    this.close();
  };
  private readonly onEscape = (event: KeyboardEvent): void => {
    if (event.key === "Escape") this.close();
  };

  constructor(private readonly host: HTMLElement) {}

  get open(): boolean {
    return this.element !== undefined;
  }

  show(at: Vec2, title: string, entries: readonly MenuEntry[], kind: MenuKind = "node"): void {
    this.close();
    const root = el("div", { className: "context-menu-root" });
    const list = this.list(title, entries, kind);
    root.append(list);
    root.style.left = `${at[0]}px`;
    root.style.top = `${at[1]}px`;
    this.host.append(root);
    // Keep the menu inside the canvas when opened near its right or bottom edge.
    const box = list.getBoundingClientRect();
    const bounds = this.host.getBoundingClientRect();
    if (box.right > bounds.right) root.style.left = `${Math.max(0, at[0] - box.width)}px`;
    if (box.bottom > bounds.bottom) root.style.top = `${Math.max(0, at[1] - box.height)}px`;
    this.element = root;
    addEventListener("pointerdown", this.onOutside, true);
    addEventListener("keydown", this.onEscape);
    items(list)[0]?.focus();
  }

  close(): void {
    const had = this.element !== undefined;
    this.element?.remove();
    this.element = undefined;
    removeEventListener("pointerdown", this.onOutside, true);
    removeEventListener("keydown", this.onEscape);
    if (had) this.host.focus();
  }

  private list(title: string | undefined, entries: readonly MenuEntry[], kind: MenuKind | undefined): HTMLElement {
    const list = el("ul", { className: kind === undefined ? "context-menu submenu" : "context-menu", data: kind === undefined ? {} : { menu: kind } });
    list.setAttribute("role", "menu");
    if (title !== undefined) list.append(el("li", { className: "context-menu-title", text: title }));
    for (const entry of entries) list.append(this.item(list, entry));
    list.addEventListener("keydown", (event) => this.onKey(list, event));
    return list;
  }

  private item(list: HTMLElement, entry: MenuEntry): HTMLElement {
    const classes = [entry.checked === true ? "checked" : "", entry.children === undefined ? "" : "has-children", entry.disabled === undefined ? "" : "disabled"];
    const item = el("li", { className: classes.filter((name) => name !== "").join(" "), data: { entry: entry.label } },
      el("span", {}, entry.swatch === undefined ? "" : swatch(entry.swatch), `${entry.checked === true ? "✓ " : ""}${entry.label}`),
      el("small", { text: entry.children !== undefined ? "▸" : (entry.hint ?? "") }),
    );
    item.setAttribute("role", "menuitem");
    item.tabIndex = -1;
    if (entry.disabled !== undefined) {
      item.setAttribute("aria-disabled", "true");
      item.title = entry.disabled;
    }
    if (entry.children !== undefined) item.setAttribute("aria-haspopup", "menu");
    const activate = (): void => {
      if (entry.disabled !== undefined) return;
      if (entry.children !== undefined) {
        this.openSubmenu(list, item, entry.children(), true);
        return;
      }
      this.close();
      entry.run?.();
    };
    item.addEventListener("click", (event) => {
      event.stopPropagation();
      activate();
    });
    item.addEventListener("pointerenter", () => {
      item.focus();
      if (entry.children !== undefined) this.openSubmenu(list, item, entry.children(), false);
      else closeSubmenus(list);
    });
    (item as HTMLElement & { activate?: () => void }).activate = activate;
    return item;
  }

  private openSubmenu(list: HTMLElement, item: HTMLElement, entries: readonly MenuEntry[], focus: boolean): void {
    if (item.querySelector(":scope > .submenu") !== null) {
      if (focus) items(item.querySelector(":scope > .submenu") as HTMLElement)[0]?.focus();
      return;
    }
    closeSubmenus(list);
    const submenu = this.list(undefined, entries, undefined);
    item.append(submenu);
    item.setAttribute("aria-expanded", "true");
    if (focus) items(submenu)[0]?.focus();
  }

  private onKey(list: HTMLElement, event: KeyboardEvent): void {
    // Keys typed into the menu are the menu's: none reach the editor's shortcuts.
    if (event.target instanceof HTMLElement && event.target.closest(".context-menu") !== list) return;
    event.stopPropagation();
    const entries = items(list);
    const current = entries.indexOf(document.activeElement as HTMLElement);
    const move = (step: number): void => {
      event.preventDefault();
      entries[(current + step + entries.length) % entries.length]?.focus();
    };
    switch (event.key) {
      case "ArrowDown":
        return move(1);
      case "ArrowUp":
        return move(-1);
      case "Enter":
      case " ":
      case "ArrowRight": {
        const item = entries[current] as (HTMLElement & { activate?: () => void }) | undefined;
        if (event.key === "ArrowRight" && item?.getAttribute("aria-haspopup") !== "menu") return;
        event.preventDefault();
        item?.activate?.();
        return;
      }
      case "ArrowLeft":
      case "Escape": {
        event.preventDefault();
        const parent = list.parentElement;
        if (list.classList.contains("submenu") && parent !== null) {
          list.remove();
          parent.removeAttribute("aria-expanded");
          parent.focus();
        } else if (event.key === "Escape") this.close();
        return;
      }
    }
  }
}

function items(list: HTMLElement): HTMLElement[] {
  return [...list.querySelectorAll<HTMLElement>(":scope > li[role=menuitem]")];
}

function closeSubmenus(list: HTMLElement): void {
  for (const open of list.querySelectorAll(":scope > li > .submenu")) {
    open.parentElement?.removeAttribute("aria-expanded");
    open.remove();
  }
}

function swatch(color: string): HTMLElement {
  const chip = el("i", { className: "swatch" });
  chip.style.background = color;
  return chip;
}
