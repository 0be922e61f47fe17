/**
 * Editing commands behind the keyboard shortcuts and menus, each one model operation (one
 * undo step) on the active tab's selection.
 */

import {
  addGroup,
  copySelection,
  paste,
  removeItems,
  setCollapsed,
  toWorkflow,
  toggleMode,
  parseJson,
  stringifyJson,
  type Rect,
  type Vec2,
} from "../model";
import type { Renderer } from "../canvas/renderer";
import { fitBounds, toWorld, unionRects } from "../canvas/viewport";
import type { DocumentTab } from "./document-tab";

const PADDING = 30;

export class Commands {
  /** The last copied fragment (also put on the system clipboard when allowed). */
  private clipboard: string | undefined;

  constructor(
    private readonly renderer: Renderer,
    private readonly select: (ids: Iterable<string>) => void,
    private readonly toast: (message: string) => void,
  ) {}

  /** Whether Paste has anything to paste (the canvas menu greys it out otherwise). */
  get canPaste(): boolean {
    return this.clipboard !== undefined;
  }

  deleteSelection(tab: DocumentTab): void {
    if (tab.selection.size === 0) return;
    removeItems(tab.store, tab.selection);
    this.select([]);
  }

  copy(tab: DocumentTab): void {
    if (tab.selection.size === 0) return;
    this.clipboard = stringifyJson(copySelection(tab.store, tab.selection));
    void navigator.clipboard?.writeText(this.clipboard).catch(() => undefined);
  }

  paste(tab: DocumentTab, withLinks: boolean, at?: Vec2): void {
    if (this.clipboard === undefined) return;
    this.pasteText(tab, this.clipboard, withLinks, at);
  }

  duplicate(tab: DocumentTab): void {
    if (tab.selection.size === 0) return;
    this.pasteText(tab, stringifyJson(copySelection(tab.store, tab.selection)), false);
  }

  private pasteText(tab: DocumentTab, text: string, withLinks: boolean, at?: Vec2): void {
    try {
      const fragment: unknown = parseJson(text);
      const offset = this.pasteOffset(tab, fragment, at);
      const result = paste(tab.store, fragment, { offset, withLinks });
      this.select(result.ids.values());
      if (result.skipped.length > 0) this.toast(`some links were not pasted: ${result.skipped.join("; ")}`);
    } catch (error) {
      this.toast(`cannot paste: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Pastes at the pointer when known, else 30 px down-right of the copied items. */
  private pasteOffset(tab: DocumentTab, fragment: unknown, at: Vec2 | undefined): Vec2 {
    if (at === undefined) return [PADDING, PADDING];
    const nodes = (fragment as { nodes?: Record<string, { ui?: { pos?: [number, number] } }> }).nodes ?? {};
    const positions = Object.values(nodes).map((node) => node.ui?.pos).filter((pos) => pos !== undefined);
    const minX = Math.min(...positions.map((pos) => pos[0]));
    const minY = Math.min(...positions.map((pos) => pos[1]));
    void tab;
    return Number.isFinite(minX) ? [Math.round(at[0] - minX), Math.round(at[1] - minY)] : [PADDING, PADDING];
  }

  selectAll(tab: DocumentTab): void {
    this.select([...[...tab.store.list("node")].map((node) => node.id), ...[...tab.store.list("reroute")].map((reroute) => reroute.id)]);
  }

  group(tab: DocumentTab): void {
    const rects = [...tab.selection]
      .map((id) => tab.store.get("node", id))
      .filter((node) => node !== undefined)
      .map((node) => this.renderer.layoutOf(node).rect);
    const bounds = unionRects(rects);
    if (bounds === undefined) {
      this.toast("select the nodes to group first");
      return;
    }
    const rect: Rect = [bounds[0] - PADDING, bounds[1] - PADDING - 20, bounds[2] + 2 * PADDING, bounds[3] + 2 * PADDING + 20];
    const group = addGroup(tab.store, "Group", rect);
    this.select([group.id]);
  }

  /** Ctrl+M / Ctrl+B and the node menu: one undo step over the selected nodes. */
  toggleMode(tab: DocumentTab, mode: "mute" | "bypass", ids: Iterable<string> = tab.selection): void {
    const nodes = [...ids].filter((id) => tab.store.has("node", id));
    if (nodes.length === 0) {
      this.toast(`select the nodes to ${mode} first`);
      return;
    }
    toggleMode(tab.store, nodes, mode);
  }

  toggleCollapse(tab: DocumentTab, ids: Iterable<string> = tab.selection): void {
    const nodes = [...ids].map((id) => tab.store.get("node", id)).filter((node) => node !== undefined);
    if (nodes.length === 0) return;
    const collapse = !nodes.every((node) => node.collapsed);
    tab.store.transact(collapse ? "Collapse" : "Expand", () => {
      for (const node of nodes) setCollapsed(tab.store, node.id, collapse);
    });
  }

  /** Fits the selection, or the whole graph when nothing is selected. */
  fit(tab: DocumentTab): void {
    const ids = tab.selection.size > 0 ? [...tab.selection] : [...tab.store.list("node")].map((node) => node.id);
    const rects = ids.map((id) => tab.store.get("node", id)).filter((node) => node !== undefined).map((node) => this.renderer.layoutOf(node).rect);
    const groups = [...tab.store.list("group")].filter((group) => tab.selection.size === 0 || tab.selection.has(group.id)).map((group) => group.rect);
    const bounds = unionRects([...rects, ...groups]);
    this.renderer.view = bounds === undefined ? { scale: 1, offset: [0, 0] } : fitBounds(bounds, this.renderer.screenSize, 40, 1);
  }

  exportJson(tab: DocumentTab): void {
    this.download(`${tab.name}.json`, toWorkflow(tab.store));
  }

  /** Saves a JSON value as a file through the browser's download. */
  download(filename: string, value: unknown): void {
    const blob = new Blob([`${stringifyJson(value, 2)}\n`], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = filename;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  worldAt(screen: Vec2): Vec2 {
    return toWorld(this.renderer.view, screen);
  }
}
