/**
 * Rebindable keyboard shortcuts. A binding is text like "Ctrl+Shift+Z" (Ctrl also matches
 * Cmd on macOS); the user's overrides are stored as {action: binding} and merged over the
 * defaults. Matching is pure so it can be tested without a browser.
 */

export const ACTIONS = {
  queue: "Queue the workflow",
  queueFront: "Queue at the front",
  undo: "Undo",
  redo: "Redo",
  redoAlt: "Redo (alternative)",
  delete: "Delete selection",
  deleteAlt: "Delete selection (alternative)",
  duplicate: "Duplicate selection",
  copy: "Copy",
  paste: "Paste",
  pasteWithLinks: "Paste with links",
  selectAll: "Select all",
  search: "Add a node",
  fit: "Fit to view",
  group: "Group selection",
  save: "Save",
  collapse: "Collapse / expand selection",
  mute: "Mute / unmute selection",
  bypass: "Bypass / unbypass selection",
  subgraph: "Make a subgraph of the selection",
  arrange: "Arrange the graph (layered, left to right)",
  runToHere: "Run to here (the selected node and what it needs)",
  queueOnChange: "Queue on change on / off",
} as const;

export type Action = keyof typeof ACTIONS;

export const DEFAULT_BINDINGS: Readonly<Record<Action, string>> = {
  queue: "Ctrl+Enter",
  queueFront: "Ctrl+Shift+Enter",
  undo: "Ctrl+Z",
  redo: "Ctrl+Shift+Z",
  redoAlt: "Ctrl+Y",
  delete: "Delete",
  deleteAlt: "Backspace",
  duplicate: "Ctrl+D",
  copy: "Ctrl+C",
  paste: "Ctrl+V",
  pasteWithLinks: "Ctrl+Shift+V",
  selectAll: "Ctrl+A",
  search: "Tab",
  fit: ".",
  group: "Ctrl+G",
  save: "Ctrl+S",
  collapse: "Alt+C",
  // ComfyUI's keys, so its users' hands already know them.
  mute: "Ctrl+M",
  bypass: "Ctrl+B",
  // ComfyUI's "Convert to subgraph".
  subgraph: "Ctrl+Shift+E",
  arrange: "Alt+A",
  runToHere: "Alt+Enter",
  queueOnChange: "Alt+Q",
};

export interface KeyChord {
  readonly key: string;
  readonly ctrl: boolean;
  readonly shift: boolean;
  readonly alt: boolean;
}

/** What a KeyboardEvent offers; a structural type so tests can pass plain objects. */
export interface KeyLike {
  readonly key: string;
  readonly ctrlKey: boolean;
  readonly metaKey: boolean;
  readonly shiftKey: boolean;
  readonly altKey: boolean;
}

export class KeyBindingError extends Error {
  override name = "KeyBindingError";
}

export function parseChord(text: string): KeyChord {
  const parts = text.split("+").map((part) => part.trim());
  // "Ctrl++" binds the plus key: an empty last part after a "+" means "+".
  if (text.endsWith("++")) parts.splice(-2, 2, "+");
  const key = parts.pop();
  if (key === undefined || key === "") throw new KeyBindingError(`"${text}" names no key; write e.g. "Ctrl+Shift+Z"`);
  const modifiers = new Set(parts.map((part) => part.toLowerCase()));
  for (const modifier of modifiers) {
    if (!["ctrl", "cmd", "shift", "alt"].includes(modifier)) {
      throw new KeyBindingError(`"${text}": unknown modifier "${modifier}"; use Ctrl, Shift or Alt`);
    }
  }
  return {
    key: key.length === 1 ? key.toLowerCase() : key,
    ctrl: modifiers.has("ctrl") || modifiers.has("cmd"),
    shift: modifiers.has("shift"),
    alt: modifiers.has("alt"),
  };
}

export function chordMatches(chord: KeyChord, event: KeyLike): boolean {
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  return (
    key === chord.key &&
    (event.ctrlKey || event.metaKey) === chord.ctrl &&
    event.shiftKey === chord.shift &&
    event.altKey === chord.alt
  );
}

export class KeyBindings {
  private chords: [Action, KeyChord][] = [];
  private current: Record<Action, string> = { ...DEFAULT_BINDINGS };

  constructor(overrides: Partial<Record<string, string>> = {}) {
    this.set(overrides);
  }

  get bindings(): Readonly<Record<Action, string>> {
    return this.current;
  }

  /** Applies overrides; throws KeyBindingError naming every bad entry, changing nothing. */
  set(overrides: Partial<Record<string, string>>): void {
    const next: Record<Action, string> = { ...this.current };
    const problems: string[] = [];
    for (const [action, binding] of Object.entries(overrides)) {
      if (!(action in ACTIONS)) {
        problems.push(`unknown action "${action}" (actions: ${Object.keys(ACTIONS).join(", ")})`);
        continue;
      }
      if (binding === undefined) continue;
      try {
        parseChord(binding);
        next[action as Action] = binding;
      } catch (error) {
        problems.push(error instanceof Error ? error.message : String(error));
      }
    }
    if (problems.length > 0) throw new KeyBindingError(problems.join("; "));
    this.current = next;
    this.chords = Object.entries(next).map(([action, binding]) => [action as Action, parseChord(binding)]);
  }

  match(event: KeyLike): Action | undefined {
    return this.chords.find(([, chord]) => chordMatches(chord, event))?.[0];
  }
}
