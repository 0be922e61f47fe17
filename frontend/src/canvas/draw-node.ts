/**
 * Drawing one node (or reroute, group) on the static layer. Two levels of detail: full
 * (title, sockets with names, widgets with values, run state, preview) and simplified below
 * SIMPLIFY_BELOW zoom (a coloured box and, if legible, the title) because text and small
 * shapes dominate frame time and are unreadable when zoomed out anyway.
 *
 * Node modes and placeholders are drawn the way ComfyUI users read them: a muted node is
 * dimmed, a bypassed one tinted purple, and an unsupported ComfyUI class (a `comfy:`
 * placeholder) has a dashed red border; each also gets a small badge above its top-right
 * corner ("muted", "bypassed", "unsupported"), so the state reads without colour too.
 */

import type { GroupRecord, NodeRecord, RerouteRecord, StoreReader } from "../model";
import type { NodeRunState } from "../app/run-state";
import type { Problem } from "../api/types";
import { REROUTE_RADIUS, SOCKET_RADIUS, TITLE_HEIGHT, type ActionSlot, type NodeLayout, type WidgetSlot } from "./geometry";
import { drawSigmaPlot } from "./sigma-plot";
import { packOf, preferences } from "./preferences";
import { THEME, socketColor } from "./theme";
import { MODE_WIDTH, formatValue, seedControl, widgetKind, widgetZones } from "./widgets";

export interface NodeDecor {
  readonly selected: boolean;
  readonly run: NodeRunState | undefined;
  readonly problems: readonly Problem[] | undefined;
  readonly linkedInputs: ReadonlySet<string>;
  readonly preview: ImageBitmap | undefined;
  /** The sigmas the node's last run reported, by output (its plots draw them). */
  readonly sigmas?: ReadonlyMap<string, readonly number[]> | undefined;
  readonly simplified: boolean;
}

/** How much of a muted node shows through. */
export const MUTED_ALPHA = 0.45;

export function drawNode(ctx: CanvasRenderingContext2D, store: StoreReader, node: NodeRecord, layout: NodeLayout, decor: NodeDecor): void {
  // Only a muted node pays for the alpha change; thousands of running nodes draw as before.
  if (node.mode === "mute") ctx.globalAlpha = MUTED_ALPHA;
  try {
    drawBody(ctx, node, layout, decor);
  } finally {
    ctx.globalAlpha = 1;
  }
  if (!decor.simplified) drawBadges(ctx, node, layout);
  void store;
}

