/**
 * A first visit (nothing open before, nothing remembered) opens the txt2img example, laid out
 * left to right, instead of an empty "Untitled" grid; every later visit restores the tabs
 * that were open. And what each example needs: the model files its loaders name, checked
 * against the server's folder lists (the catalog's choices), so the Examples menu can say
 * which are missing before the user queues.
 */

import type { Catalog } from "../model";
import { exampleWorkflows } from "./examples";
import type { Workspace } from "./workspace";

const OPEN_TABS_KEY = "latentloom.openTabs"; // the workspace's list of open tabs
const FIRST_EXAMPLE = "txt2img";

export function isFirstVisit(): boolean {
  try {
    return localStorage.getItem(OPEN_TABS_KEY) === null;
  } catch {
    return false;
  }
}

/** Opens the first-run example; false when it is missing from the build. */
export async function openFirstRun(workspace: Workspace): Promise<boolean> {
  const example = exampleWorkflows().find((candidate) => candidate.name === FIRST_EXAMPLE);
  if (example === undefined) return false;
  await workspace.create(example.document, example.name);
  return true;
}

export interface ModelNeed {
  readonly folder: string;
  readonly file: string;
  readonly present: boolean;
}

/** The model files an example's nodes name (folder widgets), and whether the server has each. */
export function modelNeeds(document: unknown, catalog: Catalog): ModelNeed[] {
  const nodes = (document as { nodes?: Record<string, { type?: unknown; inputs?: Record<string, unknown> }> }).nodes ?? {};
  const needs = new Map<string, ModelNeed>();
  for (const node of Object.values(nodes)) {
    const spec = typeof node.type === "string" ? catalog.get(node.type) : undefined;
    for (const input of spec?.inputs ?? []) {
      const value = node.inputs?.[input.name];
      // "inputs" and the input_* folders hold user images and files, not models.
      if (input.choices_from === undefined || input.choices_from.startsWith("input") || typeof value !== "string") continue;
      const key = `${input.choices_from}/${value}`;
      if (!needs.has(key)) needs.set(key, { folder: input.choices_from, file: value, present: input.choices?.includes(value) ?? false });
    }
  }
  return [...needs.values()].sort((a, b) => `${a.folder}/${a.file}`.localeCompare(`${b.folder}/${b.file}`));
}

/** "needs checkpoints/tiny-sdxl.safetensors (missing)": undefined when nothing is missing. */
export function missingNote(needs: readonly ModelNeed[]): string | undefined {
  const missing = needs.filter((need) => !need.present);
  if (missing.length === 0) return undefined;
  return `needs ${missing.map((need) => `${need.folder}/${need.file}`).join(", ")} (missing)`;
}
