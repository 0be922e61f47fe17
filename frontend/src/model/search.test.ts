import { describe, expect, it } from "vitest";
import { parseCatalog } from "./catalog";
import catalogJson from "./fixtures/catalog.json";
import { searchNodes } from "./search";
import { catalog } from "./test-support";

function names(query: string, options = {}): string[] {
  return searchNodes(catalog, query, options).map((result) => result.spec.display_name);
}

describe("searchNodes", () => {
  it("ranks a prefix of the display name first", () => {
    expect(names("ksam")[0]).toBe("KSampler");
    expect(names("vae").slice(0, 2)).toEqual(["VAE Decode", "VAE Encode"]);
    expect(names("save").slice(0, 2)).toEqual(["Save Animation", "Save Image"]);
  });

  it("ranks a word start above a match inside a word", () => {
    // "Add Noise" has "noise" as a word; KSampler's description only has "Denoises".
    expect(names("noise")[0]).toBe("Add Noise");
    expect(names("decode")[0]).toBe("VAE Decode");
  });

  it("matches initials and scattered letters in names", () => {
    expect(names("lc")[0]).toBe("Load Checkpoint");
    expect(names("ksmplr")).toEqual(["KSampler"]);
  });

  it("requires every word to match", () => {
    expect(names("empty latent")).toEqual(["Empty Latent"]);
    expect(names("latent up")[0]).toBe("Latent Upscale");
    expect(names("zzz")).toEqual([]);
  });

  it("finds nodes by their aliases, ComfyUI's class names", () => {
    const withAliases = parseCatalog(
      (catalogJson as { id: string }[]).map((spec) =>
        spec.id === "conditioning.encode_prompt" ? { ...spec, aliases: ["CLIPTextEncode", "CLIP Text Encode (Prompt)"] } : spec,
      ),
    );
    const found = (query: string): string[] => searchNodes(withAliases, query).map((result) => result.spec.display_name);
    expect(found("CLIPTextEncode")).toEqual(["Encode Prompt"]);
    expect(found("clip text encode")[0]).toBe("Encode Prompt");
    expect(names("CLIPTextEncode")).toEqual([]); // the same catalog without aliases
    expect(() => parseCatalog([{ ...(catalogJson as object[])[0], aliases: "KSampler" }])).toThrow(/"aliases" must be a list of strings/);
  });

  it("finds nodes by id and category too", () => {
    expect(names("lora")[0]).toBe("LoRA Loader");
    expect(names("encode_prompt")).toEqual(["Encode Prompt"]);
  });

  it("offers only nodes that can take a dragged link, with the socket to use", () => {
    const results = searchNodes(catalog, "", { socketType: "LATENT", direction: "input" });
    expect(results.map((result) => [result.spec.id, result.socket])).toEqual([
      ["image.vae_decode", "latent"],
      ["latent.add_noise", "latent"],
      ["latent.interpolate", "a"],
      ["latent.upscale", "latent"],
      ["sampling.ksampler", "latent"],
    ]);
    expect(names("", { socketType: "IMAGE", direction: "output" })).toEqual(["Load Image", "VAE Decode"]);
    expect(names("sam", { socketType: "CLIP", direction: "input" })).toEqual([]);
    // Names outrank a description ("...prompts longer than 77 tokens").
    expect(names("lo", { socketType: "CLIP" })).toEqual(["Load Checkpoint", "LoRA Loader", "Encode Prompt"]);
  });

  it("ranks a node whose whole name was typed first", () => {
    expect(names("save image")[0]).toBe("Save Image");
  });
});
