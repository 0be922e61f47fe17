/**
 * The one DOM element the canvas ever shows: an editor over the widget being edited (text
 * field, number field, prompt textarea, searchable dropdown). It is created on demand and
 * removed when editing ends, so a 1,000-node graph has no DOM per node.
 *
 * The prompt textarea keeps its own text undo: while it has focus the browser's native
 * Ctrl+Z works inside it (the editor's key handler ignores keys typed into form fields),
 * and each keystroke is still written to the store, merged into one graph undo step.
 */

import { setWidgetValue, type InputSpec, type Store } from "../model";
import type { WidgetSlot } from "./geometry";
import { toScreen, type Viewport } from "./viewport";
import { clampNumber, widgetKind } from "./widgets";

export class WidgetEditor {
  private element: HTMLElement | undefined;
  private finish: (() => void) | undefined;

  /**
   * `extraChoices` adds names the catalog could not know when it was loaded (files uploaded
   * since, for an input-folder dropdown); they are listed first, newest first.
   */
  constructor(
    private readonly host: HTMLElement,
    private readonly extraChoices: (input: InputSpec) => readonly string[] = () => [],
  ) {}

  get open(): boolean {
    return this.element !== undefined;
  }

  close(): void {
    const finish = this.finish;
    this.finish = undefined;
    this.element?.remove();
    this.element = undefined;
    finish?.();
  }

  edit(store: Store, nodeId: string, widget: WidgetSlot, view: Viewport, onDone: () => void, onError: (message: string) => void): void {
    this.close();
    const input = widget.input;
    const node = store.get("node", nodeId);
    if (node === undefined) return;
    const value = node.inputs[input.name];
    const [x, y, width, height] = widget.rect;
    const [left, top] = toScreen(view, [x, y]);
    const box = document.createElement("div");
    box.className = "widget-editor";
    box.dataset["node"] = nodeId;
    box.dataset["input"] = input.name;
    box.style.left = `${left}px`;
    box.style.top = `${top}px`;
    box.style.width = `${Math.max(160, width * view.scale)}px`;
    box.style.minHeight = `${height * view.scale}px`;
    const write = (next: string | number | bigint): void => {
      try {
        setWidgetValue(store, nodeId, input.name, next);
      } catch (error) {
        onError(error instanceof Error ? error.message : String(error));
      }
    };
    const kind = widgetKind(input);
    if (kind === "combo") this.buildCombo(box, input, String(value ?? ""), (choice) => {
      write(choice);
      this.close();
    });
    else if (kind === "multiline" || kind === "text") {
      const field = document.createElement(kind === "multiline" ? "textarea" : "input");
      field.value = typeof value === "string" ? value : "";
      if (field instanceof HTMLTextAreaElement) field.rows = 6;
      field.addEventListener("input", () => write(field.value));
      field.addEventListener("keydown", (event: Event) => {
        if (!(event instanceof KeyboardEvent)) return;
        if (event.key === "Escape" || (event.key === "Enter" && (kind === "text" || event.ctrlKey))) {
          event.preventDefault();
          this.close();
        }
      });
      box.append(field);
    } else {
      const field = document.createElement("input");
      field.type = "number";
      field.value = String(value ?? "");
      if (input.min !== undefined) field.min = String(input.min);
      if (input.max !== undefined) field.max = String(input.max);
      field.step = String(input.step ?? (input.type === "INT" ? 1 : "any"));
      const commit = (): void => {
        const text = field.value.trim();
        // An INT is read as digits, so a 64-bit seed typed in is kept exactly.
        if (input.type === "INT" && /^-?\d+$/.test(text)) {
          write(clampNumber(input, BigInt(text)));
          return;
        }
        const number = Number(text);
        if (text !== "" && Number.isFinite(number)) write(clampNumber(input, number));
      };
      field.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          commit();
          this.close();
        } else if (event.key === "Escape") this.close();
      });
      field.addEventListener("change", commit);
      box.append(field);
    }
    box.addEventListener("pointerdown", (event) => event.stopPropagation());
    box.addEventListener("focusout", (event) => {
      if (!box.contains(event.relatedTarget as Node | null)) queueMicrotask(() => this.close());
    });
    this.host.append(box);
    this.element = box;
    this.finish = onDone;
    // Focus once attached (editors open on pointer release, so nothing steals it back).
    const field = box.querySelector<HTMLInputElement | HTMLTextAreaElement>("input, textarea");
    field?.focus();
    if (field instanceof HTMLInputElement && field.type === "number") field.select();
  }

  /** A dropdown with a filter field: type to narrow, arrows to move, Enter to pick. */
  private buildCombo(box: HTMLElement, input: InputSpec, current: string, pick: (choice: string) => void): void {
    const filter = document.createElement("input");
    filter.placeholder = `filter ${input.name}…`;
    const list = document.createElement("ul");
    list.className = "combo-list";
    let active = 0;
    const render = (): void => {
      const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      const all = [...new Set([...this.extraChoices(input), ...(input.choices ?? [])])];
      const choices = all.filter((choice) => words.every((word) => choice.toLowerCase().includes(word)));
      active = Math.min(active, Math.max(0, choices.length - 1));
      list.replaceChildren(
        ...choices.map((choice, index) => {
          const item = document.createElement("li");
          item.textContent = choice;
          item.className = `${choice === current ? "current" : ""} ${index === active ? "active" : ""}`;
          item.addEventListener("pointerdown", (event) => {
            event.preventDefault();
            pick(choice);
          });
          return item;
        }),
      );
      if (choices.length === 0) {
        const empty = document.createElement("li");
        empty.className = "empty";
        empty.textContent = all.length === 0 ? `no ${input.choices_from ?? "choices"} available` : "no match";
        list.append(empty);
      }
    };
    filter.addEventListener("input", () => {
      active = 0;
      render();
    });
    filter.addEventListener("keydown", (event) => {
      const items = [...list.querySelectorAll("li:not(.empty)")];
      if (event.key === "ArrowDown") active = Math.min(items.length - 1, active + 1);
      else if (event.key === "ArrowUp") active = Math.max(0, active - 1);
      else if (event.key === "Enter") {
        const choice = items[active]?.textContent;
        if (choice !== undefined && choice !== null) pick(choice);
        return;
      } else if (event.key === "Escape") {
        this.close();
        return;
      } else return;
      event.preventDefault();
      render();
    });
    box.append(filter, list);
    render();
  }
}
