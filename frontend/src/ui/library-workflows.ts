/**
 * The saved workflows panel: search by name, open, rename, duplicate, delete, and the kept
 * versions (`.history/`) of each with restore. Names are typed into an inline field, not
 * `prompt()`; destructive actions ask in the row itself ("Delete? Yes / No").
 */

import { api, type WorkflowInfo } from "../api/client";
import { el } from "./dom";
import { libraryApi } from "./library-api";

export interface WorkflowsLibraryHost {
  open(name: string): void;
  toast(text: string): void;
}

/** Names matching every word of `query` (case-insensitive), newest first. */
export function filterWorkflows(workflows: readonly WorkflowInfo[], query: string): WorkflowInfo[] {
  const words = query.toLowerCase().split(/\s+/).filter((word) => word !== "");
  return workflows
    .filter((info) => words.every((word) => info.name.toLowerCase().includes(word)))
    .sort((a, b) => b.modified.localeCompare(a.modified) || a.name.localeCompare(b.name));
}

/** `base copy`, `base copy 2`... the first not in `taken`. */
export function copyName(base: string, taken: ReadonlySet<string>): string {
  let name = `${base} copy`;
  for (let n = 2; taken.has(name); n += 1) name = `${base} copy ${n}`;
  return name;
}

export class WorkflowsLibrary {
  readonly element = el("div", { className: "library-list", data: { library: "workflows" } });
  private readonly search = el("input", { className: "library-search", title: "Search saved workflows" });
  private readonly list = el("ul", { className: "library-rows" });
  private workflows: WorkflowInfo[] = [];

  constructor(private readonly host: WorkflowsLibraryHost) {
    this.search.placeholder = "Search workflows";
    this.search.setAttribute("aria-label", "Search saved workflows");
    this.search.addEventListener("input", () => this.render());
    this.element.append(this.search, this.list);
  }

  async refresh(): Promise<void> {
    try {
      this.workflows = (await api.workflows()).workflows;
      this.render();
    } catch (error) {
      this.host.toast(`could not list saved workflows: ${message(error)}`);
    }
  }

  private render(): void {
    const rows = filterWorkflows(this.workflows, this.search.value).map((info) => this.row(info));
    this.list.replaceChildren(...(rows.length > 0 ? rows : [el("li", { className: "library-empty", text: "No saved workflow matches." })]));
  }

  private row(info: WorkflowInfo): HTMLElement {
    const row = el("li", { className: "library-row", data: { workflow: info.name } });
    const actions = el("span", { className: "library-actions" });
    const action = (text: string, title: string, run: () => void): HTMLButtonElement => el("button", { text, title, data: { action: text.toLowerCase() }, onClick: run });
    actions.append(
      action("Rename", `Rename "${info.name}"`, () => this.renameInline(row, info)),
      action("Duplicate", `Save a copy of "${info.name}"`, () => void this.duplicate(info)),
      action("Versions", `Kept versions of "${info.name}"`, () => void this.versions(row, info)),
      action("Delete", `Delete "${info.name}" (kept in its history)`, () => this.confirmDelete(row, info)),
    );
    const open = el("button", { className: "library-item", text: info.name, title: `Open "${info.name}"`, onClick: () => this.host.open(info.name) });
    row.append(open, actions);
    return row;
  }

  private renameInline(row: HTMLElement, info: WorkflowInfo): void {
    const field = el("input", { className: "library-rename", title: "New name (Enter to rename, Escape to cancel)" });
    field.value = info.name;
    field.setAttribute("aria-label", `New name for ${info.name}`);
    field.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.render();
      if (event.key !== "Enter") return;
      const name = field.value.trim();
      if (name === "" || name === info.name) return this.render();
      void api.renameWorkflow(info.name, name).then(() => this.refresh(), (error: unknown) => this.host.toast(`could not rename: ${message(error)}`));
    });
    row.replaceChildren(field);
    field.focus();
    field.select();
  }

  private async duplicate(info: WorkflowInfo): Promise<void> {
    try {
      const document = await api.getWorkflow(info.name);
      await api.createWorkflow(copyName(info.name, new Set(this.workflows.map((item) => item.name))), document);
      await this.refresh();
    } catch (error) {
      this.host.toast(`could not duplicate "${info.name}": ${message(error)}`);
    }
  }

  private confirmDelete(row: HTMLElement, info: WorkflowInfo): void {
    const yes = el("button", { text: "Yes, delete", data: { action: "confirm-delete" }, onClick: () => void api.deleteWorkflow(info.name).then(() => this.refresh(), (error: unknown) => this.host.toast(message(error))) });
    row.replaceChildren(el("span", { text: `Delete "${info.name}"? ` }), yes, el("button", { text: "No", onClick: () => this.render() }));
    yes.focus();
  }

  private async versions(row: HTMLElement, info: WorkflowInfo): Promise<void> {
    try {
      const { versions } = await libraryApi.versions(info.name);
      const list = el("ul", { className: "library-versions", data: { versions: info.name } });
      for (const version of versions) {
        const when = new Date(version.saved_at).toLocaleString();
        list.append(
          el("li", {},
            el("span", { text: `${when} (${version.kind})` }),
            el("button", {
              text: "Restore",
              title: "Make this version current (the current one is kept)",
              data: { action: "restore", version: version.version },
              onClick: () => void libraryApi.restore(info.name, version.version).then(() => this.host.toast(`restored "${info.name}" from ${when}`), (error: unknown) => this.host.toast(message(error))),
            }),
          ),
        );
      }
      if (versions.length === 0) list.append(el("li", { text: "No kept versions yet." }));
      row.querySelector(".library-versions")?.remove();
      row.append(list);
    } catch (error) {
      this.host.toast(`could not list versions: ${message(error)}`);
    }
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
