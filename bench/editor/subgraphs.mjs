// Editor benchmark, subgraph part: opening a workflow that holds 20 subgraphs, each used
// once (parse + validate + build the store + first frame, in the browser), against the
// txt2img example measured in the same run. (The pan and load figures of bench.mjs are taken
// with every side panel open: preview, queue, outputs and the library, listing its models.)
//   node bench/editor/subgraphs.mjs        (after `npm run build`)
// bench.mjs calls `subgraphBench(page)` too, so `npm run bench:editor` prints it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, launchBrowser, openEditor, startServer } from "../../tests/browser/support.mjs";

const fmt = (value) => value.toFixed(2);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** txt2img with its three render nodes folded into a subgraph, 20 times over (20 definitions). */
export function twentySubgraphs(count = 20) {
  const fixture = JSON.parse(readFileSync(join(ROOT, "tests/fixtures/subgraphs/txt2img_render.json"), "utf8"));
  const nodes = {
    checkpoint: fixture.nodes.checkpoint,
    positive: fixture.nodes.positive,
    negative: fixture.nodes.negative,
  };
  const subgraphs = {};
  for (let index = 0; index < count; index += 1) {
    const id = `render_${index}`;
    subgraphs[id] = { ...fixture.subgraphs.render, name: `Render ${index}` };
    const x = 940 + (index % 5) * 520;
    const y = 60 + Math.floor(index / 5) * 360;
    nodes[id] = { ...fixture.nodes.render, type: `subgraph:${id}`, ui: { pos: [x, y] } };
    nodes[`save_${index}`] = { ...fixture.nodes.save, inputs: { ...fixture.nodes.save.inputs, images: { node: id, output: "image" } }, ui: { pos: [x + 260, y] } };
  }
  return { ...fixture, nodes, subgraphs, meta: { title: `${count} subgraphs` } };
}

async function loadMs(page, document, runs = 9) {
  const text = JSON.stringify(document);
  const totals = [];
  for (let index = 0; index < runs; index += 1) totals.push((await page.evaluate((t) => window.__latentloom.benchLoad(t), text)).totalMs);
  return median(totals.slice(2)); // the first runs warm up the JIT
}

export async function subgraphBench(page) {
  const txt2img = JSON.parse(readFileSync(join(ROOT, "workflows/txt2img.json"), "utf8"));
  const twenty = twentySubgraphs();
  const small = await loadMs(page, txt2img);
  const big = await loadMs(page, twenty);
  const inner = Object.values(twenty.subgraphs).reduce((sum, definition) => sum + Object.keys(definition.nodes).length, 0);
  console.log(`\nopen a workflow with subgraphs (median of 7)   txt2img (7 nodes)   20 subgraphs (${Object.keys(twenty.nodes).length} nodes, ${inner} inside)   ratio`);
  console.log(`  parse + validate + build + first frame ms   ${fmt(small).padStart(8)}          ${fmt(big).padStart(8)}   ${fmt(big / small)}   (target <= 100 ms)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await startServer();
  const chrome = await launchBrowser();
  try {
    const page = await openEditor(chrome.context, server.url);
    console.log(`browser: Chromium ${chrome.version} (headless, software rendering)`);
    await subgraphBench(page);
    if (page.errors.length > 0) console.log(`\npage errors: ${page.errors.join("; ")}`);
  } finally {
    await chrome.close();
    await server.stop();
  }
}
