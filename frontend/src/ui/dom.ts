/** A tiny element builder for the side panels; the graph core never touches the DOM. */

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { className?: string; text?: string; title?: string; data?: Record<string, string>; onClick?: (event: MouseEvent) => void } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.className !== undefined) element.className = props.className;
  if (props.text !== undefined) element.textContent = props.text;
  if (props.title !== undefined) element.title = props.title;
  for (const [key, value] of Object.entries(props.data ?? {})) element.dataset[key] = value;
  const onClick = props.onClick;
  if (onClick !== undefined) element.addEventListener("click", (event: Event) => onClick(event as MouseEvent));
  element.append(...children);
  return element;
}

/** A button that opens a list of entries under it; entries are computed when it opens. */
export function dropdown(label: string, entries: () => Promise<{ label: string; run: () => void }[]> | { label: string; run: () => void }[]): HTMLElement {
  const wrapper = el("div", { className: "dropdown" });
  const list = el("ul", { className: "dropdown-list" });
  const button = el("button", {
    text: `${label} ▾`,
    data: { menu: label.toLowerCase() },
    onClick: async (event) => {
      event.stopPropagation();
      if (wrapper.classList.contains("open")) {
        wrapper.classList.remove("open");
        return;
      }
      const items = await entries();
      list.replaceChildren(
        ...(items.length === 0 ? [el("li", { className: "empty", text: "(none)" })] : items.map((item) =>
          el("li", {
            text: item.label,
            onClick: () => {
              wrapper.classList.remove("open");
              item.run();
            },
          }),
        )),
      );
      wrapper.classList.add("open");
      const close = (): void => {
        wrapper.classList.remove("open");
        removeEventListener("click", close);
      };
      addEventListener("click", close);
    },
  });
  wrapper.append(button, list);
  return wrapper;
}
