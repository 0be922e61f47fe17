// Editor benchmark: headless Debian Chromium (software rendering) against a real server.
//   node bench/editor/bench.mjs        (after `npm run build`)
// Measures, each against a baseline taken in the same run:
//   1. panning a generated 1,000-node workflow: frame interval p50/p95 and main-thread
//      script ms per frame (baseline: the 7-node txt2img example);
//   2. loading a 1,000-node workflow: parse + validate + first frame (baseline: txt2img);
//   3. JS heap after opening and closing the 1,000-node workflow ten times (baseline: the
//      heap before the first open).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, launchBrowser, openEditor, startServer } from "../../tests/browser/support.mjs";
import { generateWorkflow } from "../../tests/browser/generate.mjs";
import { subgraphBench } from "./subgraphs.mjs";

const FRAMES = 240;
const thousand = generateWorkflow(1000);
const txt2img = JSON.parse(readFileSync(join(ROOT, "workflows/txt2img.json"), "utf8"));

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const fmt = (value) => value.toFixed(2);

async function pan(page, cdp, document, name) {
  await page.evaluate(([doc, tabName]) => window.__latentloom.openDocument(doc, tabName), [document, name]);
  await page.evaluate(() => window.__latentloom.setView({ scale: 1, offset: [0, 0] }));
  await page.evaluate(() => window.__latentloom.frames(5));
  const before = await cdp.send("Performance.getMetrics");
  // Pan by 6 px per frame, as a drag would, and time every frame the renderer draws.
  const result = await page.evaluate((frames) => new Promise((done) => {
    const hooks = window.__latentloom;
    const intervals = [];
    const script = [];
    const drawn = [];
    let last = performance.now();
    let left = frames;
    const step = () => {
      const now = performance.now();
      intervals.push(now - last);
      last = now;
      script.push(hooks.stats.lastFrameMs);
      drawn.push(hooks.stats.nodesDrawnLastFrame);
      if (left-- === 0) {
        done({ intervals: intervals.slice(2), script: script.slice(2), drawn });
        return;
      }
      const view = hooks.view();
      hooks.setView({ scale: view.scale, offset: [view.offset[0] - 6, view.offset[1] - 2] });
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }), FRAMES);
  const after = await cdp.send("Performance.getMetrics");
  const metric = (metrics, key) => metrics.metrics.find((entry) => entry.name === key)?.value ?? 0;
  const scriptPerFrame = ((metric(after, "ScriptDuration") - metric(before, "ScriptDuration")) * 1000) / FRAMES;
  const drawsStats = await page.evaluate(() => ({ ...window.__latentloom.stats }));
  await page.evaluate(() => window.__latentloom.closeActive());
  return {
    p50: percentile(result.intervals, 50),
    p95: percentile(result.intervals, 95),
    drawP50: percentile(result.script, 50),
    drawP95: percentile(result.script, 95),
    scriptPerFrame,
    maxDrawn: Math.max(...result.drawn),
    total: drawsStats.totalNodes,
  };
}

async function load(page, document, runs = 7) {
  const text = JSON.stringify(document);
  const results = [];
  for (let index = 0; index < runs; index += 1) results.push(await page.evaluate((t) => window.__latentloom.benchLoad(t), text));
  const measured = results.slice(2); // the first runs warm up the JIT
  return {
    total: percentile(measured.map((r) => r.totalMs), 50),
    parse: percentile(measured.map((r) => r.parseMs), 50),
    validate: percentile(measured.map((r) => r.loadMs), 50),
    frame: percentile(measured.map((r) => r.firstFrameMs), 50),
  };
}

/** 83 txt2img graphs sharing one Load Checkpoint: 499 nodes, one connected graph with a hub. */
function sharedCheckpointGraph(copies = 83) {
  const nodes = { checkpoint: txt2img.nodes.checkpoint };
  for (let copy = 0; copy < copies; copy += 1) {
    for (const [id, node] of Object.entries(txt2img.nodes)) {
      if (id === "checkpoint") continue;
      const inputs = Object.fromEntries(Object.entries(node.inputs).map(([name, value]) => [
        name,
        typeof value === "object" && value !== null && "node" in value ? { ...value, node: value.node === "checkpoint" ? "checkpoint" : `${value.node}_${copy}` } : value,
      ]));
      nodes[`${id}_${copy}`] = { ...node, inputs, ui: { pos: [(copy % 10) * 260, Math.floor(copy / 10) * 200] } };
    }
  }
  return { ...txt2img, nodes };
}

/** Arrange (the editor's command, one undo step) on an open graph: median of 5, ms. */
async function arrangeMs(page, document, name) {
  await page.evaluate(([doc, tabName]) => window.__latentloom.openDocument(doc, tabName), [document, name]);
  const times = [];
  for (let run = 0; run < 5; run += 1) {
    times.push(await page.evaluate(() => {
      const started = performance.now();
      window.__latentloom.app.run("arrange");
      return performance.now() - started;
    }));
  }
  await page.evaluate(() => window.__latentloom.closeActive());
  return percentile(times, 50);
}

async function heap(page, cdp) {
  await cdp.send("HeapProfiler.collectGarbage");
  await cdp.send("HeapProfiler.collectGarbage");
  return (await cdp.send("Runtime.getHeapUsage")).usedSize / 1e6;
}

const server = await startServer();
const chrome = await launchBrowser();
try {
  const page = await openEditor(chrome.context, server.url);
  const cdp = await chrome.context.newCDPSession(page);
  await cdp.send("Performance.enable");
  console.log(`browser: Chromium ${chrome.version} (headless, software rendering)`);
  console.log(`flags: ${chrome.args.join(" ")}`);
  console.log("viewport: 1400x900, device pixel ratio 1\n");

  const smallPan = await pan(page, cdp, txt2img, "bench txt2img");
  const bigPan = await pan(page, cdp, thousand, "bench thousand");
  console.log(`pan (${FRAMES} frames)        txt2img (7 nodes)   1,000 nodes   ratio`);
  console.log(`  frame interval p50 ms   ${fmt(smallPan.p50).padStart(8)}          ${fmt(bigPan.p50).padStart(8)}   ${fmt(bigPan.p50 / smallPan.p50)}`);
  console.log(`  frame interval p95 ms   ${fmt(smallPan.p95).padStart(8)}          ${fmt(bigPan.p95).padStart(8)}   ${fmt(bigPan.p95 / smallPan.p95)}   (target <= 16.7)`);
  console.log(`  draw script p50 ms      ${fmt(smallPan.drawP50).padStart(8)}          ${fmt(bigPan.drawP50).padStart(8)}   ${fmt(bigPan.drawP50 / smallPan.drawP50)}`);
  console.log(`  draw script p95 ms      ${fmt(smallPan.drawP95).padStart(8)}          ${fmt(bigPan.drawP95).padStart(8)}   ${fmt(bigPan.drawP95 / smallPan.drawP95)}`);
  console.log(`  all script per frame ms ${fmt(smallPan.scriptPerFrame).padStart(8)}          ${fmt(bigPan.scriptPerFrame).padStart(8)}   ${fmt(bigPan.scriptPerFrame / smallPan.scriptPerFrame)}   (target <= 4)`);
  console.log(`  nodes drawn (max/total) ${`${smallPan.maxDrawn}/${smallPan.total}`.padStart(8)}          ${`${bigPan.maxDrawn}/${bigPan.total}`.padStart(8)}\n`);

  const smallLoad = await load(page, txt2img);
  const bigLoad = await load(page, thousand);
  console.log("load (median of 5)         txt2img (7 nodes)   1,000 nodes   ratio");
  console.log(`  parse ms                ${fmt(smallLoad.parse).padStart(8)}          ${fmt(bigLoad.parse).padStart(8)}`);
  console.log(`  validate + build ms     ${fmt(smallLoad.validate).padStart(8)}          ${fmt(bigLoad.validate).padStart(8)}`);
  console.log(`  first frame ms          ${fmt(smallLoad.frame).padStart(8)}          ${fmt(bigLoad.frame).padStart(8)}`);
  console.log(`  total ms                ${fmt(smallLoad.total).padStart(8)}          ${fmt(bigLoad.total).padStart(8)}   ${fmt(bigLoad.total / smallLoad.total)}   (target <= 100)\n`);

  const baseline = await heap(page, cdp);
  for (let round = 0; round < 10; round += 1) {
    await page.evaluate((doc) => window.__latentloom.openDocument(doc, "bench heap"), thousand);
    await page.evaluate(() => window.__latentloom.frames(2));
    await page.evaluate(() => window.__latentloom.closeActive());
    await page.evaluate(() => window.__latentloom.frames(2));
  }
  await page.waitForFunction(() => window.__latentloom.pendingWrites() === 0);
  const afterTen = await heap(page, cdp);
  console.log("heap (after GC)");
  console.log(`  baseline MB             ${fmt(baseline).padStart(8)}`);
  console.log(`  after 10x open/close MB ${fmt(afterTen).padStart(8)}   ratio ${fmt(afterTen / baseline)}   (target ~1.0)`);

  const hub = sharedCheckpointGraph();
  const smallArrange = await arrangeMs(page, txt2img, "bench arrange txt2img");
  const bigArrange = await arrangeMs(page, hub, "bench arrange 499");
  console.log(`\nauto-layout (Arrange, median of 5)   txt2img (7 nodes)   ${Object.keys(hub.nodes).length} nodes   ratio`);
  console.log(`  ms                                ${fmt(smallArrange).padStart(8)}          ${fmt(bigArrange).padStart(8)}   ${fmt(bigArrange / smallArrange)}`);
  await subgraphBench(page); // opening a workflow with 20 subgraphs
  if (page.errors.length > 0) console.log(`\npage errors: ${page.errors.join("; ")}`);
} finally {
  await chrome.close();
  await server.stop();
}
