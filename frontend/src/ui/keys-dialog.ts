/** The "Keys" dialog: every action with its binding, editable; bad bindings are refused with the reason. */

import { ACTIONS, type KeyBindings } from "../app/keys";
import { el } from "./dom";

export class KeysDialog {
  constructor(
    private readonly keys: KeyBindings,
    private readonly save: (bindings: Record<string, string>) => void,
  ) {}

  open(): void {
    const dialog = el("dialog", { className: "keys-dialog" });
    const fields = new Map<string, HTMLInputElement>();
    const error = el("p", { className: "error" });
    const rows = Object.entries(ACTIONS).map(([action, label]) => {
      const field = el("input");
      field.value = this.keys.bindings[action as keyof typeof ACTIONS];
      fields.set(action, field);
      return el("label", {}, el("span", { text: label }), field);
    });
    const apply = el("button", {
      text: "Save",
      onClick: () => {
        const bindings = Object.fromEntries([...fields].map(([action, field]) => [action, field.value.trim()]));
        try {
          this.keys.set(bindings);
          this.save(bindings);
          dialog.close();
          dialog.remove();
        } catch (problem) {
          error.textContent = problem instanceof Error ? problem.message : String(problem);
        }
      },
    });
    const cancel = el("button", { text: "Cancel", onClick: () => { dialog.close(); dialog.remove(); } });
    dialog.append(el("h2", { text: "Keyboard shortcuts" }), ...rows, error, el("footer", {}, cancel, apply));
    document.body.append(dialog);
    dialog.showModal();
  }
}
