/**
 * Run to here with subgraphs: the server runs the flattened graph, where an inner node of
 * instance `render` is `render:sampler` (nested: `outer:inner:node`), so run-to-here targets
 * must name flattened ids or the executor finds nothing to run.
 *
 * A target is given as the id the user sees plus the path of instance ids of the subgraphs
 * open around it (empty at the workflow's top level). A target that is itself a subgraph
 * instance stands for the inner nodes behind its outputs (followed through nested
 * instances), since the instance is not a node of the flattened graph. `flatRunPlan` then
 * lists what those targets need in the flattened graph, and `shownRunPlan` maps that back to
 * the ids a tab shows, for the "queued" marks.
 */

import { flattenSubgraphs, shownNode, subgraphIdOf, SubgraphError, SUBGRAPH_SEPARATOR } from "./subgraph";
import { isWorkflowLink, type SubgraphDefinition, type WorkflowDocument, type WorkflowNode } from "./workflow-document";

type Nodes = Readonly<Record<string, WorkflowNode>>;

/** The flattened ids that running `target` (inside the instances `path`) must reach. */
export function flatRunTargets(document: WorkflowDocument, target: string, path: readonly string[] = []): string[] {
  const definitions = document.subgraphs ?? {};
  let nodes: Nodes = document.nodes;
  for (const instanceId of path) {
    const definition = definitionFor(nodes[instanceId], instanceId, definitions);
    nodes = definition.nodes;
  }
  const prefix = path.map((id) => id + SUBGRAPH_SEPARATOR).join("");
  const found: string[] = [];
  const visit = (levelNodes: Nodes, levelPrefix: string, id: string, stack: readonly string[]): void => {
    const node = levelNodes[id];
    if (node === undefined) return;
    const definitionId = subgraphIdOf(node.type);
    if (definitionId === undefined) {
      if (!found.includes(levelPrefix + id)) found.push(levelPrefix + id);
      return;
    }
    if (stack.includes(definitionId)) throw new SubgraphError(`subgraphs ${[...stack, definitionId].join(" -> ")} contain each other`);
    const definition = definitionFor(node, levelPrefix + id, definitions);
    // Each output's source, in the definition's output order (what the instance offers).
    for (const output of definition.outputs) visit(definition.nodes, levelPrefix + id + SUBGRAPH_SEPARATOR, output.node, [...stack, definitionId]);
  };
  visit(nodes, prefix, target, []);
  return found;
}

function definitionFor(node: WorkflowNode | undefined, id: string, definitions: Readonly<Record<string, SubgraphDefinition>>): SubgraphDefinition {
  const definitionId = node === undefined ? undefined : subgraphIdOf(node.type);
  const definition = definitionId === undefined ? undefined : definitions[definitionId];
  if (definition === undefined) throw new SubgraphError(`node "${id}" is not a subgraph instance this workflow defines`);
  return definition;
}

/** What the flattened `targets` need in the flattened document, dependencies first. */
export function flatRunPlan(document: WorkflowDocument, targets: readonly string[]): string[] {
  const flat = flattenSubgraphs(document).nodes;
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string): void => {
    const node = flat[id];
    if (node === undefined || seen.has(id)) return;
    seen.add(id);
    const sources = Object.values(node.inputs).flatMap((value) => (isWorkflowLink(value) ? [value.node] : []));
    for (const source of [...new Set(sources)].sort()) visit(source);
    order.push(id);
  };
  for (const target of targets) visit(target);
  return order;
}

/** The plan as the tab shows it: inner nodes folded onto the instance they run in, once each. */
export function shownRunPlan(document: WorkflowDocument, targets: readonly string[]): string[] {
  const has = (id: string): boolean => id in document.nodes;
  return [...new Set(flatRunPlan(document, targets).map((id) => shownNode(has, id)))];
}
