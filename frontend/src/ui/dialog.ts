/**
 * In-app dialogs in place of the browser's `prompt()` and `confirm()`: they match the page,
 * do not block the event loop (so the canvas, the socket and the tests keep running), and
 * can be driven like any other DOM. Each is a modal `<div role="dialog">` over the page with
 * focus trapped inside: Tab cycles its controls, Enter accepts, Escape cancels, and focus
 * returns to where it was. Both resolve a promise: the text (or undefined) / true or false.
 */

import { el } from "./dom";

export interface AskOptions {
  readonly title: string;
  readonly label?: string;
  readonly value?: string;
  readonly accept?: string;
  /** Why the text cannot be accepted (shown under the field), or undefined when it can. */
  readonly check?: (text: string) => string | undefined;
}

export interface ConfirmOptions {
  readonly title: string;
  readonly message: string;
  readonly accept?: string;
  /** A destructive action: the accept button is drawn as a warning and Cancel has focus. */
  readonly danger?: boolean;
}

/** Asks for one line of text; resolves undefined when cancelled. */
export function askText(options: AskOptions): Promise<string | undefined> {
  const input = el("input", { className: "dialog-input", data: { dialogInput: "" } });
  input.type = "text";
  input.value = options.value ?? "";
  input.setAttribute("aria-label", options.label ?? options.title);
  const error = el("p", { className: "dialog-error" });
  error.setAttribute("role", "alert");
  return new Promise((resolve) => {
    const dialog = openDialog({
      title: options.title,
      body: [options.label === undefined ? "" : el("label", { className: "dialog-label", text: options.label }), input, error],
      accept: options.accept ?? "OK",
      danger: false,
      onAccept: () => {
        const problem = options.check?.(input.value);
        if (problem !== undefined) {
          error.textContent = problem;
          input.focus();
          return false;
        }
        resolve(input.value);
        return true;
      },
      onCancel: () => resolve(undefined),
    });
    dialog.first = input;
    input.focus();
    input.select();
  });
}

/** Asks yes or no; resolves false when cancelled. */
export function askConfirm(options: ConfirmOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = openDialog({
      title: options.title,
      body: [el("p", { className: "dialog-message", text: options.message })],
      accept: options.accept ?? "OK",
      danger: options.danger === true,
      onAccept: () => {
        resolve(true);
        return true;
      },
      onCancel: () => resolve(false),
    });
    (options.danger === true ? dialog.cancel : dialog.accept).focus();
  });
}

interface DialogParts {
  readonly title: string;
  readonly body: readonly (Node | string)[];
  readonly accept: string;
  readonly danger: boolean;
  /** False keeps the dialog open (the input was refused). */
  readonly onAccept: () => boolean;
  readonly onCancel: () => void;
}

interface OpenDialog {
  first: HTMLElement | undefined;
  readonly accept: HTMLButtonElement;
  readonly cancel: HTMLButtonElement;
}

let counter = 0;

function openDialog(parts: DialogParts): OpenDialog {
  const previous = document.activeElement instanceof HTMLElement ? document.activeElement : undefined;
  counter += 1;
  const titleId = `dialog-title-${counter}`;
  const accept = el("button", { className: `dialog-accept${parts.danger ? " danger" : ""}`, text: parts.accept, data: { dialog: "accept" } });
  const cancel = el("button", { className: "dialog-cancel", text: "Cancel", data: { dialog: "cancel" } });
  const heading = el("h2", { text: parts.title });
  heading.id = titleId;
  const box = el("div", { className: "dialog" }, heading, ...parts.body, el("div", { className: "dialog-buttons" }, cancel, accept));
  box.setAttribute("role", "dialog");
  box.setAttribute("aria-modal", "true");
  box.setAttribute("aria-labelledby", titleId);
  const backdrop = el("div", { className: "dialog-backdrop" }, box);
  const close = (): void => {
    backdrop.remove();
    previous?.focus();
  };
  const done = (accepted: boolean): void => {
    if (accepted && !parts.onAccept()) return;
    if (!accepted) parts.onCancel();
    close();
  };
  accept.addEventListener("click", () => done(true));
  cancel.addEventListener("click", () => done(false));
  backdrop.addEventListener("pointerdown", (event) => {
    if (event.target === backdrop) done(false);
  });
  box.addEventListener("keydown", (event) => {
    // Keys typed here are the dialog's: none reach the editor's shortcuts.
    event.stopPropagation();
    if (event.key === "Escape") {
      event.preventDefault();
      done(false);
    } else if (event.key === "Enter" && !(event.target instanceof HTMLButtonElement)) {
      event.preventDefault();
      done(true);
    } else if (event.key === "Tab") trapTab(box, event);
  });
  document.body.append(backdrop);
  return { first: undefined, accept, cancel };
}

/** Tab and Shift+Tab wrap around inside the dialog. */
function trapTab(box: HTMLElement, event: KeyboardEvent): void {
  const focusable = [...box.querySelectorAll<HTMLElement>("input, button, select, textarea")].filter((element) => !element.hasAttribute("disabled"));
  const first = focusable[0];
  const last = focusable.at(-1);
  if (first === undefined || last === undefined) return;
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}
