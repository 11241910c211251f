// Small DOM helpers: elements from tag + attributes + children, and the number formats the
// dashboards share (one place, so the same value reads the same everywhere).

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** An element: `on<event>` attributes become listeners, `false`/`null` attributes are left out. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = String(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replace everything inside `el`. */
export function mount(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Tell screen-reader users what just happened (the polite live region). */
export function announce(message: string): void {
  const live = document.getElementById("live");
  if (live) live.textContent = message;
}

const NONE = "—";

export function fixed(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined || Number.isNaN(value) ? NONE : value.toFixed(digits);
}

/** A 0..1 share as a whole percentage. */
export function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? NONE : `${Math.round(value * 100)}%`;
}

/** A signed change, e.g. "+0.5" or "−1.2" (a real minus sign). */
export function signed(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined) return NONE;
  const text = Math.abs(value).toFixed(digits);
  if (Number(text) === 0) return `±${text}`;
  return value > 0 ? `+${text}` : `−${text}`;
}

export function day(iso: string | null | undefined): string {
  if (!iso) return "never";
  return iso.slice(0, 10);
}

/** "3 days ago", "today", "never": for last activity. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const days = Math.floor((now - Date.parse(iso)) / 86_400_000);
  if (days <= 0) return "today";
  return days === 1 ? "1 day ago" : `${days} days ago`;
}

/** A section with a heading, the unit every dashboard is built from. */
export function card(title: string, id: string, ...children: (Child | Child[])[]): HTMLElement {
  return h("section", { class: "card", "aria-labelledby": `${id}-h`, id }, h("h2", { id: `${id}-h` }, title), ...children);
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A small status line that a section shows while loading or when a call failed. */
export function notice(text: string, kind: "info" | "error" = "info"): HTMLElement {
  return h("p", { class: kind === "error" ? "notice error" : "notice", role: kind === "error" ? "alert" : null }, text);
}
