import { describe, expect, it } from "vitest";
import type { JobView } from "../api/types";
import { latestImages } from "./node-results";

let sequence = 0;
function job(title: string | null, outputs: Record<string, unknown>, status: JobView["status"] = "succeeded"): JobView {
  sequence += 1;
  return {
    id: `job-${sequence}`,
    title,
    workflow_hash: "hash",
    status,
    priority: 0,
    attempts: 1,
    client_id: null,
    created_at: sequence,
    started_at: sequence,
    finished_at: sequence,
    error: null,
    error_node: null,
    outputs,
    nodes: {},
    workflow: null,
  };
}
const image = (filename: string): { images: { filename: string; subfolder: string; type: string }[] } => ({ images: [{ filename, subfolder: "", type: "output" }] });
const graph = new Set(["save", "preview", "render"]);
const has = (id: string): boolean => graph.has(id);

describe("result strips restored from the job history", () => {
  it("takes per node the newest job of this workflow that reported images for it", () => {
    // Newest first, as GET /api/jobs lists the history.
    const jobs = [
      job("Other", { save: image("other.png") }),
      job("Mine", { preview: { images: [] } }), // a run to here without images for these nodes
      job("Mine", { save: image("new.png") }, "failed"),
      job("Mine", { save: image("newest.png") }),
      job("Mine", { save: image("older.png"), preview: image("preview.png") }),
      job(null, { preview: image("untitled.png") }),
    ];
    const latest = latestImages(jobs, "Mine", has);
    expect([...latest.keys()]).toEqual(["save", "preview"]);
    expect(latest.get("save")).toEqual([{ filename: "newest.png", subfolder: "", type: "output" }]);
    expect(latest.get("preview")).toEqual([{ filename: "preview.png", subfolder: "", type: "output" }]);
  });

  it("shows an inner node's images on its subgraph instance and skips nodes the graph lacks", () => {
    const jobs = [job("Mine", { "render:save": { images: [{ filename: "a.png" }, { filename: "b.png", subfolder: "x" }] }, gone: image("gone.png") })];
    const latest = latestImages(jobs, "Mine", has);
    expect([...latest.entries()]).toEqual([
      [
        "render",
        [
          { filename: "a.png", subfolder: "" },
          { filename: "b.png", subfolder: "x" },
        ],
      ],
    ]);
  });
});
