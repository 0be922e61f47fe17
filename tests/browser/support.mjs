// Shared set-up for the browser tests and the editor benchmark: a real `latentloom serve`
// on a free loopback port with a fresh data folder, and Debian's Chromium driven by
// playwright-core (no downloaded browsers).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = join(ROOT, "test-artifacts", "browser");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Starts the server; resolves once the catalog answers. `stop()` ends it and removes its data. */
export async function startServer() {
  const data = mkdtempSync(join(tmpdir(), "ll-browser-"));
  const port = await freePort();
  const bin = process.env.LATENTLOOM_BIN ?? join(ROOT, ".venv/bin/latentloom");
  const child = spawn(bin, ["serve", "--port", String(port), "--data", data, "--device", "cpu"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (chunk) => (log += chunk));
  child.stderr.on("data", (chunk) => (log += chunk));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`latentloom serve exited with ${child.exitCode}:\n${log}`);
    try {
      const response = await fetch(`${url}/api/nodes`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`latentloom serve did not answer within 60 s:\n${log}`);
    await new Promise((done) => setTimeout(done, 200));
  }
  const index = await fetch(`${url}/`);
  if (!index.ok) throw new Error(`the server does not serve the editor at / (${index.status}); run "npm run build" first`);
  return {
    url,
    data,
    log: () => log,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((done) => {
        if (child.exitCode !== null) done();
        else child.once("exit", done);
      });
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/**
 * Chromium with a fresh profile (Playwright gives `launch` a new temporary user-data folder
 * every time, removed on close), so runs never share localStorage or caches.
 */
export async function launchBrowser(extraArgs = []) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs], headless: true });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  return {
    browser,
    context,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    version: browser.version(),
    async close() {
      await browser.close();
    },
  };
}

/**
 * Opens the editor and waits until it is ready (hooks installed, a tab shown). Unless
 * `firstVisit` is set, the browser is a returning one with nothing open (an empty tab, no
 * first-run example, no hint bar), which is what most tests start from.
 */
export async function openEditor(context, url, { firstVisit = false } = {}) {
  if (!firstVisit) {
    await context.addInitScript(() => {
      if (localStorage.getItem("latentloom.openTabs") === null) localStorage.setItem("latentloom.openTabs", "[]");
      localStorage.setItem("latentloom.hintsDone", "1");
    });
  }
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(url);
  await page.waitForFunction(() => window.__latentloom?.tabName() !== undefined && window.__latentloom.connected(), null, { timeout: 15_000 });
  page.errors = errors;
  return page;
}

export function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

export const hooks = (page, fn, arg) => page.evaluate(fn, arg);

/** Drags with real mouse events from one page point to another. */
export async function drag(page, from, to) {
  await page.mouse.move(from[0], from[1]);
  await page.mouse.down();
  await page.mouse.move((from[0] + to[0]) / 2, (from[1] + to[1]) / 2, { steps: 4 });
  await page.mouse.move(to[0], to[1], { steps: 4 });
  await page.mouse.up();
}

export async function canvasOrigin(page) {
  const box = await page.locator(".layer-interactive").boundingBox();
  return [box.x, box.y];
}

export function cleanup(path) {
  rmSync(path, { recursive: true, force: true });
}