function drawBody(ctx: CanvasRenderingContext2D, node: NodeRecord, layout: NodeLayout, decor: NodeDecor): void {
  const [x, y, width, height] = layout.rect;
  const title = node.title ?? layout.spec?.display_name ?? layout.placeholder?.classType ?? node.type;
  const border = borderColor(node, layout, decor);
  const bypassed = node.mode === "bypass";
  if (decor.simplified) {
    ctx.fillStyle = bypassed ? THEME.bypassBody : THEME.nodeBody;
    ctx.fillRect(x, y, width, height);
    ctx.fillStyle = border ?? (bypassed ? THEME.bypass : THEME.nodeTitle);
    ctx.fillRect(x, y, width, TITLE_HEIGHT);
    if (layout.placeholder !== undefined) {
      // Few nodes are placeholders, so their dashes cost nothing even zoomed out.
      ctx.strokeStyle = THEME.error;
      ctx.lineWidth = 2;
      ctx.setLineDash([8, 6]);
      ctx.strokeRect(x, y, width, height);
      ctx.setLineDash([]);
    }
    return;
  }
  // A colour from the node menu (ComfyUI's ui keys: color = title bar, bgcolor = body).
  const custom = node.extraUi ?? {};
  ctx.fillStyle = bypassed ? THEME.bypassBody : typeof custom["bgcolor"] === "string" ? custom["bgcolor"] : THEME.nodeBody;
  roundRect(ctx, x, y, width, height, 6);
  ctx.fill();
  ctx.fillStyle = bypassed ? THEME.bypassTitle : typeof custom["color"] === "string" ? custom["color"] : THEME.nodeTitle;
  roundRect(ctx, x, y, width, TITLE_HEIGHT, 6);
  ctx.fill();
  ctx.strokeStyle = border ?? THEME.nodeBorder;
  ctx.lineWidth = border === undefined ? 1 : 2;
  // A placeholder keeps its dashes when selected or failing, so it never looks like a real node.
  if (layout.placeholder !== undefined) ctx.setLineDash([6, 4]);
  roundRect(ctx, x, y, width, height, 6);
  ctx.stroke();
  if (layout.placeholder !== undefined) ctx.setLineDash([]);
  ctx.font = THEME.titleFont;
  ctx.fillStyle = layout.spec === undefined ? THEME.error : THEME.text;
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  ctx.fillText(clip(ctx, title, width - 60), x + 10, y + TITLE_HEIGHT / 2);
  drawRunBadge(ctx, layout, decor.run);
  if (node.collapsed) {
    drawSocketDots(ctx, layout, decor);
    return;
  }
  ctx.font = THEME.font;
  const problemInputs = new Set((decor.problems ?? []).map((problem) => problem.input));
  for (const slot of layout.inputs) {
    const widget = layout.widgets.find((candidate) => candidate.input.name === slot.name);
    if (widget !== undefined) continue;
    ctx.fillStyle = problemInputs.has(slot.name) ? THEME.error : THEME.muted;
    ctx.textAlign = "left";
    ctx.fillText(clip(ctx, slotText(node, layout, slot.name, slot.label), width - 24), slot.at[0] + 12, slot.at[1]);
  }
  for (const slot of layout.outputs) {
    ctx.fillStyle = THEME.muted;
    ctx.textAlign = "right";
    ctx.fillText(slot.label ?? slot.name, slot.at[0] - 12, slot.at[1]);
  }
  for (const widget of layout.widgets) drawWidget(ctx, node, widget, decor.linkedInputs.has(widget.input.name), problemInputs.has(widget.input.name));
  for (const action of layout.actions ?? []) drawAction(ctx, action);
  for (const plot of layout.plots ?? []) drawSigmaPlot(ctx, plot.rect, plot.output, decor.sigmas?.get(plot.output));
  drawSocketDots(ctx, layout, decor);
  drawResizeGrip(ctx, layout);
  drawMessages(ctx, layout, decor);
  if (decor.preview !== undefined) drawPreview(ctx, layout, decor.preview);
}

/** A placeholder shows the literal it kept beside the input's name (read-only: it cannot run). */
function slotText(node: NodeRecord, layout: NodeLayout, name: string, label: string | undefined): string {
  const shown = label ?? name;
  const value = layout.placeholder === undefined ? undefined : node.inputs[name];
  if (value === undefined) return shown;
  return `${shown}: ${Array.isArray(value) ? value.join(", ") : String(value)}`;
}

export interface Badge {
  readonly text: string;
  readonly color: string;
}

/** The badges a node wears, right to left; exported for tests. */
export function badgesOf(node: NodeRecord, layout: NodeLayout): Badge[] {
  const badges: Badge[] = [];
  if (layout.placeholder !== undefined) badges.push({ text: "unsupported", color: THEME.error });
  if (node.mode === "bypass") badges.push({ text: "bypassed", color: THEME.bypass });
  if (node.mode === "mute") badges.push({ text: "muted", color: THEME.mutedBadge });
  // Badges the settings ask for (preferences.ts): the node id, and its pack.
  if (preferences.badges !== "none") badges.push({ text: `#${node.id}`, color: THEME.mutedBadge });
  const pack = preferences.badges === "id+pack" ? packOf.get(node.type) : undefined;
  if (pack !== undefined) badges.push({ text: pack, color: THEME.mutedBadge });
  return badges;
}

