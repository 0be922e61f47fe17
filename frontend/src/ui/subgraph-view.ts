/**
 * Editing a subgraph in place: "Open subgraph" shows the definition's nodes on the canvas in
 * a scratch tab (not a saved workflow), with a breadcrumb bar "Workflow › Subgraph" above
 * the canvas. Closing (the breadcrumb's parent link, its Done button, Escape on the bar,
 * switching tabs or queueing) writes the edited nodes back into the parent workflow as the
 * definition's next revision, one undoable step there. Nested subgraphs open the same way,
 * one level at a time, and the breadcrumb grows with them.
 */

import { DocumentTab } from "../app/document-tab";
import { definitionDocument, definitionOf, toWorkflow, writeBackDefinition, type Catalog } from "../model";
import { el } from "./dom";

interface Level {
  readonly parent: DocumentTab;
  readonly definitionId: string;
  readonly tab: DocumentTab;
  /** The instance node (in `parent`) this level was opened from. */
  readonly instanceId?: string;
}

export interface SubgraphViewHost {
  /** Shows a tab on the canvas (a scratch one while a subgraph is open). */
  show(tab: DocumentTab): void;
  toast(text: string): void;
}

export class SubgraphView {
  readonly element = el("nav", { className: "subgraph-breadcrumb", title: "Subgraph you are editing" });
  private readonly levels: Level[] = [];

  constructor(
    private readonly catalog: Catalog,
    private readonly host: SubgraphViewHost,
  ) {
    this.element.hidden = true;
    this.element.setAttribute("aria-label", "Subgraph breadcrumb");
    this.element.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closeOne();
    });
  }

  /** The innermost open subgraph's scratch tab, if any. */
  get current(): DocumentTab | undefined {
    return this.levels.at(-1)?.tab;
  }

  /** The workflow tab under the open levels and the instance ids leading in (run to here). */
  get openPath(): { root: DocumentTab; instances: string[] } | undefined {
    const first = this.levels[0];
    if (first === undefined) return undefined;
    return { root: first.parent, instances: this.levels.map((level) => level.instanceId ?? level.definitionId) };
  }

  /** Opens the subgraph behind an instance node of `parent`. */
  open(parent: DocumentTab, nodeId: string): void {
    const found = definitionOf(parent.store, nodeId);
    if (found === undefined) {
      this.host.toast(`node "${nodeId}" is not a subgraph`);
      return;
    }
    const document = definitionDocument(parent.store, found.id);
    const tab = new DocumentTab(found.definition.name, document, this.catalog, () => undefined, () => undefined);
    this.levels.push({ parent, definitionId: found.id, tab, instanceId: nodeId });
    this.render();
    this.host.show(tab);
  }

  /** Writes the innermost level back and shows its parent; false when none is open. */
  closeOne(): boolean {
    const level = this.levels.pop();
    if (level === undefined) return false;
    try {
      writeBackDefinition(level.parent.store, level.definitionId, toWorkflow(level.tab.store));
    } catch (error) {
      this.host.toast(error instanceof Error ? error.message : String(error));
    }
    level.tab.dispose();
    this.render();
    this.host.show(level.parent);
    return true;
  }

  /** Closes every open level (writing each back); used before queueing or switching tabs. */
  closeAll(): void {
    while (this.closeOne());
  }

  private render(): void {
    this.element.hidden = this.levels.length === 0;
    const first = this.levels[0];
    if (first === undefined) {
      this.element.replaceChildren();
      return;
    }
    const crumbs: HTMLElement[] = [];
    const root = el("button", { className: "crumb", text: first.parent.name, title: "Close the subgraph and go back to the workflow" });
    root.addEventListener("click", () => this.closeAll());
    crumbs.push(root);
    this.levels.forEach((level, index) => {
      crumbs.push(el("span", { className: "crumb-separator", text: "›" }));
      const last = index === this.levels.length - 1;
      const crumb = el(last ? "span" : "button", { className: "crumb", text: level.tab.name, data: { subgraph: level.definitionId } });
      if (!last) crumb.addEventListener("click", () => this.closeTo(index + 1));
      crumbs.push(crumb);
    });
    const done = el("button", { className: "crumb-done", text: "Done", title: "Write the subgraph back and close it (Escape)", data: { action: "close-subgraph" } });
    done.addEventListener("click", () => this.closeOne());
    this.element.replaceChildren(...crumbs, done);
  }

  private closeTo(depth: number): void {
    while (this.levels.length > depth && this.closeOne());
  }
}
