/**
 * What the buttons on a Load Image node do: upload a picture from this computer, and paint a
 * mask on the current one. Either ends by pointing the node's image widget at the new file
 * in one transaction of its own, so one undo returns to the previous file (uploads are
 * never deleted: the old name keeps working).
 */

import { api, inputUrl } from "../api/client";
import type { NodeActionId } from "../canvas/geometry";
import { setWidgetValue } from "../model";
import { el } from "../ui/dom";
import { MaskPainter } from "../ui/mask-painter";
import type { DocumentTab } from "./document-tab";
import { message } from "./workspace";

export class ImageActions {
  /** The open painter, if any (tests drive it through the page, and read its mask here). */
  painter: MaskPainter | undefined;
  /** Files uploaded from this page, newest first: the catalog's input list predates them. */
  readonly uploaded: string[] = [];
  private readonly picker = el("input", { className: "file-picker", data: { file: "upload-image" } });
  private pickFor: { tab: DocumentTab; node: string; input: string } | undefined;

  constructor(
    private readonly host: HTMLElement,
    private readonly toast: (text: string) => void,
  ) {
    this.picker.type = "file";
    this.picker.accept = ".png,.jpg,.jpeg,.webp,image/png,image/jpeg,image/webp";
    this.picker.hidden = true;
    this.picker.addEventListener("change", () => {
      const file = this.picker.files?.[0];
      const target = this.pickFor;
      this.picker.value = "";
      this.pickFor = undefined;
      if (file !== undefined && target !== undefined) void this.uploadFile(target.tab, target.node, target.input, file);
    });
    host.append(this.picker);
  }

  run(tab: DocumentTab, node: string, input: string, action: NodeActionId): void {
    if (action === "upload") this.chooseFile(tab, node, input);
    else void this.editMask(tab, node, input);
  }

  chooseFile(tab: DocumentTab, node: string, input: string): void {
    this.pickFor = { tab, node, input };
    this.picker.click();
  }

  async uploadFile(tab: DocumentTab, node: string, input: string, file: File): Promise<void> {
    try {
      const { name } = await api.upload(file, file.name);
      this.remember(name);
      pointAt(tab, node, input, name, "Upload image");
    } catch (error) {
      this.toast(message(error));
    }
  }

  async editMask(tab: DocumentTab, node: string, input: string): Promise<void> {
    const name = tab.store.get("node", node)?.inputs[input];
    if (typeof name !== "string" || name === "") {
      this.toast("choose or upload an image first, then paint its mask");
      return;
    }
    if (tab.store.has("link", `${node}:${input}`)) {
      this.toast(`"${input}" is linked: the mask painter edits a file picked on the node itself`);
      return;
    }
    try {
      const response = await fetch(inputUrl(name));
      if (!response.ok) throw new Error(`cannot open ${name} (${response.status}): ${await response.text()}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      this.painter?.close();
      this.painter = await MaskPainter.open(this.host, {
        name,
        bytes,
        upload: async (png, filename) => (await api.upload(png, filename)).name,
        onSaved: (saved) => {
          this.painter = undefined;
          this.remember(saved);
          pointAt(tab, node, input, saved, "Edit mask");
        },
        onError: (text) => this.toast(`the mask was not saved: ${text}`),
      });
    } catch (error) {
      this.toast(message(error));
    }
  }

  private remember(name: string): void {
    const index = this.uploaded.indexOf(name);
    if (index >= 0) this.uploaded.splice(index, 1);
    this.uploaded.unshift(name);
  }
}

/** One undo step of its own: never merged into an earlier edit of the same widget. */
function pointAt(tab: DocumentTab, node: string, input: string, name: string, label: string): void {
  if (!tab.store.has("node", node)) return; // deleted meanwhile: the file stays uploaded
  tab.undo.breakMerge();
  tab.store.transact(label, () => setWidgetValue(tab.store, node, input, name));
  tab.undo.breakMerge();
}
