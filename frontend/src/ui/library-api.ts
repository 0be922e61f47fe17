/**
 * The library panels' server calls (routes_library.py, routes_settings.py): model files with
 * size and family, kept versions of saved workflows, components and node packs, settings.
 * Bodies are read with `parseJson`, so 64-bit seeds inside components stay exact.
 */

import { parseJson, stringifyJson } from "../model";

export interface ModelEntry {
  readonly folder: string;
  readonly name: string;
  readonly size: number;
  readonly family: string | null;
  readonly family_unknown?: string;
}

export interface WorkflowVersion {
  readonly version: string;
  readonly kind: "saved" | "edit" | "deleted";
  readonly saved_at: string;
  readonly size: number;
}

export interface ComponentSummary {
  readonly name: string;
  readonly title: string;
  readonly description: string | null;
  readonly revision: number;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly nodes: number;
}

const enc = encodeURIComponent;

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = body === undefined ? { method } : { method, body: stringifyJson(body), headers: { "content-type": "application/json" } };
  const response = await fetch(path, init);
  const text = await response.text();
  const json: unknown = text === "" ? undefined : parseJson(text);
  if (!response.ok) {
    const detail = typeof json === "object" && json !== null && "detail" in json ? (json as { detail: unknown }).detail : text;
    throw new Error(typeof detail === "string" ? detail : `${response.status} ${response.statusText}`);
  }
  return json as T;
}

export const libraryApi = {
  models: () => call<{ models: ModelEntry[] }>("GET", "/api/library/models"),
  versions: (name: string) => call<{ versions: WorkflowVersion[] }>("GET", `/api/workflows/${enc(name)}/versions`),
  restore: (name: string, version: string) => call<{ revision: number }>("POST", `/api/workflows/${enc(name)}/versions/${enc(version)}/restore`),
  packs: () => call<{ packs: Record<string, string> }>("GET", "/api/library/packs"),
  components: () => call<{ components: ComponentSummary[] }>("GET", "/api/library/components"),
  component: (name: string) => call<unknown>("GET", `/api/library/components/${enc(name)}`),
  saveComponent: (name: string, body: unknown) => call<ComponentSummary>("PUT", `/api/library/components/${enc(name)}`, body),
  settings: () => call<Record<string, unknown>>("GET", "/api/settings"),
  saveSettings: (settings: Record<string, unknown>) => call<Record<string, unknown>>("PUT", "/api/settings", settings),
};
