/**
 * The example workflows from the repository's workflows/ folder, bundled at build time (the
 * server has no examples route): the same files the backend tests validate and run.
 */

const files = import.meta.glob<unknown>("../../../workflows/*.json", { eager: true, import: "default" });

export function exampleWorkflows(): { name: string; document: unknown }[] {
  return Object.entries(files)
    .map(([path, document]) => ({ name: (path.split("/").at(-1) ?? path).replace(/\.json$/, ""), document }))
    .sort((a, b) => a.name.localeCompare(b.name));
}
