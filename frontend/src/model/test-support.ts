/**
 * Shared fixtures for the model tests: the real catalog the backend serves (copied into
 * fixtures/catalog.json), plus one test-only node with widget-typed outputs, since no
 * built-in node outputs an INT yet and "a widget input accepts a link of its type" needs one.
 */

import { parseCatalog, type Catalog, type NodeSpec } from "./catalog";
import catalogJson from "./fixtures/catalog.json";
import { fromWorkflow } from "./workflow";
import type { Store } from "./store";

export const catalog: Catalog = parseCatalog(catalogJson);

const NUMBER_SOURCE: NodeSpec = {
  id: "test.numbers",
  display_name: "Numbers",
  category: "test",
  description: "Test-only node with INT and FLOAT outputs.",
  version: 1,
  inputs: [],
  outputs: [
    { name: "int", type: "INT" },
    { name: "float", type: "FLOAT" },
  ],
  output_node: false,
  nondeterministic: false,
};

export const catalogWithNumbers: Catalog = parseCatalog([...catalog.specs, NUMBER_SOURCE]);

const workflowFiles = import.meta.glob<string>("../../../workflows/*.json", {
  query: "?raw",
  import: "default",
  eager: true,
});

/** Every example workflow as text, keyed by file name. */
export function exampleWorkflows(): Map<string, string> {
  return new Map(Object.entries(workflowFiles).map(([path, text]) => [path.split("/").at(-1) ?? path, text]));
}

export function exampleText(name: string): string {
  const text = exampleWorkflows().get(name);
  if (text === undefined) throw new Error(`no example workflow ${name}`);
  return text;
}

export function loadExample(name: string, withCatalog: Catalog = catalog): Store {
  return fromWorkflow(JSON.parse(exampleText(name)), withCatalog);
}