export const BADGE_HEIGHT = 15;

function drawBadges(ctx: CanvasRenderingContext2D, node: NodeRecord, layout: NodeLayout): void {
  const badges = badgesOf(node, layout);
  if (badges.length === 0) return;
  const [x, y, width] = layout.rect;
  ctx.font = THEME.badgeFont;
  ctx.textBaseline = "middle";
  ctx.textAlign = "center";
  let right = x + width;
  for (const badge of badges) {
    const badgeWidth = ctx.measureText(badge.text).width + 10;
    const left = right - badgeWidth;
    ctx.fillStyle = badge.color;
    roundRect(ctx, left, y - BADGE_HEIGHT - 2, badgeWidth, BADGE_HEIGHT, 4);
    ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.fillText(badge.text, left + badgeWidth / 2, y - 2 - BADGE_HEIGHT / 2);
    right = left - 4;
  }
}

function borderColor(node: NodeRecord, layout: NodeLayout, decor: NodeDecor): string | undefined {
  if ((decor.problems?.length ?? 0) > 0 || decor.run?.status === "failed") return THEME.error;
  if (decor.selected) return THEME.selected;
  if (layout.placeholder !== undefined) return THEME.error;
  if (node.mode === "bypass") return THEME.bypass;
  switch (decor.run?.status) {
    case "running":
      return THEME.running;
    case "queued":
      return THEME.queued;
    case "cached":
      return THEME.cached;
    default:
      return undefined;
  }
}

function drawRunBadge(ctx: CanvasRenderingContext2D, layout: NodeLayout, run: NodeRunState | undefined): void {
  if (run === undefined) return;
  const [x, y, width] = layout.rect;
  const label = run.status === "running" && run.total !== undefined ? `${run.step ?? 0}/${run.total}` : run.status;
  ctx.font = THEME.font;
  ctx.textAlign = "right";
  // The plan's marks (app/run-state.ts) in the colours of what they foretell: queued work, cache.
  const planned = run.status === "will run" ? THEME.queued : run.status === "from cache" ? THEME.cached : THEME.muted;
  ctx.fillStyle = run.status === "failed" ? THEME.error : run.status === "running" ? THEME.running : planned;
  ctx.fillText(label, x + width - 8, y + TITLE_HEIGHT / 2);
  if (run.status === "running" && run.total !== undefined && run.total > 0) {
    ctx.fillStyle = THEME.running;
    ctx.fillRect(x + 1, y + TITLE_HEIGHT - 3, ((width - 2) * (run.step ?? 0)) / run.total, 3);
  }
}

function drawSocketDots(ctx: CanvasRenderingContext2D, layout: NodeLayout, decor: NodeDecor): void {
  const widgetNames = new Set(layout.widgets.map((widget) => widget.input.name));
  const values = layout.valueRows;
  for (const slot of layout.inputs) {
    // Widget inputs show a dot only when linked; an unlinked widget is edited in place, and a
    // placeholder's kept literal is a value, not a socket.
    if ((widgetNames.has(slot.name) || values?.has(slot.name) === true) && !decor.linkedInputs.has(slot.name)) continue;
    dot(ctx, slot.at[0], slot.at[1], socketColor(slot.type), decor.linkedInputs.has(slot.name));
  }
  for (const slot of layout.outputs) dot(ctx, slot.at[0], slot.at[1], socketColor(slot.type), true);
}

function dot(ctx: CanvasRenderingContext2D, x: number, y: number, color: string, filled: boolean): void {
  ctx.beginPath();
  ctx.arc(x, y, SOCKET_RADIUS, 0, Math.PI * 2);
  ctx.fillStyle = filled ? color : THEME.nodeBody;
  ctx.fill();
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.stroke();
}

