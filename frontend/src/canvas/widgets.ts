/**
 * Widget behaviour that does not need a DOM: which kind of control an input gets, where its
 * clickable zones are, and how a drag or a step changes a number within its bounds. The
 * canvas draws widgets; only the one being typed into gets a DOM element (widget-editor.ts).
 */

import { exactInteger, type InputSpec, type NodeRecord, type Rect } from "../model";

/**
 * An INT or FLOAT widget's value. INTs beyond ±2^53 (64-bit seeds) are bigints, so integer
 * arithmetic here is done in bigint and handed back as a number whenever that is exact.
 */
export type NumberValue = number | bigint;

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
      return input.min !== undefined && input.max !== undefined && Number(input.max) - Number(input.min) <= 1 ? "slider" : "number";
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

function whole(value: NumberValue): bigint {
  return typeof value === "bigint" ? value : BigInt(Math.round(value));
}

/** An INT widget's bounds, exact (a seed's reach 2^64 - 1); unbounded sides as given. */
function integerBounds(input: InputSpec, low: bigint, high: bigint): [bigint, bigint] {
  return [input.min === undefined ? low : whole(input.min), input.max === undefined ? high : whole(input.max)];
}

/**
 * The seed a control mode gives for the next run, exact at any size (wrapping at the bounds).
 * Randomize draws within 2^53 (what `Math.random` can give). `random` is injectable for tests.
 */
export function nextSeed(mode: SeedControl, value: NumberValue, input: InputSpec, random: () => number = Math.random): NumberValue {
  const [min, max] = integerBounds(input, 0n, BigInt(Number.MAX_SAFE_INTEGER));
  const current = whole(value);
  if (mode === "increment") return exactInteger(current + 1n > max ? min : current + 1n);
  if (mode === "decrement") return exactInteger(current - 1n < min ? max : current - 1n);
  if (mode === "randomize") {
    const low = Number(min);
    const high = Math.min(Number(max), Number.MAX_SAFE_INTEGER);
    return low + Math.floor(random() * (high - low + 1));
  }
  return value;
}

/** Clamps to bounds and snaps INTs to integers (exact beyond 2^53) and FLOATs to the step's precision. */
export function clampNumber(input: InputSpec, value: NumberValue): NumberValue {
  if (input.type === "INT") {
    const [min, max] = integerBounds(input, whole(value), whole(value));
    const current = whole(value);
    return exactInteger(current < min ? min : current > max ? max : current);
  }
  const result = Math.min(Number(input.max ?? Infinity), Math.max(Number(input.min ?? -Infinity), Number(value)));
  const decimals = Math.min(6, decimalsOf(input.step ?? 0.01));
  return Number(result.toFixed(decimals));
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
export function stepNumber(input: InputSpec, value: NumberValue, steps: number): NumberValue {
  if (input.type === "INT") return clampNumber(input, whole(value) + BigInt(steps) * whole(stepOf(input)));
  return clampNumber(input, Number(value) + steps * stepOf(input));
}

/** The slider value at horizontal fraction `t` (0..1) of its track. */
export function sliderValue(input: InputSpec, t: number): NumberValue {
  const min = Number(input.min ?? 0);
  const max = Number(input.max ?? 1);
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
