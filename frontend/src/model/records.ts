/**
 * The records the editor store holds. Every record is immutable: a change replaces the
 * record with a new object, so a diff can hold `[before, after]` by reference and undo never
 * needs deep copies.
 *
 * Links are records of their own (not values inside a node's inputs) so that wiring changes
 * show up in diffs as link additions and removals, the way the renderer and server sync want
 * them. Node ids and reroute ids share one namespace because either can be a link endpoint.
 */

import type { JsonObject } from "./json";
import type { NodeMode, SubgraphDefinition } from "./workflow-document";

export type Vec2 = readonly [x: number, y: number];
export type Rect = readonly [x: number, y: number, width: number, height: number];

/** A bigint only for integers beyond ±2^53 (64-bit seeds), which a number would round. */
export type Scalar = number | bigint | string | boolean;
/** A widget value; `accepts_list` widgets (e.g. interpolation ratios) may hold a list. */
export type LiteralValue = Scalar | readonly Scalar[];

/** Where a link starts: an output of a node, or the single output of a reroute. */
export interface OutputRef {
  readonly node: string;
  readonly output: string;
}

/** Where a link ends: an input of a node, or the single input of a reroute. */
export interface InputRef {
  readonly node: string;
  readonly input: string;
}

export interface NodeRecord {
  readonly id: string;
  /** Catalog id, e.g. "sampling.ksampler". Types the catalog lacks are kept, not dropped. */
  readonly type: string;
  readonly title?: string;
  readonly pos: Vec2;
  /** Absent means "size from the catalog spec"; only a user resize sets it. */
  readonly size?: Vec2;
  readonly collapsed: boolean;
  /**
   * Literal widget values. A linked widget keeps its last literal here, so unlinking restores
   * what the user had typed; the link (a LinkRecord) wins when the graph is saved or run.
   */
  readonly inputs: Readonly<Record<string, LiteralValue>>;
  /**
   * "mute" (it and what only it feeds don't run) or "bypass" (inputs pass through). Absent
   * means "run", as in the file, so records of running nodes look as they always did and a
   * mode set back to "run" removes the key rather than storing the default.
   */
  readonly mode?: Exclude<NodeMode, "run">;
  /** `ui` keys this editor does not interpret, kept so a load/save round trip loses nothing. */
  readonly extraUi?: JsonObject;
}

export interface LinkRecord {
  /** Always `linkIdFor(to)`: an input holds at most one link, so its address is the id. */
  readonly id: string;
  readonly from: OutputRef;
  readonly to: InputRef;
}

export interface GroupRecord {
  readonly id: string;
  readonly title: string;
  readonly rect: Rect;
  /** Absent means the theme's default group colour. */
  readonly color?: string;
  /** Group fields this editor does not interpret, kept for the round trip. */
  readonly extra?: JsonObject;
}

/**
 * A pass-through point that lets a link take a tidy route (and fan out). It has one input
 * (`REROUTE_INPUT`) and one output (`REROUTE_OUTPUT`); it carries the type of whatever is
 * plugged into it and is untyped while nothing is.
 */
export interface RerouteRecord {
  readonly id: string;
  readonly pos: Vec2;
  readonly type?: string;
}

/** The single record for document-level editor state (`meta` of the workflow file). */
export interface DocumentRecord {
  readonly id: typeof DOCUMENT_ID;
  readonly meta: JsonObject;
  /** The workflow's subgraph definitions by id (model/subgraph.ts); absent when it has none. */
  readonly subgraphs?: Readonly<Record<string, SubgraphDefinition>>;
}

export const DOCUMENT_ID = "document";
export const REROUTE_INPUT = "in";
export const REROUTE_OUTPUT = "out";

export interface RecordTypes {
  node: NodeRecord;
  link: LinkRecord;
  group: GroupRecord;
  reroute: RerouteRecord;
  document: DocumentRecord;
}

export type RecordKind = keyof RecordTypes;

export const RECORD_KINDS: readonly RecordKind[] = ["node", "link", "group", "reroute", "document"];

/**
 * The id of the link into `to`. Deriving it from the target makes "one link per input"
 * structural: connecting a new source to a linked input is an update of the same record, so
 * two tabs that wire the same input converge instead of leaving two links.
 */
export function linkIdFor(to: InputRef): string {
  return `${to.node}:${to.input}`;
}
