/**
 * Output gallery: thumbnails (server-side resized previews) of saved images, newest first.
 * It pages through the job history: the first page loads at start, "Load older" fetches the
 * next page of succeeded jobs. Clicking a thumbnail (or Enter on it) opens the lightbox on
 * the gallery's images, where "Open workflow" re-opens the graph the PNG carries.
 */

import { imagesIn, outputUrl, type ImageRef } from "../api/client";
import type { JobList } from "../api/types";
import { workflowFromPng } from "../files/png-text";
import { el } from "./dom";

export const GALLERY_PAGE = 30;

export class Gallery {
  readonly element = el("section", { className: "panel gallery", data: { panel: "gallery" } });
  private readonly grid = el("div", { className: "gallery-grid" });
  private readonly more = el("button", { className: "gallery-more", text: "Load older", title: "Load the next page of past results" });
  private readonly seen = new Set<string>();
  /** Newest first, as shown. */
  private readonly shown: ImageRef[] = [];
  private offset = 0;

  constructor(
    private readonly open: (document: unknown, name: string) => void,
    private readonly toast: (message: string) => void,
    private readonly view?: (images: readonly ImageRef[], index: number) => void,
  ) {
    this.more.addEventListener("click", () => void this.loadPage());
    this.more.hidden = true;
    this.element.append(el("header", {}, el("h2", { text: "Outputs" })), this.grid, this.more);
    void this.loadPage();
  }

  /** All images the gallery shows, newest first. */
  get images(): readonly ImageRef[] {
    return this.shown;
  }

  /** New results: shown first. */
  add(images: readonly ImageRef[]): void {
    for (const image of images) {
      const thumb = this.thumb(image);
      if (thumb === undefined) continue;
      this.grid.prepend(thumb);
      this.shown.unshift(image);
    }
  }

  private append(images: readonly ImageRef[]): void {
    for (const image of images) {
      const thumb = this.thumb(image);
      if (thumb === undefined) continue;
      this.grid.append(thumb);
      this.shown.push(image);
    }
  }

  private thumb(image: ImageRef): HTMLImageElement | undefined {
    const url = outputUrl(image);
    if (this.seen.has(url)) return undefined;
    this.seen.add(url);
    const thumb = el("img", { className: "gallery-item", title: `${image.filename} — click to view`, data: { filename: image.filename } });
    thumb.src = outputUrl(image, true);
    thumb.alt = image.filename;
    thumb.loading = "lazy";
    thumb.tabIndex = 0;
    const activate = (): void => {
      const index = this.shown.indexOf(image);
      if (this.view !== undefined) this.view(this.shown, index);
      else void this.reopen(image);
    };
    thumb.addEventListener("click", activate);
    thumb.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        activate();
      }
    });
    return thumb;
  }

  /** The next page of succeeded jobs, newest first, appended below what is shown. */
  private async loadPage(): Promise<void> {
    try {
      const response = await fetch(`/api/jobs?status=succeeded&limit=${GALLERY_PAGE}&offset=${this.offset}`);
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const { jobs, total } = (await response.json()) as JobList;
      this.offset += jobs.length;
      const images = jobs
        .sort((a, b) => (b.finished_at ?? 0) - (a.finished_at ?? 0))
        .flatMap((job) => Object.values(job.outputs).flatMap((outputs) => imagesIn(outputs)).reverse());
      this.append(images);
      this.more.hidden = this.offset >= total || jobs.length === 0;
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
