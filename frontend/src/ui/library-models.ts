/**
 * The models panel: model files by folder, then by family (checkpoints), with size and
 * detected family. Each entry can be dragged onto the canvas (or activated with Enter) to
 * make its loader there with the file chosen: the loader is the node whose widget lists
 * that folder, preferring the loaders category and the node with fewest sockets (Load
 * Checkpoint for checkpoints, Load LoRA for loras...).
 */

import type { Catalog, NodeSpec } from "../model";
import { el } from "./dom";
import { libraryApi, type ModelEntry } from "./library-api";

export const MODEL_DRAG_TYPE = "application/x-latentloom-model";

export interface Loader {
  readonly type: string;
  readonly input: string;
}

/** The node (and its input) that loads a file of `folder`, if the catalog has one. */
export function loaderFor(catalog: Catalog, folder: string): Loader | undefined {
  const candidates: { spec: NodeSpec; input: string }[] = [];
  for (const spec of catalog.specs) {
    const input = spec.inputs.find((item) => item.kind === "widget" && item.choices_from === folder);
    if (input !== undefined) candidates.push({ spec, input: input.name });
  }
  const sockets = (spec: NodeSpec): number => spec.inputs.filter((input) => input.kind === "socket").length;
  candidates.sort(
    (a, b) =>
      Number(!a.spec.category.startsWith("loaders")) - Number(!b.spec.category.startsWith("loaders")) ||
      sockets(a.spec) - sockets(b.spec) ||
      a.spec.id.localeCompare(b.spec.id),
  );
  const best = candidates[0];
  return best === undefined ? undefined : { type: best.spec.id, input: best.input };
}

const FAMILY_NAMES: Readonly<Record<string, string>> = { sd15: "SD 1.x", sd2: "SD 2.x", sdxl: "SDXL", sd3: "SD 3", flux: "FLUX" };

/** Folder -> group label -> entries, in the server's folder order, groups sorted by name. */
export function groupModels(entries: readonly ModelEntry[]): Map<string, Map<string, ModelEntry[]>> {
  const folders = new Map<string, Map<string, ModelEntry[]>>();
  for (const entry of entries) {
    const groups = folders.get(entry.folder) ?? new Map<string, ModelEntry[]>();
    const label = entry.family === null ? (entry.folder === "checkpoints" ? "unknown family" : "") : (FAMILY_NAMES[entry.family] ?? entry.family);
    const list = groups.get(label) ?? [];
    list.push(entry);
    groups.set(label, list);
    folders.set(entry.folder, groups);
  }
  for (const [folder, groups] of folders) folders.set(folder, new Map([...groups].sort(([a], [b]) => a.localeCompare(b))));
  return folders;
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${bytes} B`;
}

export class ModelsLibrary {
  readonly element = el("div", { className: "library-list", data: { library: "models" } });

  constructor(
    private readonly catalog: Catalog,
    private readonly place: (loader: Loader, file: string) => void,
    private readonly toast: (text: string) => void,
  ) {}

  async refresh(): Promise<void> {
    try {
      const { models } = await libraryApi.models();
      this.render(groupModels(models));
    } catch (error) {
      this.toast(`could not list the models: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private render(folders: Map<string, Map<string, ModelEntry[]>>): void {
    const sections: HTMLElement[] = [];
    for (const [folder, groups] of folders) {
      const section = el("details", { className: "library-folder" }, el("summary", { text: folder }));
      (section as HTMLDetailsElement).open = folder === "checkpoints";
      for (const [label, entries] of groups) {
        if (label !== "") section.append(el("div", { className: "library-group", text: label }));
        for (const entry of entries) section.append(this.item(entry));
      }
      sections.push(section);
    }
    this.element.replaceChildren(...(sections.length > 0 ? sections : [el("p", { className: "library-empty", text: "No model files in the model folders." })]));
  }

  private item(entry: ModelEntry): HTMLElement {
    const loader = loaderFor(this.catalog, entry.folder);
    const title = loader === undefined ? `${entry.name}: no loader node takes ${entry.folder} files` : `Drag onto the canvas (or press Enter) to load ${entry.name}`;
    const item = el(
      "button",
      { className: "library-item model-item", title, data: { folder: entry.folder, model: entry.name } },
      el("span", { className: "library-name", text: entry.name }),
      el("span", { className: "library-meta", text: formatSize(entry.size) }),
    );
    if (entry.family_unknown !== undefined) item.title += `\n${entry.family_unknown}`;
    if (loader === undefined) return item;
    item.draggable = true;
    item.addEventListener("dragstart", (event) => {
      event.dataTransfer?.setData(MODEL_DRAG_TYPE, JSON.stringify({ folder: entry.folder, name: entry.name }));
      event.dataTransfer?.setData("text/plain", entry.name);
    });
    item.addEventListener("click", () => this.place(loader, entry.name));
    return item;
  }
}

/** The model a drop carries, if it came from the models panel. */
export function droppedModel(event: DragEvent): { folder: string; name: string } | undefined {
  const text = event.dataTransfer?.getData(MODEL_DRAG_TYPE);
  if (text === undefined || text === "") return undefined;
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null) return undefined;
  const { folder, name } = value as { folder?: unknown; name?: unknown };
  return typeof folder === "string" && typeof name === "string" ? { folder, name } : undefined;
}
