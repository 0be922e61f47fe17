import { describe, expect, it } from "vitest";
import { KeyBindings, parseChord } from "./keys";

const press = (key: string, mods: { ctrl?: boolean; shift?: boolean; alt?: boolean; meta?: boolean } = {}) => ({
  key,
  ctrlKey: mods.ctrl ?? false,
  shiftKey: mods.shift ?? false,
  altKey: mods.alt ?? false,
  metaKey: mods.meta ?? false,
});

describe("key bindings", () => {
  it("matches the defaults, modifiers exactly", () => {
    const keys = new KeyBindings();
    expect(keys.match(press("Enter", { ctrl: true }))).toBe("queue");
    expect(keys.match(press("Enter", { ctrl: true, shift: true }))).toBe("queueFront");
    expect(keys.match(press("z", { ctrl: true }))).toBe("undo");
    expect(keys.match(press("Z", { ctrl: true, shift: true }))).toBe("redo");
    expect(keys.match(press("z", { meta: true }))).toBe("undo");
    expect(keys.match(press("z"))).toBeUndefined();
    expect(keys.match(press("m", { ctrl: true }))).toBe("mute");
    expect(keys.match(press("b", { ctrl: true }))).toBe("bypass");
    expect(keys.match(press("b", { ctrl: true, shift: true }))).toBeUndefined();
  });

  it("rebinds an action", () => {
    const keys = new KeyBindings({ queue: "Alt+R" });
    expect(keys.match(press("r", { alt: true }))).toBe("queue");
    expect(keys.match(press("Enter", { ctrl: true }))).toBeUndefined();
  });

  it("refuses bad bindings, naming each, and keeps the old ones", () => {
    const keys = new KeyBindings();
    expect(() => keys.set({ queue: "Hyper+Q", nonsense: "Ctrl+Q" })).toThrow(
      '"Hyper+Q": unknown modifier "hyper"; use Ctrl, Shift or Alt; unknown action "nonsense"',
    );
    expect(keys.bindings.queue).toBe("Ctrl+Enter");
  });

  it("parses the plus key", () => {
    expect(parseChord("Ctrl++")).toEqual({ key: "+", ctrl: true, shift: false, alt: false });
  });
});