function drawWidget(ctx: CanvasRenderingContext2D, node: NodeRecord, widget: WidgetSlot, linked: boolean, problem: boolean): void {
  const [x, y, width, height] = widget.rect;
  const input = widget.input;
  const kind = widgetKind(input);
  const value = node.inputs[input.name];
  ctx.fillStyle = THEME.widget;
  roundRect(ctx, x, y, width, height, 4);
  ctx.fill();
  if (problem) {
    ctx.strokeStyle = THEME.error;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
  const mid = y + Math.min(height, 18) / 2;
  ctx.font = THEME.font;
  ctx.textBaseline = "middle";
  if (linked) {
    ctx.fillStyle = THEME.muted;
    ctx.textAlign = "left";
    ctx.fillText(`${input.name} ← linked`, x + 8, mid);
    return;
  }
  if (kind === "multiline") {
    ctx.fillStyle = THEME.muted;
    ctx.textAlign = "left";
    const lines = wrap(ctx, typeof value === "string" && value !== "" ? value : `${input.name}…`, width - 12, 3);
    lines.forEach((line, index) => ctx.fillText(line, x + 6, y + 9 + index * 15));
    return;
  }
  if (kind === "slider" && typeof value === "number") {
    const min = Number(input.min ?? 0);
    const max = Number(input.max ?? 1);
    ctx.fillStyle = "#3b4a5a";
    ctx.fillRect(x, y, (width * (value - min)) / (max - min || 1), height);
  }
  const zones = widgetZones(kind, widget.rect);
  ctx.fillStyle = THEME.muted;
  if (zones.decrement !== undefined) {
    ctx.textAlign = "center";
    ctx.fillText("◀", zones.decrement[0] + zones.decrement[2] / 2, mid);
  }
  if (zones.increment !== undefined) {
    ctx.textAlign = "center";
    ctx.fillText("▶", zones.increment[0] + zones.increment[2] / 2, mid);
  }
  if (zones.mode !== undefined) {
    ctx.textAlign = "center";
    ctx.fillStyle = THEME.queued;
    ctx.fillText(seedControl(node, input.name), zones.mode[0] + MODE_WIDTH / 2 - 2, mid);
  }
  const [bx, , bw] = zones.body;
  ctx.textAlign = "left";
  ctx.fillStyle = THEME.muted;
  ctx.fillText(input.name, bx + 6, mid);
  ctx.textAlign = "right";
  ctx.fillStyle = THEME.text;
  let text = formatValue(input, value);
  if (kind === "toggle") text = value === true ? "● on" : "○ off";
  if (kind === "combo") text = `${text} ▾`;
  const nameWidth = ctx.measureText(input.name).width;
  ctx.fillText(clip(ctx, text, bw - nameWidth - 20), bx + bw - 6, mid);
}

function drawAction(ctx: CanvasRenderingContext2D, action: ActionSlot): void {
  const [x, y, width, height] = action.rect;
  ctx.fillStyle = THEME.nodeTitle;
  roundRect(ctx, x, y, width, height, 4);
  ctx.fill();
  ctx.strokeStyle = THEME.nodeBorder;
  ctx.lineWidth = 1;
  ctx.stroke();
  ctx.font = THEME.font;
  ctx.textBaseline = "middle";
  ctx.textAlign = "center";
  ctx.fillStyle = THEME.text;
  ctx.fillText(clip(ctx, action.label, width - 8), x + width / 2, y + height / 2);
}

function drawResizeGrip(ctx: CanvasRenderingContext2D, layout: NodeLayout): void {
  const [x, y, width, height] = layout.rect;
  ctx.strokeStyle = THEME.nodeBorder;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const inset of [3, 7]) {
    ctx.moveTo(x + width - inset, y + height - 2);
    ctx.lineTo(x + width - 2, y + height - inset);
  }
  ctx.stroke();
}

