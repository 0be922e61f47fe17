import { describe, expect, it } from "vitest";
import { describeExport, describeImport, type ImportReport } from "./interop";

const report = (over: Partial<ImportReport>): ImportReport => ({ format: "comfy-editor", source: "", mapped: [], unsupported: [], notes: [], ...over });
const mapped = (count: number) => Array.from({ length: count }, (_, index) => ({ node: String(index), comfy_class: "KSampler", type: "sampling.ksampler" }));

describe("import and export notices", () => {
  it("counts mapped nodes and names each unsupported class once", () => {
    expect(describeImport(report({ mapped: mapped(12), unsupported: [{ node: "9", comfy_class: "UpscaleModelLoader", reason: "no node" }] }))).toBe(
      "Imported ComfyUI workflow: 12 nodes mapped, 1 unsupported: UpscaleModelLoader",
    );
    const twice = [
      { node: "9", comfy_class: "UpscaleModelLoader", reason: "no node" },
      { node: "10", comfy_class: "UpscaleModelLoader", reason: "no node" },
      { node: "11", comfy_class: "FreeU", reason: "no node" },
    ];
    expect(describeImport(report({ format: "comfy-api", source: "png tEXt 'prompt'", mapped: mapped(1), unsupported: twice }))).toBe(
      "Imported ComfyUI API prompt (from png tEXt 'prompt'): 1 node mapped, 3 unsupported: UpscaleModelLoader, FreeU",
    );
    expect(describeImport(report({ format: "latentloom", source: "png tEXt 'latentloom'" }))).toBe("Opened Latentloom workflow (from png tEXt 'latentloom')");
  });

  it("lists what an export left out and warned about", () => {
    expect(describeExport({ format: "comfy-api", unexportable: [], warnings: [] }, "a.json")).toBe("Exported ComfyUI API format to a.json");
    expect(
      describeExport(
        { format: "comfy-editor", unexportable: [{ node: "blend", comfy_class: "", reason: "latent.slerp has no ComfyUI class" }], warnings: ["seed control kept as fixed"] },
        "b.json",
      ),
    ).toBe("Exported ComfyUI workflow to b.json\nnot exported (no ComfyUI class): blend (latent.slerp has no ComfyUI class)\nwarning: seed control kept as fixed");
  });
});
