/**
 * The node library: every node type by category and by pack, with its description, plus
 * the saved components (subgraphs reusable across workflows). Activating an entry (click or
 * Enter) adds the node at the centre of the view; a component brings its definition into
 * the workflow and adds an instance.
 */

import type { Catalog, NodeSpec } from "../model";
import { el } from "./dom";
import { libraryApi, type ComponentSummary } from "./library-api";

export type Grouping = "category" | "pack";

/** Label -> specs, labels sorted, specs by display name. Packs "nodes/x.py" read "built-in: x". */
export function groupNodes(specs: readonly NodeSpec[], by: Grouping, packs: Readonly<Record<string, string>> = {}): Map<string, NodeSpec[]> {
  const groups = new Map<string, NodeSpec[]>();
  for (const spec of specs) {
    const label = by === "category" ? spec.category : packLabel(packs[spec.id]);
    const list = groups.get(label) ?? [];
    list.push(spec);
    groups.set(label, list);
  }
  for (const list of groups.values()) list.sort((a, b) => a.display_name.localeCompare(b.display_name));
  return new Map([...groups].sort(([a], [b]) => a.localeCompare(b)));
}

export function packLabel(pack: string | undefined): string {
  if (pack === undefined) return "subgraphs";
  const match = /^nodes\/(.+?)(\.py)?$/.exec(pack);
  return match === null ? pack : `built-in: ${match[1]}`;
}

export interface NodesLibraryHost {
  add(type: string): void;
  addComponent(name: string): void;
  toast(text: string): void;
}

export class NodesLibrary {
  readonly element = el("div", { className: "library-list", data: { library: "nodes" } });
  private readonly body = el("div", { className: "library-groups" });
  private grouping: Grouping = "category";
  private packs: Record<string, string> = {};
  private components: ComponentSummary[] = [];

  constructor(
    private readonly catalog: Catalog,
    private readonly host: NodesLibraryHost,
  ) {
    const switcher = el("div", { className: "library-switch", title: "Group nodes by" });
    for (const grouping of ["category", "pack"] as const) {
      const button = el("button", { text: `By ${grouping}`, data: { grouping }, onClick: () => this.regroup(grouping) });
      button.setAttribute("aria-pressed", String(grouping === this.grouping));
      switcher.append(button);
    }
    this.element.append(switcher, this.body);
  }

  async refresh(): Promise<void> {
    try {
      const [packs, components] = await Promise.all([libraryApi.packs(), libraryApi.components()]);
      this.packs = packs.packs;
      this.components = components.components;
    } catch (error) {
      this.host.toast(`could not load the node library: ${error instanceof Error ? error.message : String(error)}`);
    }
    this.render();
  }

  private regroup(grouping: Grouping): void {
    this.grouping = grouping;
    for (const button of this.element.querySelectorAll<HTMLButtonElement>("[data-grouping]")) {
      button.setAttribute("aria-pressed", String(button.dataset["grouping"] === grouping));
    }
    this.render();
  }

  private render(): void {
    const sections: HTMLElement[] = [];
    if (this.components.length > 0) {
      const section = el("details", { className: "library-folder", data: { group: "components" } }, el("summary", { text: "components" }));
      (section as HTMLDetailsElement).open = true;
      for (const component of this.components) {
        const detail = `${component.nodes} nodes; in: ${component.inputs.join(", ") || "none"}; out: ${component.outputs.join(", ") || "none"} (revision ${component.revision})`;
        section.append(this.entry(component.title, component.description ?? detail, { component: component.name }, () => this.host.addComponent(component.name)));
      }
      sections.push(section);
    }
    for (const [label, specs] of groupNodes(this.catalog.specs, this.grouping, this.packs)) {
      const section = el("details", { className: "library-folder", data: { group: label } }, el("summary", { text: label }));
      for (const spec of specs) section.append(this.entry(spec.display_name, spec.description, { node: spec.id }, () => this.host.add(spec.id)));
      sections.push(section);
    }
    this.body.replaceChildren(...sections);
  }

  private entry(name: string, description: string, data: Record<string, string>, run: () => void): HTMLElement {
    return el("button", { className: "library-item node-item", title: description, data, onClick: run },
      el("span", { className: "library-name", text: name }),
      el("span", { className: "library-description", text: description }),
    );
  }
}
