// Pieces more than one dashboard uses: metric tiles, the report button, the rollup charts.

import { ApiError, get, makeReport, query, type LearnerWeek, type Rollup } from "../api";
import { lineChart } from "../charts";
import { announce, errorText, fixed, h, mount, notice, percent } from "../dom";

/** Colours with at least 4.5:1 contrast on white (WCAG AA), distinguishable in greyscale. */
export const COLORS = { blue: "#0b5cad", green: "#1b7a3a", purple: "#6a3fa0", orange: "#a04b00" };

export const fmtVelocity = (v: number | null) => (v === null ? "—" : `${fixed(v, 1)}/wk`);
export const fmtPercent = (v: number | null) => percent(v);
export const fmtNumber = (v: number | null) => fixed(v, 1);
export const fmtCount = (v: number | null) => (v === null ? "—" : String(Math.round(v)));

/** A metric tile: label, value (raw value in data-value for tests and tooling), and more below. */
export function tile(metric: string, label: string, raw: number | null, text: string, ...below: (Node | string | null)[]): HTMLElement {
  return h(
    "div",
    { class: "tile", "data-metric": metric, "data-value": raw === null ? "" : String(raw) },
    h("div", { class: "tile-label" }, label),
    h("div", { class: "tile-value" }, text),
    ...below,
  );
}

/** A section's content in place of a spinner, or the reason it is not there. */
export async function fill(el: HTMLElement, load: () => Promise<(Node | string)[] | Node>): Promise<void> {
  mount(el, notice("Loading…"));
  el.setAttribute("aria-busy", "true");
  try {
    const content = await load();
    mount(el, ...(Array.isArray(content) ? content : [content]));
  } catch (error) {
    mount(el, notice(error instanceof ApiError && error.status === 404 ? "Not available." : `Could not load this: ${errorText(error)}`, "error"));
  } finally {
    el.removeAttribute("aria-busy");
  }
}

/** "Download ... report": creates the report, then starts the download and leaves a link. The
 * request names no `kind`: the service picks it by the active role (personal for a learner, the
 * cohort for a trainer, the organization for an org admin). */
export function reportButton(label: string, request: Record<string, unknown>): HTMLElement {
  const status = h("p", { class: "report-status", "aria-live": "polite" });
  const format = h(
    "select",
    { id: `fmt-${label.replace(/\W+/g, "-").toLowerCase()}`, name: "format" },
    h("option", { value: "pdf" }, "PDF"),
    h("option", { value: "csv" }, "CSV"),
    h("option", { value: "excel" }, "Excel"),
  );
  const button = h("button", { type: "button", class: "primary", "data-action": "report" }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    mount(status, "Preparing the report…");
    try {
      const report = await makeReport({ ...request, format: format.value });
      const link = h("a", { href: report.download!.url, id: "report-link", download: report.download!.fileName }, `Download ${report.download!.fileName}`);
      mount(status, "Ready: ", link, " (the link works for a few minutes)");
      announce("The report is ready; the download starts.");
      link.click();
    } catch (error) {
      mount(status, notice(`The report failed: ${errorText(error)}`, "error"));
    } finally {
      button.disabled = false;
    }
  });
  return h(
    "div",
    { class: "report" },
    h("div", { class: "row" }, h("label", { for: format.id }, "Format"), format, button),
    status,
  );
}

/** Active share, velocity and mean score over time from rollups; suppressed cells shaded, never 0. */
export function rollupCharts(items: Rollup[], what: string): HTMLElement[] {
  if (items.length === 0) return [notice(`No ${what} periods yet.`)];
  const rows = [...items].sort((a, b) => a.periodStart.localeCompare(b.periodStart));
  const periods = rows.map((r) => r.periodStart);
  const suppressed = rows.map((r) => r.suppressed);
  const chart = (title: string, label: string, values: (number | null)[], color: string, format: (v: number | null) => string, yRange?: [number, number]) =>
    lineChart({ title, periods, suppressed, yRange, series: [{ label, values, color, format }] });
  return [
    h(
      "div",
      { class: "charts" },
      chart("Active share (learners active in the period)", "Active share", rows.map((r) => r.activeShare), COLORS.blue, fmtPercent, [0, 1]),
      chart("Velocity (completions per learner per week)", "Velocity", rows.map((r) => r.velocity), COLORS.green, fmtNumber),
      chart("Mastery (mean assessment score)", "Mean score", rows.map((r) => r.meanScore), COLORS.purple, fmtPercent, [0, 1]),
    ),
  ];
}

