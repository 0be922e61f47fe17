/**
 * Prints, as one JSON line, the Arrange positions of every example workflow, computed with
 * the renderer's node geometry over the full catalog. Run by arrange_examples.py.
 */

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { nodeLayout } from "../src/canvas/geometry";
import { fromWorkflow, parseCatalog, type Vec2 } from "../src/model";
import { arrangePositions } from "../src/model/auto-layout-arrange";
import { canvasBoxOf } from "../src/model/auto-layout-support";

const folder = join(import.meta.dirname, "../../workflows");
const catalog = parseCatalog(JSON.parse(readFileSync(join(import.meta.dirname, "../src/model/fixtures/catalog-all.json"), "utf8")));
const result: Record<string, Record<string, Vec2>> = {};
for (const name of readdirSync(folder).filter((file) => file.endsWith(".json")).sort()) {
  const store = fromWorkflow(JSON.parse(readFileSync(join(folder, name), "utf8")), catalog);
  result[name] = Object.fromEntries(arrangePositions(store, canvasBoxOf(catalog, nodeLayout)));
}
console.log(JSON.stringify(result));
