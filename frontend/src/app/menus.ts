/**
 * The entries of the four right-click menus (canvas, node, link, group). Each entry calls a
 * store function from menu-actions.ts or an editor command, so a menu is a list, not logic.
 */

import type { BoxOf } from "../model/auto-layout-arrange";
import { disconnect, linkIdFor, placeholderOf, type Catalog, type Vec2 } from "../model";
import type { MenuEntry } from "../ui/context-menu";
import type { DocumentTab } from "./document-tab";
import type { Action } from "./keys";
import {
  GROUP_COLORS,
  NODE_COLORS,
  cloneNodes,
  deleteLink,
  fitGroupToNodes,
  groupNodes,
  insertReroute,
  isPinned,
  nodesByCategory,
  removeGroup,
  setGroupColor,
  setNodeColor,
  togglePinned,
} from "./menu-actions";

export interface MenuContext {
  readonly tab: DocumentTab;
  readonly catalog: Catalog;
  readonly keys: Readonly<Record<Action, string>>;
  readonly boxOf: BoxOf;
  readonly canPaste: boolean;
  select(ids: Iterable<string>): void;
  addNode(specId: string, world: Vec2): void;
  paste(world: Vec2): void;
  arrange(): void;
  renameNode(nodeId: string): void;
  renameGroup(groupId: string): void;
  runTo(nodeId: string): void;
  toggleMode(ids: readonly string[], mode: "mute" | "bypass"): void;
  toggleCollapse(ids: readonly string[]): void;
  deleteNodes(ids: readonly string[]): void;
}

export function canvasMenu(context: MenuContext, world: Vec2): MenuEntry[] {
  return [
    {
      label: "Add node",
      children: () =>
        nodesByCategory(context.catalog).map(({ category, specs }) => ({
          label: category,
          children: () => specs.map((spec) => ({ label: spec.display_name, run: () => context.addNode(spec.id, world) })),
        })),
    },
    { label: "Paste", hint: context.keys.paste, run: () => context.paste(world), ...(context.canPaste ? {} : { disabled: "nothing copied yet" }) },
    { label: "Arrange", hint: context.keys.arrange, run: () => context.arrange() },
  ];
}

export function nodeMenu(context: MenuContext, nodeId: string, nodes: readonly string[], extra: readonly MenuEntry[]): MenuEntry[] {
  const { tab, keys } = context;
  const store = tab.store;
  const node = store.get("node", nodeId);
  if (node === undefined) return [];
  const all = (mode: "mute" | "bypass"): boolean => nodes.every((id) => store.get("node", id)?.mode === mode);
  const pinned = nodes.every((id) => {
    const record = store.get("node", id);
    return record !== undefined && isPinned(record);
  });
  return [
    ...extra,
    { label: "Run to here", hint: keys.runToHere, run: () => context.runTo(nodeId), ...(placeholderOf(node) === undefined ? {} : { disabled: "an unsupported node cannot run" }) },
    { label: "Title…", run: () => context.renameNode(nodeId) },
    {
      label: "Colour",
      children: () => [
        ...Object.entries(NODE_COLORS).map(([name, colors]) => ({ label: name.replace("_", " "), swatch: colors.bgcolor, run: () => setNodeColor(store, nodes, name) })),
        { label: "no colour", run: () => setNodeColor(store, nodes, undefined) },
      ],
    },
    { label: "Bypass", checked: all("bypass"), hint: keys.bypass, run: () => context.toggleMode(nodes, "bypass") },
    { label: "Mute", checked: all("mute"), hint: keys.mute, run: () => context.toggleMode(nodes, "mute") },
    { label: "Pin", checked: pinned, run: () => togglePinned(store, nodes) },
    { label: node.collapsed ? "Expand" : "Collapse", hint: keys.collapse, run: () => context.toggleCollapse(nodes) },
    { label: "Clone", run: () => context.select(cloneNodes(store, nodes)) },
    { label: "Widget ↔ input", children: () => widgetEntries(context, nodeId) },
    { label: "Delete", hint: keys.delete, run: () => context.deleteNodes(nodes) },
  ];
}

/**
 * Every widget here already takes a link of its type (its row has a socket), so "convert to
 * input" is a matter of wiring; the way back is unlinking, which restores the typed value.
 */
function widgetEntries(context: MenuContext, nodeId: string): MenuEntry[] {
  const store = context.tab.store;
  const node = store.get("node", nodeId);
  const widgets = (node === undefined ? undefined : context.catalog.get(node.type))?.inputs.filter((input) => input.kind === "widget") ?? [];
  if (widgets.length === 0) return [{ label: "(no widgets)", disabled: "this node has no widgets" }];
  return widgets.map((input) => {
    const linked = store.has("link", linkIdFor({ node: nodeId, input: input.name }));
    return linked
      ? { label: `${input.name}: back to widget (unlink)`, run: () => void disconnect(store, { node: nodeId, input: input.name }) }
      : { label: `${input.name}: widget`, disabled: `already an input too: drag a ${input.type} link onto its row` };
  });
}

export function linkMenu(context: MenuContext, linkId: string, world: Vec2): MenuEntry[] {
  const store = context.tab.store;
  return [
    { label: "Add reroute", run: () => void insertReroute(store, linkId, world) },
    { label: "Delete", run: () => void deleteLink(store, linkId) },
  ];
}

export function groupMenu(context: MenuContext, groupId: string): MenuEntry[] {
  const store = context.tab.store;
  return [
    { label: "Fit to nodes", run: () => void fitGroupToNodes(store, groupId, context.boxOf) },
    { label: "Select nodes", run: () => context.select(groupNodes(store, groupId, context.boxOf)) },
    { label: "Title…", run: () => context.renameGroup(groupId) },
    {
      label: "Colour",
      children: () => [
        ...Object.entries(GROUP_COLORS).map(([name, color]) => ({ label: name.replace("_", " "), swatch: color, run: () => setGroupColor(store, groupId, name) })),
        { label: "default", run: () => setGroupColor(store, groupId, undefined) },
      ],
    },
    { label: "Remove", run: () => removeGroup(store, groupId) },
  ];
}