/** The newest rollup's figures as tiles (after `lead`); a suppressed period says so instead of a number. */
export function latestTiles(items: Rollup[], ...lead: HTMLElement[]): HTMLElement {
  const rows = [...items].sort((a, b) => a.periodStart.localeCompare(b.periodStart));
  const last = rows[rows.length - 1];
  if (!last) return h("div", {}, lead.length ? h("div", { class: "tiles" }, lead) : null, notice("No periods yet."));
  const show = (metric: string, label: string, raw: number | null, format: (v: number | null) => string) =>
    last.suppressed
      ? h("div", { class: "tile", "data-metric": metric, "data-suppressed": "true" }, h("div", { class: "tile-label" }, label), h("div", { class: "tile-value suppressed" }, "suppressed"))
      : tile(metric, label, raw, format(raw));
  return h(
    "div",
    { class: "tiles", "data-period": last.periodStart },
    ...lead,
    show("activeShare", `Active share, week of ${last.periodStart}`, last.activeShare, fmtPercent),
    show("velocity", "Velocity", last.velocity, fmtVelocity),
    show("meanScore", "Mastery (mean score)", last.meanScore, fmtPercent),
    lead.length ? null : show("learners", "Learners", last.learners, (v) => fixed(v, 0)),
  );
}

/** A learner's own last weeks: completions, minutes and mean score (the learner's dashboard and the drill-down). */
export function weeklyCharts(weeks: LearnerWeek[]): HTMLElement[] {
  if (weeks.length === 0) return [notice("No weekly history yet.")];
  const periods = weeks.map((w) => w.weekStart);
  return [
    h(
      "div",
      { class: "charts" },
      lineChart({ title: "Completions per week", periods, series: [{ label: "Completions", values: weeks.map((w) => w.completions), color: COLORS.green, format: fmtCount }] }),
      lineChart({ title: "Minutes learning per week", periods, series: [{ label: "Minutes", values: weeks.map((w) => w.minutes), color: COLORS.blue, format: fmtCount }] }),
      lineChart({ title: "Mean assessment score per week", periods, yRange: [0, 1], series: [{ label: "Mean score", values: weeks.map((w) => w.meanScore), color: COLORS.purple, format: fmtPercent }] }),
    ),
  ];
}

const GRANULARITIES: [string, string][] = [["weekly", "Weekly"], ["daily", "Daily"], ["monthly", "Monthly"]];

/** Rollup charts with a choice of population (`scopes`: value, label) and period length. */
export function trendsPanel(scopes: [string, string][], first?: Promise<Rollup[]>): HTMLElement {
  const charts = h("div", { class: "trend-charts" });
  const scope = h("select", { id: "trend-scope", name: "scope" }, scopes.map(([v, label]) => h("option", { value: v }, label)));
  const granularity = h("select", { id: "trend-granularity", name: "granularity" }, GRANULARITIES.map(([v, label]) => h("option", { value: v }, label)));
  const load = (initial?: Promise<Rollup[]>) =>
    fill(charts, async () => {
      const items = initial ?? get<{ items: Rollup[] }>(`/v1/aggregates${query({ granularity: granularity.value, scope: scope.value })}`).then((r) => r.items);
      return rollupCharts(await items, scope.selectedOptions[0]?.textContent?.toLowerCase() ?? "");
    });
  scope.addEventListener("change", () => void load());
  granularity.addEventListener("change", () => void load());
  void load(first);
  return h(
    "div",
    {},
    h(
      "div",
      { class: "row" },
      scopes.length > 1 ? [h("label", { for: scope.id }, "Show"), scope] : null,
      h("label", { for: granularity.id }, "Periods"),
      granularity,
    ),
    charts,
  );
}
