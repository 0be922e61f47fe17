// Entry point: starts the editor and exposes test/benchmark hooks on window.__latentloom.
import "./style.css";
import { startApp } from "./app/app";
import { installTestHooks } from "./app/test-hooks";

const root = document.querySelector<HTMLDivElement>("#app");
if (root === null) throw new Error('index.html must contain <div id="app"></div>');
startApp(root).then(installTestHooks, (error: unknown) => {
  root.textContent = `The editor could not start: ${error instanceof Error ? error.message : String(error)}`;
  root.classList.add("fatal");
});