function drawMessages(ctx: CanvasRenderingContext2D, layout: NodeLayout, decor: NodeDecor): void {
  const messages = [
    ...(decor.run?.status === "failed" && decor.run.error !== undefined ? [decor.run.error] : []),
    ...(decor.problems ?? []).map((problem) => (problem.input === null ? problem.message : `${problem.input}: ${problem.message}`)),
  ];
  if (messages.length === 0) return;
  const [x, y, width, height] = layout.rect;
  ctx.font = THEME.font;
  const lines = messages.flatMap((message) => wrap(ctx, message, width - 12, 4));
  const boxHeight = lines.length * 15 + 8;
  ctx.fillStyle = "rgba(120, 20, 20, 0.92)";
  roundRect(ctx, x, y + height + 4, width, boxHeight, 4);
  ctx.fill();
  ctx.fillStyle = "#fff";
  ctx.textAlign = "left";
  lines.forEach((line, index) => ctx.fillText(line, x + 6, y + height + 12 + index * 15));
}

/** The preview sits under the node (or under its messages) so the node keeps its size. */
export const PREVIEW_GAP = 4;

function drawPreview(ctx: CanvasRenderingContext2D, layout: NodeLayout, image: ImageBitmap): void {
  const [x, y, width, height] = layout.rect;
  const scale = width / Math.max(image.width, image.height);
  const w = image.width * scale;
  const h = image.height * scale;
  ctx.drawImage(image, x + (width - w) / 2, y + height + PREVIEW_GAP, w, h);
}

export function drawReroute(ctx: CanvasRenderingContext2D, reroute: RerouteRecord, selected: boolean): void {
  ctx.beginPath();
  ctx.arc(reroute.pos[0], reroute.pos[1], REROUTE_RADIUS, 0, Math.PI * 2);
  ctx.fillStyle = socketColor(reroute.type);
  ctx.fill();
  ctx.strokeStyle = selected ? THEME.selected : THEME.nodeBorder;
  ctx.lineWidth = 2;
  ctx.stroke();
}

export function drawGroup(ctx: CanvasRenderingContext2D, group: GroupRecord, selected: boolean, simplified: boolean): void {
  const [x, y, width, height] = group.rect;
  ctx.fillStyle = group.color ?? THEME.group;
  ctx.globalAlpha = group.color === undefined ? 1 : 0.25;
  ctx.fillRect(x, y, width, height);
  ctx.globalAlpha = 1;
  ctx.strokeStyle = selected ? THEME.selected : "rgba(160, 170, 190, 0.5)";
  ctx.lineWidth = selected ? 2 : 1;
  ctx.strokeRect(x, y, width, height);
  if (simplified) return;
  ctx.font = "bold 16px system-ui, sans-serif";
  ctx.fillStyle = THEME.text;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(group.title, x + 10, y + 16);
}

export const GROUP_TITLE_HEIGHT = 32;

export function roundRect(ctx: CanvasRenderingContext2D, x: number, y: number, width: number, height: number, radius: number): void {
  ctx.beginPath();
  ctx.roundRect(x, y, width, height, radius);
}

function clip(ctx: CanvasRenderingContext2D, text: string, width: number): string {
  if (ctx.measureText(text).width <= width) return text;
  let end = text.length;
  while (end > 0 && ctx.measureText(`${text.slice(0, end)}…`).width > width) end -= 1;
  return `${text.slice(0, end)}…`;
}

function wrap(ctx: CanvasRenderingContext2D, text: string, width: number, maxLines: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (const word of paragraph.split(" ")) {
      const candidate = line === "" ? word : `${line} ${word}`;
      if (ctx.measureText(candidate).width > width && line !== "") {
        lines.push(line);
        line = word;
      } else line = candidate;
      if (lines.length >= maxLines) break;
    }
    if (lines.length < maxLines) lines.push(line);
    if (lines.length >= maxLines) break;
  }
  return lines.slice(0, maxLines).map((line) => clip(ctx, line, width));
}
