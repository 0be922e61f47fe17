import { describe, expect, it } from "vitest";
import { DocumentTab } from "../app/document-tab";
import { SubgraphCatalog } from "./subgraph-catalog";
import { catalog } from "./test-support";
import originalText from "../../../tests/fixtures/subgraphs/txt2img.json?raw";
import renderText from "../../../tests/fixtures/subgraphs/txt2img_render.json?raw";

describe("subgraph definitions that arrive as a change", () => {
  it("give their instances specs, as a remote edit or a redo brings them", () => {
    const subgraphs = new SubgraphCatalog(catalog);
    const tab = new DocumentTab("t", JSON.parse(originalText), subgraphs, () => undefined, () => undefined);
    const render = (JSON.parse(renderText) as { subgraphs: Record<string, never> }).subgraphs;
    expect(subgraphs.get("subgraph:render")).toBeUndefined();
    tab.store.transact("remote", (tx) => tx.put("document", { ...tx.document, subgraphs: render }), { origin: "remote" });
    expect(subgraphs.get("subgraph:render")?.inputs.map((input) => input.name)).toEqual(["model", "positive", "negative", "vae"]);
    tab.dispose();
  });
});
