/**
 * The library: one side panel with three tabs (Models, Workflows, Nodes), each a module of
 * its own. The tabs follow the ARIA tabs pattern: arrow keys move between them, Tab enters
 * the shown list, and every control shows its focus. A tab's list loads when first shown
 * and on "Refresh".
 */

import { el } from "./dom";

export interface LibraryTab {
  readonly id: string;
  readonly label: string;
  readonly element: HTMLElement;
  refresh(): Promise<void>;
}

export class LibraryPanel {
  readonly element = el("section", { className: "panel library", data: { panel: "library" } });
  private readonly tablist = el("div", { className: "library-tabs" });
  private readonly body = el("div", { className: "library-body" });
  private readonly loaded = new Set<string>();
  private active: LibraryTab | undefined;

  constructor(private readonly tabs: readonly LibraryTab[]) {
    this.tablist.setAttribute("role", "tablist");
    this.tablist.setAttribute("aria-label", "Library");
    for (const tab of tabs) {
      const button = el("button", { className: "library-tab", text: tab.label, data: { libraryTab: tab.id }, onClick: () => this.show(tab.id) });
      button.setAttribute("role", "tab");
      button.id = `library-tab-${tab.id}`;
      button.addEventListener("keydown", (event) => this.arrow(event, tab.id));
      this.tablist.append(button);
      tab.element.setAttribute("role", "tabpanel");
      tab.element.setAttribute("aria-labelledby", button.id);
    }
    const refresh = el("button", { text: "Refresh", title: "Reload the shown list", onClick: () => void this.active?.refresh() });
    this.element.append(el("header", {}, el("h2", { text: "Library" }), refresh), this.tablist, this.body);
    const first = tabs[0];
    if (first !== undefined) this.show(first.id);
  }

  show(id: string): void {
    const tab = this.tabs.find((candidate) => candidate.id === id);
    if (tab === undefined) return;
    this.active = tab;
    for (const button of this.tablist.querySelectorAll<HTMLButtonElement>("[role=tab]")) {
      const selected = button.dataset["libraryTab"] === id;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
    }
    this.body.replaceChildren(tab.element);
    if (!this.loaded.has(id)) {
      this.loaded.add(id);
      void tab.refresh();
    }
  }

  private arrow(event: KeyboardEvent, id: string): void {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const index = this.tabs.findIndex((tab) => tab.id === id);
    const next = this.tabs[(index + (event.key === "ArrowRight" ? 1 : -1) + this.tabs.length) % this.tabs.length];
    if (next === undefined) return;
    event.preventDefault();
    this.show(next.id);
    this.tablist.querySelector<HTMLButtonElement>(`[data-library-tab="${next.id}"]`)?.focus();
  }
}
