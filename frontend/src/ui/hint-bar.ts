/**
 * The one-line hint a first visit shows over the canvas: how to add a node, connect two and
 * queue. It goes away for good the first time the user does one of those (or closes it);
 * the browser remembers that, so it never comes back on the next visit.
 */

import { el } from "./dom";

const DONE_KEY = "latentloom.hintsDone";

export interface HintKeys {
  readonly search: string;
  readonly queue: string;
}

export class HintBar {
  readonly element: HTMLElement;

  constructor(keys: HintKeys) {
    const close = el("button", { className: "hint-close", text: "×", title: "Hide this hint", onClick: () => this.done() });
    close.setAttribute("aria-label", "Hide this hint");
    this.element = el("div", { className: "hint-bar", data: { hint: "first-run" } },
      el("span", { text: `Add a node: double-click the canvas or press ${keys.search}` }),
      el("span", { text: "Connect: drag from a socket to another" }),
      el("span", { text: `Queue: ${keys.queue}` }),
      close,
    );
    this.element.setAttribute("role", "note");
    this.element.hidden = HintBar.dismissed;
  }

  static get dismissed(): boolean {
    try {
      return localStorage.getItem(DONE_KEY) === "1";
    } catch {
      return false;
    }
  }

  get visible(): boolean {
    return !this.element.hidden;
  }

  /** The user added a node, connected, queued or closed the hint: it goes for good. */
  done(): void {
    if (this.element.hidden) return;
    this.element.hidden = true;
    try {
      localStorage.setItem(DONE_KEY, "1");
    } catch {
      // Private mode: the hint just shows again next visit.
    }
  }
}
