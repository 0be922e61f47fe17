/**
 * Opening a dropped or picked file in a new tab. Our own documents (a Latentloom JSON, a PNG
 * with our chunk) are parsed here; anything else (ComfyUI JSON of either format, ComfyUI PNGs
 * and WebPs) goes to the server's importer, which owns every foreign format, and its report
 * becomes a notice.
 */

import { describeImport, importFile } from "../api/interop";
import { isOwnDocument, ownDocumentFromPng } from "../files/png-text";
import { parseJson } from "../model";
import { message, type Workspace } from "./workspace";

/** What the file picker offers. */
export const FILE_TYPES = ".json,.png,.webp,application/json,image/png,image/webp";

export interface Notices {
  notice(text: string, tone: "info" | "warning"): void;
  toast(text: string): void;
}

export async function openFile(file: File, workspace: Workspace, notices: Notices): Promise<void> {
  const name = file.name.replace(/\.(json|png|webp)$/i, "") || "Imported";
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const own = ownDocument(bytes, file);
    if (own !== undefined) {
      await workspace.create(own, name);
      return;
    }
    const result = await importFile(bytes, file.name);
    await workspace.create(result.workflow, name);
    const report = result.report;
    notices.notice(describeImport(report), report.unsupported.length > 0 ? "warning" : "info");
  } catch (error) {
    notices.toast(`cannot open ${file.name}: ${message(error)}`);
  }
}

/** The file's document if it is one of ours, parsed locally; undefined sends it to the server. */
function ownDocument(bytes: Uint8Array, file: File): unknown {
  if (/\.png$/i.test(file.name) || file.type === "image/png") return ownDocumentFromPng(bytes);
  if (!/\.json$/i.test(file.name) && file.type !== "application/json") return undefined;
  try {
    const document: unknown = parseJson(new TextDecoder().decode(bytes));
    return isOwnDocument(document) ? document : undefined;
  } catch {
    return undefined; // the importer names where the JSON breaks
  }
}
