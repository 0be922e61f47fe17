/**
 * Output gallery: thumbnails of saved images, newest first. Clicking one fetches the PNG,
 * reads the workflow it carries and opens it in a new tab: any image re-opens its graph.
 */

import { api, imagesIn, outputUrl, type ImageRef } from "../api/client";
import { workflowFromPng } from "../files/png-text";
import { el } from "./dom";

export class Gallery {
  readonly element = el("section", { className: "panel gallery" });
  private readonly grid = el("div", { className: "gallery-grid" });
  private readonly seen = new Set<string>();

  constructor(
    private readonly open: (document: unknown, name: string) => void,
    private readonly toast: (message: string) => void,
  ) {
    this.element.append(el("header", {}, el("h2", { text: "Outputs" })), this.grid);
    void this.loadHistory();
  }

  add(images: readonly ImageRef[]): void {
    for (const image of images) {
      const url = outputUrl(image);
      if (this.seen.has(url)) continue;
      this.seen.add(url);
      const thumb = el("img", { className: "gallery-item", title: `${image.filename} — click to open its workflow`, data: { filename: image.filename } });
      thumb.src = outputUrl(image, true);
      thumb.alt = image.filename;
      thumb.addEventListener("click", () => void this.reopen(image));
      this.grid.prepend(thumb);
    }
  }

  private async loadHistory(): Promise<void> {
    try {
      const { jobs } = await api.jobs(["succeeded"], 30);
      const images = jobs
        .sort((a, b) => (a.finished_at ?? 0) - (b.finished_at ?? 0))
        .flatMap((job) => Object.values(job.outputs).flatMap((outputs) => imagesIn(outputs)));
      this.add(images);
    } catch (error) {
      this.toast(`could not load past outputs: ${String(error)}`);
    }
  }

  private async reopen(image: ImageRef): Promise<void> {
    try {
      const response = await fetch(outputUrl(image));
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const document = workflowFromPng(new Uint8Array(await response.arrayBuffer()));
      this.open(document, image.filename.replace(/\.png$/i, ""));
    } catch (error) {
      this.toast(`could not open the workflow of ${image.filename}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
