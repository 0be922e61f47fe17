import { describe, expect, it } from "vitest";
import { parseCatalog, type NodeSpec } from "../model";
import { catalog } from "../model/test-support";
import { missingNote, modelNeeds } from "./first-run";
import { exampleWorkflows } from "./examples";

/** The fixture catalog with the checkpoint list a fresh install's demo folder gives. */
function withCheckpoints(files: readonly string[]) {
  const specs = catalog.specs.map((spec): NodeSpec => ({
    ...spec,
    inputs: spec.inputs.map((input) => (input.choices_from === "checkpoints" ? { ...input, choices: files } : input)),
  }));
  return parseCatalog(specs);
}

describe("example model needs", () => {
  const txt2img = exampleWorkflows().find((example) => example.name === "txt2img")?.document;

  it("lists the files an example's loaders name and which the server lacks", () => {
    expect(modelNeeds(txt2img, withCheckpoints(["tiny-sd15.safetensors"]))).toEqual([
      { folder: "checkpoints", file: "tiny-sd15.safetensors", present: true },
    ]);
    const needs = modelNeeds(txt2img, withCheckpoints([]));
    expect(needs).toEqual([{ folder: "checkpoints", file: "tiny-sd15.safetensors", present: false }]);
    expect(missingNote(needs)).toBe("needs checkpoints/tiny-sd15.safetensors (missing)");
    expect(missingNote([])).toBeUndefined();
  });

  it("skips input images, which are the user's, not models", () => {
    const img2img = exampleWorkflows().find((example) => example.name === "img2img")?.document;
    expect(modelNeeds(img2img, withCheckpoints(["tiny-sd15.safetensors"])).map((need) => need.folder)).toEqual(["checkpoints"]);
  });
});
