/**
 * Widget behaviour that does not need a DOM: which kind of control an input gets, where its
 * clickable zones are, and how a drag or a step changes a number within its bounds. The
 * canvas draws widgets; only the one being typed into gets a DOM element (widget-editor.ts).
 */

import type { InputSpec, NodeRecord, Rect } from "../model";

export type WidgetKind = "number" | "slider" | "seed" | "combo" | "text" | "multiline" | "toggle";

export function widgetKind(input: InputSpec): WidgetKind {
  switch (input.type) {
    case "BOOLEAN":
      return "toggle";
    case "ENUM":
      return "combo";
    case "STRING":
      return input.multiline === true ? "multiline" : "text";
    case "INT":
      return isSeed(input) ? "seed" : "number";
    default:
      // A bounded unit-range float (denoise, strength) reads best as a slider.
      return input.min !== undefined && input.max !== undefined && input.max - input.min <= 1 ? "slider" : "number";
  }
}

export function isSeed(input: InputSpec): boolean {
  return input.type === "INT" && /(^|_)seed$/.test(input.name);
}

/** ComfyUI's control_after_generate values; import maps them into `ui.seed_control`. */
export type SeedControl = "fixed" | "increment" | "decrement" | "randomize";
export const SEED_CONTROLS: readonly SeedControl[] = ["fixed", "increment", "decrement", "randomize"];
/** Where a node keeps each seed's control mode: `ui.seed_control = {input: mode}`. */
export const SEED_CONTROL_KEY = "seed_control";

export function seedControl(node: NodeRecord, input: string): SeedControl {
  const table = node.extraUi?.[SEED_CONTROL_KEY];
  const value = typeof table === "object" && table !== null && !Array.isArray(table) ? (table as Record<string, unknown>)[input] : undefined;
  return SEED_CONTROLS.includes(value as SeedControl) ? (value as SeedControl) : "fixed";
}

/** The seed a control mode gives for the next run. `random` is injectable for tests. */
export function nextSeed(mode: SeedControl, value: number, input: InputSpec, random: () => number = Math.random): number {
  const min = input.min ?? 0;
  const max = Math.min(input.max ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (mode === "increment") return value + 1 > max ? min : value + 1;
  if (mode === "decrement") return value - 1 < min ? max : value - 1;
  if (mode === "randomize") return min + Math.floor(random() * (max - min + 1));
  return value;
}

/** Clamps to bounds and snaps INTs to integers and FLOATs to the step's precision. */
export function clampNumber(input: InputSpec, value: number): number {
  let result = Math.min(input.max ?? Infinity, Math.max(input.min ?? -Infinity, value));
  if (input.type === "INT") result = Math.round(result);
  else {
    const decimals = Math.min(6, decimalsOf(input.step ?? 0.01));
    result = Number(result.toFixed(decimals));
  }
  return result;
}

function decimalsOf(step: number): number {
  const text = String(step);
  const dot = text.indexOf(".");
  return dot < 0 ? 0 : text.length - dot - 1;
}

export function stepOf(input: InputSpec): number {
  return input.step ?? (input.type === "INT" ? 1 : 0.01);
}

/** A number after `steps` steps (negative = down), clamped. */
export function stepNumber(input: InputSpec, value: number, steps: number): number {
  return clampNumber(input, value + steps * stepOf(input));
}

/** The slider value at horizontal fraction `t` (0..1) of its track. */
export function sliderValue(input: InputSpec, t: number): number {
  const min = input.min ?? 0;
  const max = input.max ?? 1;
  return clampNumber(input, min + Math.min(1, Math.max(0, t)) * (max - min));
}

export interface WidgetZones {
  readonly decrement?: Rect;
  readonly increment?: Rect;
  readonly mode?: Rect;
  readonly body: Rect;
}

export const ARROW_WIDTH = 14;
export const MODE_WIDTH = 52;

export function widgetZones(kind: WidgetKind, rect: Rect): WidgetZones {
  const [x, y, width, height] = rect;
  if (kind === "number") {
    return {
      decrement: [x, y, ARROW_WIDTH, height],
      increment: [x + width - ARROW_WIDTH, y, ARROW_WIDTH, height],
      body: [x + ARROW_WIDTH, y, width - 2 * ARROW_WIDTH, height],
    };
  }
  if (kind === "seed") {
    const right = x + width - MODE_WIDTH;
    return {
      decrement: [x, y, ARROW_WIDTH, height],
      increment: [right - ARROW_WIDTH, y, ARROW_WIDTH, height],
      mode: [right + 2, y, MODE_WIDTH - 2, height],
      body: [x + ARROW_WIDTH, y, width - MODE_WIDTH - 2 * ARROW_WIDTH, height],
    };
  }
  return { body: rect };
}

export function formatValue(input: InputSpec, value: unknown): string {
  if (value === undefined) return "—";
  if (typeof value === "number" && input.type === "FLOAT") {
    return String(Number(value.toFixed(Math.min(6, decimalsOf(input.step ?? 0.01)))));
  }
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}
