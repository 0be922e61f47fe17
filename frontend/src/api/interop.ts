/**
 * Opening other tools' files and writing theirs, through the server, which owns every
 * format (backend/latentloom/interop/comfy/): the editor sends the raw bytes of a dropped
 * or picked file to `POST /api/workflows/import` and gets our document back with a report
 * of what was mapped; export sends our document and gets ComfyUI's back. The report shapes
 * mirror the backend's pydantic models (ImportReport, ExportReport).
 */

import { parseJson, stringifyJson } from "../model/json-text";
import { ApiError } from "./client";

export interface MappedNode {
  readonly node: string;
  readonly comfy_class: string;
  readonly type: string;
}

export interface UnsupportedNode {
  readonly node: string;
  readonly comfy_class: string;
  readonly reason: string;
}

export interface ImportReport {
  readonly format: "latentloom" | "comfy-api" | "comfy-editor";
  readonly source: string;
  readonly mapped: readonly MappedNode[];
  readonly unsupported: readonly UnsupportedNode[];
  readonly notes: readonly string[];
}

export interface ImportResult {
  readonly workflow: unknown;
  readonly report: ImportReport;
}

export type ExportFormat = "comfy-api" | "comfy-editor";

export interface ExportReport {
  readonly format: ExportFormat;
  readonly exported?: readonly MappedNode[];
  readonly unexportable: readonly UnsupportedNode[];
  readonly warnings: readonly string[];
}

export interface ExportResult {
  readonly document: unknown;
  readonly report: ExportReport;
}

async function send<T>(path: string, body: BodyInit, contentType: string): Promise<T> {
  const response = await fetch(path, { method: "POST", body, headers: { "content-type": contentType } });
  const text = await response.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : parseJson(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const detail = typeof json === "object" && json !== null && "detail" in json ? (json as { detail: unknown }).detail : undefined;
    const reason = typeof detail === "string" ? detail : detail !== undefined ? JSON.stringify(detail) : text || response.statusText;
    throw new ApiError(response.status, reason);
  }
  return json as T;
}

/** Our document and a report from a file's bytes: Latentloom or ComfyUI JSON, PNG or WebP. */
export function importFile(bytes: ArrayBuffer | Uint8Array, filename: string): Promise<ImportResult> {
  const body = bytes instanceof Uint8Array ? new Blob([bytes as Uint8Array<ArrayBuffer>]) : new Blob([bytes]);
  return send<ImportResult>(`/api/workflows/import?filename=${encodeURIComponent(filename)}`, body, "application/octet-stream");
}

export function exportWorkflow(document: unknown, format: ExportFormat): Promise<ExportResult> {
  return send<ExportResult>(`/api/workflows/export?format=${format}`, stringifyJson(document), "application/json");
}

/** One line for the notice after an import, e.g. "Imported ComfyUI workflow: 12 nodes mapped, 1 unsupported: UpscaleModelLoader". */
export function describeImport(report: ImportReport): string {
  const what = { latentloom: "Latentloom workflow", "comfy-api": "ComfyUI API prompt", "comfy-editor": "ComfyUI workflow" }[report.format] ?? report.format;
  const from = report.source === "" ? "" : ` (from ${report.source})`;
  if (report.format === "latentloom") return `Opened ${what}${from}`;
  const mapped = `${report.mapped.length} node${report.mapped.length === 1 ? "" : "s"} mapped`;
  const classes = [...new Set(report.unsupported.map((node) => node.comfy_class))];
  const unsupported = report.unsupported.length === 0 ? "" : `, ${report.unsupported.length} unsupported: ${classes.join(", ")}`;
  return `Imported ${what}${from}: ${mapped}${unsupported}`;
}

/** What the user should know after an export, or undefined when it went cleanly. */
export function describeExport(report: ExportReport, filename: string): string {
  const lines = [`Exported ${report.format === "comfy-api" ? "ComfyUI API format" : "ComfyUI workflow"} to ${filename}`];
  if (report.unexportable.length > 0) {
    lines.push(`not exported (no ComfyUI class): ${report.unexportable.map((node) => `${node.node} (${node.reason})`).join("; ")}`);
  }
  for (const warning of report.warnings) lines.push(`warning: ${warning}`);
  return lines.join("\n");
}
