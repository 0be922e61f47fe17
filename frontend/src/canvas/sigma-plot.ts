/**
 * The small curve a node with a SIGMAS output shows under its outputs: its last run's sigmas
 * against step index. Nodes report them as `"sigmas": [{"output", "values"}]` in their
 * finished (or cached) event; the layout reserves one plot row per SIGMAS output (geometry.ts),
 * so a node keeps its size whether or not it has run, and the plot is drawn with the node
 * (the renderer's dirty redraw: a new report marks the canvas dirty once).
 *
 * The geometry is a pure function of the values and the plot's rectangle, tested without a
 * canvas. The y axis is linear from min(0, smallest) to the largest sigma by default (a
 * schedule ends in 0, so the curve sits on the axis); "log" spreads the small sigmas at the
 * end of a schedule, with zeros drawn on the bottom edge.
 */

import type { Rect, Vec2 } from "../model";
import { THEME, socketColor } from "./theme";

export type PlotScale = "linear" | "log";

/** Space kept inside the plot's rectangle around the curve, world units. */
export const PLOT_PADDING = 4;

/** The sigmas a node reported, by output name; malformed entries are skipped. */
export function sigmaReport(outputs: unknown): Map<string, number[]> | undefined {
  if (typeof outputs !== "object" || outputs === null) return undefined;
  const list = (outputs as { sigmas?: unknown }).sigmas;
  if (!Array.isArray(list)) return undefined;
  const series = new Map<string, number[]>();
  for (const entry of list as unknown[]) {
    if (typeof entry !== "object" || entry === null) continue;
    const { output, values } = entry as { output?: unknown; values?: unknown };
    if (typeof output !== "string" || !Array.isArray(values)) continue;
    if (!values.every((value): value is number => typeof value === "number" && Number.isFinite(value))) continue;
    series.set(output, values);
  }
  return series.size === 0 ? undefined : series;
}

/** The value range the y axis spans. */
export function plotRange(values: readonly number[], scale: PlotScale): [number, number] {
  if (scale === "log") {
    const positive = values.filter((value) => value > 0).map(Math.log);
    if (positive.length === 0) return [0, 1];
    const low = Math.min(...positive);
    const high = Math.max(...positive);
    return high > low ? [low, high] : [low - 1, high + 1];
  }
  const low = Math.min(0, ...values);
  const high = Math.max(...values);
  return high > low ? [low, high] : [low, low + 1];
}

/** One point per value: x evenly from the left to the right edge, y up from the bottom edge. */
export function plotPoints(values: readonly number[], rect: Rect, scale: PlotScale = "linear"): Vec2[] {
  if (values.length === 0) return [];
  const [x, y, width, height] = rect;
  const left = x + PLOT_PADDING;
  const innerWidth = width - 2 * PLOT_PADDING;
  const bottom = y + height - PLOT_PADDING;
  const innerHeight = height - 2 * PLOT_PADDING;
  const [low, high] = plotRange(values, scale);
  return values.map((value, index) => {
    const t = values.length === 1 ? 0.5 : index / (values.length - 1);
    const v = scale === "log" ? (value > 0 ? Math.log(value) : low) : value;
    return [left + t * innerWidth, bottom - ((v - low) / (high - low)) * innerHeight];
  });
}

/** A short label for the plot's corner: the number of steps and the first sigma. */
export function plotLabel(values: readonly number[]): string {
  if (values.length === 0) return "no sigmas";
  const steps = values.at(-1) === 0 ? values.length - 1 : values.length;
  return `${steps} step${steps === 1 ? "" : "s"} · σ ${formatSigma(values[0] ?? 0)}→${formatSigma(values.at(-1) ?? 0)}`;
}

function formatSigma(value: number): string {
  return value >= 10 ? value.toFixed(1) : value >= 0.1 || value === 0 ? value.toFixed(2) : value.toExponential(1);
}

export function drawSigmaPlot(ctx: CanvasRenderingContext2D, rect: Rect, output: string, values: readonly number[] | undefined): void {
  const [x, y, width, height] = rect;
  ctx.fillStyle = THEME.widget;
  ctx.beginPath();
  ctx.roundRect(x, y, width, height, 4);
  ctx.fill();
  ctx.font = THEME.badgeFont;
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillStyle = THEME.muted;
  if (values === undefined || values.length === 0) {
    ctx.fillText(`${output}: curve after a run`, x + 6, y + 6);
    return;
  }
  const points = plotPoints(values, rect);
  ctx.strokeStyle = socketColor("SIGMAS");
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  points.forEach(([px, py], index) => (index === 0 ? ctx.moveTo(px, py) : ctx.lineTo(px, py)));
  ctx.stroke();
  ctx.fillStyle = socketColor("SIGMAS");
  // Dots only while they stay apart: a 1,000-step schedule is a line.
  if (points.length <= width / 4) for (const [px, py] of points) ctx.fillRect(px - 1.5, py - 1.5, 3, 3);
  ctx.fillStyle = THEME.muted;
  ctx.textAlign = "right";
  ctx.fillText(plotLabel(values), x + width - 6, y + 5);
}
