/**
 * A uniform grid of buckets over world space, so a frame asks "what is in view?" in time
 * proportional to what is visible rather than to the graph. Nodes are a few hundred pixels
 * wide, so 512-unit cells keep each node in one to four buckets. Updated incrementally from
 * store diffs (see renderer), never rebuilt per frame.
 */

import type { Rect } from "../model";

export class SpatialIndex {
  private readonly buckets = new Map<string, Set<string>>();
  private readonly bounds = new Map<string, Rect>();

  constructor(readonly cellSize = 512) {}

  get size(): number {
    return this.bounds.size;
  }

  boundsOf(id: string): Rect | undefined {
    return this.bounds.get(id);
  }

  set(id: string, rect: Rect): void {
    const previous = this.bounds.get(id);
    if (previous !== undefined) {
      if (sameCells(this.cellRange(previous), this.cellRange(rect))) {
        this.bounds.set(id, rect);
        return;
      }
      this.delete(id);
    }
    this.bounds.set(id, rect);
    this.forCells(rect, (key) => {
      let bucket = this.buckets.get(key);
      if (bucket === undefined) {
        bucket = new Set();
        this.buckets.set(key, bucket);
      }
      bucket.add(id);
    });
  }

  delete(id: string): void {
    const rect = this.bounds.get(id);
    if (rect === undefined) return;
    this.bounds.delete(id);
    this.forCells(rect, (key) => {
      const bucket = this.buckets.get(key);
      bucket?.delete(id);
      if (bucket?.size === 0) this.buckets.delete(key);
    });
  }

  clear(): void {
    this.buckets.clear();
    this.bounds.clear();
  }

  /** Ids whose bounds intersect `rect` (each once, exact test after the bucket lookup). */
  query(rect: Rect): string[] {
    const found = new Set<string>();
    const [x0, y0, x1, y1] = this.cellRange(rect);
    // A huge query (zoomed far out) would visit many empty cells; scanning every entry is
    // cheaper then.
    if ((x1 - x0 + 1) * (y1 - y0 + 1) > this.buckets.size) {
      for (const [id, bounds] of this.bounds) if (intersects(bounds, rect)) found.add(id);
      return [...found];
    }
    for (let cx = x0; cx <= x1; cx += 1) {
      for (let cy = y0; cy <= y1; cy += 1) {
        const bucket = this.buckets.get(`${cx},${cy}`);
        if (bucket === undefined) continue;
        for (const id of bucket) {
          if (found.has(id)) continue;
          const bounds = this.bounds.get(id);
          if (bounds !== undefined && intersects(bounds, rect)) found.add(id);
        }
      }
    }
    return [...found];
  }

  private cellRange(rect: Rect): [number, number, number, number] {
    const size = this.cellSize;
    return [
      Math.floor(rect[0] / size),
      Math.floor(rect[1] / size),
      Math.floor((rect[0] + rect[2]) / size),
      Math.floor((rect[1] + rect[3]) / size),
    ];
  }

  private forCells(rect: Rect, visit: (key: string) => void): void {
    const [x0, y0, x1, y1] = this.cellRange(rect);
    for (let cx = x0; cx <= x1; cx += 1) for (let cy = y0; cy <= y1; cy += 1) visit(`${cx},${cy}`);
  }
}

function sameCells(a: readonly number[], b: readonly number[]): boolean {
  return a.every((value, index) => value === b[index]);
}

function intersects(a: Rect, b: Rect): boolean {
  return a[0] <= b[0] + b[2] && b[0] <= a[0] + a[2] && a[1] <= b[1] + b[3] && b[1] <= a[1] + a[3];
}
