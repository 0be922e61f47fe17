/** The editor's graph model: records, store, undo, wiring rules, catalog, search, clipboard, files. */

export * from "./catalog";
export * from "./clipboard";
export * from "./connect";
export * from "./diff";
export * from "./groups";
export * from "./ids";
export * from "./json";
export * from "./json-text";
export * from "./layout";
export * from "./nodes";
export * from "./placeholder";
export * from "./records";
export * from "./reroutes";
export * from "./search";
export * from "./store";
export * from "./subgraph";
export * from "./subgraph-catalog";
export * from "./subgraph-edit";
export * from "./subgraph-run";
export * from "./undo";
export * from "./workflow";
export * from "./workflow-document";
