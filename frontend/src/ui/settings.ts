/**
 * The settings dialog: link style, snap to grid (and grid size), node badges. Settings live
 * on the server (`/api/settings`), so they follow the user to another browser; they load
 * at start and every change is saved at once and applied to the canvas. A modal dialog
 * element: focus moves into it, Escape closes it, focus returns to the Settings button.
 */

import { BADGE_MODES, LINK_STYLES, applyPreferences, preferences, type Preferences } from "../canvas/preferences";
import { el } from "./dom";
import { libraryApi } from "./library-api";

const LABELS: Readonly<Record<string, string>> = {
  spline: "Spline",
  straight: "Straight",
  orthogonal: "Orthogonal",
  none: "None",
  id: "Node id",
  "id+pack": "Node id and pack",
};

export class SettingsDialog {
  readonly element = el("dialog", { className: "settings-dialog", data: { dialog: "settings" } });
  private stored: Record<string, unknown> = {};
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly onChange: () => void,
    private readonly toast: (text: string) => void,
  ) {
    this.element.setAttribute("aria-label", "Settings");
  }

  /** Reads the stored settings and applies them. */
  async load(): Promise<void> {
    try {
      this.stored = await libraryApi.settings();
      applyPreferences(this.stored);
      this.onChange();
    } catch (error) {
      this.toast(`could not load settings: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  open(): void {
    this.render();
    this.element.showModal();
    this.element.querySelector<HTMLElement>("select, input")?.focus();
  }

  private render(): void {
    const choice = <K extends "linkStyle" | "badges">(key: K, label: string, values: readonly Preferences[K][]): HTMLElement => {
      const select = el("select", { data: { setting: key } });
      for (const value of values) {
        const option = el("option", { text: LABELS[value] ?? value });
        option.value = value;
        option.selected = preferences[key] === value;
        select.append(option);
      }
      select.addEventListener("change", () => void this.save({ [key]: select.value }));
      return el("label", {}, `${label} `, select);
    };
    const snap = el("input", { data: { setting: "snapToGrid" } });
    snap.type = "checkbox";
    snap.checked = preferences.snapToGrid;
    snap.addEventListener("change", () => void this.save({ snapToGrid: snap.checked }));
    const grid = el("input", { data: { setting: "gridSize" } });
    grid.type = "number";
    grid.min = "2";
    grid.max = "200";
    grid.value = String(preferences.gridSize);
    grid.addEventListener("change", () => {
      const size = Number(grid.value);
      if (Number.isInteger(size) && size >= 2 && size <= 200) void this.save({ gridSize: size });
      else this.toast("the grid size is a whole number from 2 to 200");
    });
    this.element.replaceChildren(
      el("h2", { text: "Settings" }),
      choice("linkStyle", "Link style", LINK_STYLES),
      el("label", {}, snap, " Snap nodes to the grid"),
      el("label", {}, "Grid size ", grid),
      choice("badges", "Node badges", BADGE_MODES),
      el("p", { className: "settings-note", text: "Saved on the server: they apply in every browser you use." }),
      el("button", { text: "Close", data: { action: "close-settings" }, onClick: () => this.element.close() }),
    );
  }

  private async save(change: Record<string, unknown>): Promise<void> {
    this.stored = { ...this.stored, ...change };
    applyPreferences(this.stored);
    this.onChange();
    // One save at a time, each sending the newest settings: quick changes never overwrite
    // each other out of order.
    this.saving = this.saving.then(async () => {
      try {
        await libraryApi.saveSettings(this.stored);
      } catch (error) {
        this.toast(`could not save settings: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    await this.saving;
  }
}
