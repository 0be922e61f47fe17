/**
 * Node specs for subgraph instances. An instance (`subgraph:<id>`) has no entry in the
 * server's catalog; its sockets are its definition's inputs and outputs. A
 * `SubgraphCatalog` is the server catalog plus the specs of every definition a loaded
 * document carries, so geometry, wiring rules and the renderer treat instances like any
 * other node. Definitions are registered as documents load and as subgraphs are made or
 * edited; a newer registration of an id replaces the older (the geometry cache sees a new
 * spec object and lays the node out again).
 */

import { Catalog, isValueType, type InputSpec, type NodeSpec, type OutputSpec, type ValueType } from "./catalog";
import { instanceType } from "./subgraph";
import type { SubgraphDefinition } from "./workflow-document";

export const SUBGRAPH_CATEGORY = "subgraphs";

/** The spec of an instance of `definition`: every input optional (inner values are defaults). */
export function subgraphSpec(definitionId: string, definition: SubgraphDefinition): NodeSpec {
  const inputs: InputSpec[] = definition.inputs.map((input) => ({
    name: input.name,
    type: valueType(input.type),
    kind: "socket",
    required: false,
    optional: true,
  }));
  const outputs: OutputSpec[] = definition.outputs.map((output) => ({ name: output.name, type: valueType(output.type) }));
  return {
    id: instanceType(definitionId),
    display_name: definition.name,
    category: SUBGRAPH_CATEGORY,
    description: definition.description ?? `Subgraph of ${Object.keys(definition.nodes).length} nodes (revision ${definition.revision ?? 1}).`,
    version: definition.revision ?? 1,
    inputs,
    outputs,
    output_node: false,
    nondeterministic: false,
  };
}

// A hand-edited file may name a type the editor does not know; draw it as a latent socket
// rather than refuse the document (the backend validates the real wiring).
function valueType(type: string): ValueType {
  return isValueType(type) ? type : "LATENT";
}

export class SubgraphCatalog extends Catalog {
  private readonly defined = new Map<string, NodeSpec>();

  constructor(base: Catalog) {
    super(base.specs);
  }

  /** Registers (or replaces) the specs of these definitions. */
  define(definitions: Readonly<Record<string, SubgraphDefinition>> | undefined): void {
    for (const [id, definition] of Object.entries(definitions ?? {})) {
      const spec = subgraphSpec(id, definition);
      const old = this.defined.get(spec.id);
      if (old === undefined || JSON.stringify(old) !== JSON.stringify(spec)) this.defined.set(spec.id, spec);
    }
  }

  override get(type: string): NodeSpec | undefined {
    return super.get(type) ?? this.defined.get(type);
  }

  override input(type: string, name: string): InputSpec | undefined {
    return this.get(type)?.inputs.find((input) => input.name === name);
  }

  override output(type: string, name: string): OutputSpec | undefined {
    return this.get(type)?.outputs.find((output) => output.name === name);
  }

  /** Every spec, the registered subgraphs last (the node library lists them). */
  allSpecs(): readonly NodeSpec[] {
    return [...this.specs, ...this.defined.values()];
  }
}

/** Registers a document's definitions when the catalog can hold them (a plain one cannot). */
export function defineSubgraphs(catalog: Catalog, definitions: Readonly<Record<string, SubgraphDefinition>> | undefined): void {
  if (catalog instanceof SubgraphCatalog) catalog.define(definitions);
}
