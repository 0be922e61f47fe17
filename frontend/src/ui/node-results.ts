/**
 * Results where the eye is: when a Save Image or Preview Image node reports images, their
 * server-side thumbnails are joined side by side into one strip (a batch reads left to
 * right) and handed to the node's run state as its preview, which the renderer already
 * draws under the node. The image refs are kept per run state, so a click on the strip
 * can say which image of the batch was hit and open it in the lightbox.
 *
 * After a page reload the strips come back from the job history: one request for the
 * recent succeeded jobs, and per node the newest job of this workflow (jobs carry the tab's
 * name as `meta.title`, set when queueing) that reported images for it.
 */

import { api, imagesIn, outputUrl, type ImageRef } from "../api/client";
import type { JobView } from "../api/types";
import type { RunState } from "../app/run-state";
import { nodeLayout } from "../canvas/geometry";
import { PREVIEW_GAP } from "../canvas/draw-node";
import { shownNode, type StoreReader, type Vec2 } from "../model";

/** How many recent jobs a restore looks through (one page of the history). */
const HISTORY_JOBS = 100;

/** Thumbnail height in the strip; the renderer scales the strip to the node's width. */
const THUMB = 256;

export interface ResultHit {
  readonly images: readonly ImageRef[];
  readonly index: number;
}

export class NodeResults {
  private readonly byRun = new WeakMap<RunState, Map<string, readonly ImageRef[]>>();
  /** Counts for tests: strips drawn onto nodes. */
  stripsShown = 0;

  private readonly restored = new WeakSet<RunState>();

  /**
   * Puts back the strips a reload lost: the newest images each node of the workflow named
   * `title` reported in the history, for nodes that show none yet (a live result wins).
   * Asks once per run state; answers how many strips it restored.
   */
  async restore(run: RunState, title: string, has: (id: string) => boolean): Promise<number> {
    if (this.restored.has(run)) return 0;
    this.restored.add(run);
    const { jobs } = await api.jobs(["succeeded"], HISTORY_JOBS);
    const latest = latestImages(jobs, title, has);
    const shown = await Promise.all([...latest].map(async ([node, images]) => (this.images(run, node).length > 0 ? false : (await this.show(run, node, images), true))));
    return shown.filter(Boolean).length;
  }

  images(run: RunState, node: string): readonly ImageRef[] {
    return this.byRun.get(run)?.get(node) ?? [];
  }

  async show(run: RunState, node: string, images: readonly ImageRef[]): Promise<void> {
    if (images.length === 0) return;
    const map = this.byRun.get(run) ?? new Map<string, readonly ImageRef[]>();
    map.set(node, images);
    this.byRun.set(run, map);
    const bitmaps = await Promise.all(images.map(thumbnail));
    if (map.get(node) !== images) {
      for (const bitmap of bitmaps) bitmap.close();
      return; // a newer result arrived while these loaded
    }
    run.setPreview(node, await strip(bitmaps));
    this.stripsShown += 1;
  }

  /** The image under a world point, if it lies on a node's result strip. */
  at(store: StoreReader, run: RunState, world: Vec2): ResultHit | undefined {
    for (const [nodeId, images] of this.byRun.get(run) ?? []) {
      const node = store.get("node", nodeId);
      const preview = run.previews.get(nodeId);
      if (node === undefined || preview === undefined) continue;
      const [x, y, width, height] = nodeLayout(store.catalog, node).rect;
      // As draw-node draws it: scaled to the node's width, centred, under the node.
      const scale = width / Math.max(preview.width, preview.height);
      const w = preview.width * scale;
      const h = preview.height * scale;
      const left = x + (width - w) / 2;
      const top = y + height + PREVIEW_GAP;
      if (world[0] < left || world[0] > left + w || world[1] < top || world[1] > top + h) continue;
      const index = Math.min(images.length - 1, Math.floor(((world[0] - left) / w) * images.length));
      return { images, index };
    }
    return undefined;
  }
}

async function thumbnail(image: ImageRef): Promise<ImageBitmap> {
  const response = await fetch(outputUrl(image, true));
  if (!response.ok) throw new Error(`${image.filename}: ${response.status} ${response.statusText}`);
  return createImageBitmap(await response.blob());
}

/** The thumbnails side by side at one height, as one bitmap. */
async function strip(bitmaps: readonly ImageBitmap[]): Promise<ImageBitmap> {
  const only = bitmaps[0];
  if (bitmaps.length === 1 && only !== undefined) return only;
  const widths = bitmaps.map((bitmap) => Math.round((bitmap.width * THUMB) / bitmap.height));
  const canvas = new OffscreenCanvas(widths.reduce((sum, width) => sum + width, 0), THUMB);
  const ctx = canvas.getContext("2d");
  let x = 0;
  bitmaps.forEach((bitmap, index) => {
    const width = widths[index] ?? 0;
    ctx?.drawImage(bitmap, x, 0, width, THUMB);
    x += width;
    bitmap.close();
  });
  return createImageBitmap(canvas);
}

/**
 * Per node of the graph (`has`), the images of the newest job titled `title` that reported
 * some for it. `jobs` come newest first, as the history lists them; an inner node of a
 * subgraph (`render:save`) shows on its instance.
 */
export function latestImages(jobs: readonly JobView[], title: string, has: (id: string) => boolean): Map<string, readonly ImageRef[]> {
  const latest = new Map<string, readonly ImageRef[]>();
  for (const job of jobs) {
    if (job.title !== title || job.status !== "succeeded") continue;
    for (const [flatId, outputs] of Object.entries(job.outputs)) {
      const node = shownNode(has, flatId);
      const images = imagesIn(outputs);
      if (!has(node) || images.length === 0 || latest.has(node)) continue;
      latest.set(node, images);
    }
  }
  return latest;
}
