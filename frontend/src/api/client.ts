/**
 * The REST API as typed functions. Errors become ApiError with the server's `detail` (and
 * `problems` for a 422 on queueing) so the UI can show exactly what the server said.
 */

import { parseJson, stringifyJson } from "../model/json-text";
import type { JobList, JobView, JobsCreated, Problem } from "./types";

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly problems: readonly Problem[] = [],
  ) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    init.body = stringifyJson(body); // 64-bit seeds go out as their exact digits
    init.headers = { ...headers, "content-type": "application/json" };
  }
  const response = await fetch(path, init);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  const json: unknown = text === "" ? undefined : parseJson(text);
  if (!response.ok) {
    const detail = typeof json === "object" && json !== null && "detail" in json ? (json as { detail: unknown }).detail : text;
    const problems = typeof json === "object" && json !== null && "problems" in json ? (json as { problems: Problem[] }).problems : [];
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail), problems);
  }
  return json as T;
}

export interface WorkflowInfo {
  readonly name: string;
  readonly modified: string;
  readonly size: number;
}

const enc = encodeURIComponent;

export const api = {
  nodes: () => request<{ nodes: unknown }>("GET", "/api/nodes"),
  /** The server, engine and worker status (GET /api/system): the Ray workers panel reads `worker`. */
  system: () => request<unknown>("GET", "/api/system"),
  queue: (workflow: unknown, options: { runs?: number; front?: boolean; clientId?: string; targets?: readonly string[] } = {}) =>
    request<JobsCreated>("POST", "/api/jobs", {
      workflow,
      runs: options.runs ?? 1,
      front: options.front ?? false,
      client_id: options.clientId ?? null,
      ...(options.targets === undefined ? {} : { targets: options.targets }),
    }),
  /** Per node: would it run, come from the cache, be skipped or not be needed (POST /api/plan). */
  plan: (workflow: unknown, targets?: readonly string[]) =>
    request<{ nodes: Record<string, "run" | "cached" | "skipped" | "unneeded">; run: number; cached: number }>(
      "POST",
      "/api/plan",
      { workflow, ...(targets === undefined ? {} : { targets }) },
    ),
  jobs: (statuses: readonly string[], limit = 100) =>
    request<JobList>("GET", `/api/jobs?${statuses.map((status) => `status=${status}`).join("&")}&limit=${limit}`),
  cancel: (id: string) => request<JobView>("DELETE", `/api/jobs/${enc(id)}`),
  reprioritize: (id: string, priority: number) => request<JobView>("PATCH", `/api/jobs/${enc(id)}`, { priority }),
  workflows: () => request<{ workflows: WorkflowInfo[] }>("GET", "/api/workflows"),
  getWorkflow: (name: string) => request<unknown>("GET", `/api/workflows/${enc(name)}`),
  putWorkflow: (name: string, document: unknown) => request<WorkflowInfo>("PUT", `/api/workflows/${enc(name)}`, document),
  /** Saves under a new name only: 409 when a saved workflow has it already. */
  createWorkflow: (name: string, document: unknown) =>
    request<WorkflowInfo>("PUT", `/api/workflows/${enc(name)}`, document, { "if-none-match": "*" }),
  /** Renames a saved workflow; never replaces another (409 names it). */
  renameWorkflow: (name: string, to: string) => request<WorkflowInfo>("POST", `/api/workflows/${enc(name)}/rename`, { name: to }),
  deleteWorkflow: (name: string) => request<void>("DELETE", `/api/workflows/${enc(name)}`),
  /** Stores an input image (PNG, JPEG, WebP) for Load Image; the server answers the name it got. */
  upload: async (file: Blob, filename: string): Promise<{ name: string }> => {
    const form = new FormData();
    form.append("file", file, filename);
    const response = await fetch("/api/uploads", { method: "POST", body: form });
    const text = await response.text();
    const json: unknown = text === "" ? undefined : JSON.parse(text);
    const detail = typeof json === "object" && json !== null && "detail" in json ? (json as { detail: unknown }).detail : text;
    if (!response.ok) throw new ApiError(response.status, `upload of ${filename} refused: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    return json as { name: string };
  },
};

/** An input-folder image as the server serves it (ComfyUI's view route, which we mount). */
export function inputUrl(name: string): string {
  const slash = name.lastIndexOf("/");
  const subfolder = slash < 0 ? "" : `&subfolder=${enc(name.slice(0, slash))}`;
  return `/api/view?type=input&filename=${enc(name.slice(slash + 1))}${subfolder}`;
}

export interface ImageRef {
  readonly filename: string;
  readonly subfolder: string;
  readonly type?: string;
}

export function outputUrl(image: ImageRef, preview = false): string {
  const path = [image.subfolder, image.filename].filter((part) => part !== "").map(enc).join("/");
  return `/api/outputs/${path}${preview ? "?preview=webp&max_size=256" : ""}`;
}

/** The images an output node reported (`{"images": [...]}`), if any. */
export function imagesIn(outputs: unknown): ImageRef[] {
  if (typeof outputs !== "object" || outputs === null) return [];
  const images = (outputs as { images?: unknown }).images;
  if (!Array.isArray(images)) return [];
  return images.filter(
    (image): image is ImageRef =>
      typeof image === "object" && image !== null && typeof (image as ImageRef).filename === "string",
  ).map((image) => ({ ...image, subfolder: typeof image.subfolder === "string" ? image.subfolder : "" }));
}
