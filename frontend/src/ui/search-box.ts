/**
 * The "add node" box (double-click, Tab, or a link dropped on empty canvas): a text field
 * and a ranked list from the model's fuzzy `searchNodes`, filtered to nodes with a socket of
 * the dragged link's type when there is one.
 */

import { searchNodes, type Catalog, type SearchResult, type Vec2 } from "../model";

export interface SearchRequest {
  readonly at: Vec2;
  readonly socketType?: string | undefined;
  readonly direction?: "input" | "output";
  readonly pick: (result: SearchResult) => void;
}

export class SearchBox {
  private element: HTMLElement | undefined;

  constructor(private readonly host: HTMLElement) {}

  get open(): boolean {
    return this.element !== undefined;
  }

  close(): void {
    this.element?.remove();
    this.element = undefined;
  }

  show(catalog: Catalog, request: SearchRequest): void {
    this.close();
    const box = document.createElement("div");
    box.className = "search-box";
    box.style.left = `${request.at[0]}px`;
    box.style.top = `${request.at[1]}px`;
    const field = document.createElement("input");
    field.placeholder = request.socketType === undefined ? "Add a node…" : `Add a node taking ${request.socketType}…`;
    field.setAttribute("aria-label", "search nodes");
    const list = document.createElement("ul");
    let results: SearchResult[] = [];
    let active = 0;
    const render = (): void => {
      results = searchNodes(catalog, field.value, {
        ...(request.socketType === undefined ? {} : { socketType: request.socketType }),
        ...(request.direction === undefined ? {} : { direction: request.direction }),
        limit: 30,
      });
      active = Math.min(active, Math.max(0, results.length - 1));
      list.replaceChildren(
        ...results.map((result, index) => {
          const item = document.createElement("li");
          item.className = index === active ? "active" : "";
          item.dataset["type"] = result.spec.id;
          const name = document.createElement("span");
          name.textContent = result.spec.display_name;
          const category = document.createElement("small");
          category.textContent = result.spec.category;
          item.append(name, category);
          item.addEventListener("pointerdown", (event) => {
            event.preventDefault();
            this.choose(request, result);
          });
          return item;
        }),
      );
    };
    field.addEventListener("input", () => {
      active = 0;
      render();
    });
    field.addEventListener("keydown", (event) => {
      event.stopPropagation();
      if (event.key === "ArrowDown") active = Math.min(results.length - 1, active + 1);
      else if (event.key === "ArrowUp") active = Math.max(0, active - 1);
      else if (event.key === "Enter") {
        const result = results[active];
        if (result !== undefined) this.choose(request, result);
        return;
      } else if (event.key === "Escape" || event.key === "Tab") {
        event.preventDefault();
        this.close();
        return;
      } else return;
      event.preventDefault();
      render();
    });
    field.addEventListener("blur", () => setTimeout(() => {
      if (this.element === box) this.close();
    }, 150));
    box.append(field, list);
    this.host.append(box);
    this.element = box;
    render();
    field.focus();
  }

  private choose(request: SearchRequest, result: SearchResult): void {
    this.close();
    request.pick(result);
  }
}
