// The cohort table (sortable by keyboard: each header is a button) and the learner drill-down.
// The trainer's dashboard shows their own cohort; the org admin's shows any trainer's.

import { get, type LearnerDetail, type LearnerRow } from "../api";
import { ago, announce, h, mount, notice, signed } from "../dom";
import { fill, fmtPercent, fmtVelocity, weeklyCharts } from "./shared";

interface Column {
  key: string;
  label: string;
  numeric?: boolean;
  sortValue: (r: LearnerRow) => number | string | null;
  cell: (r: LearnerRow, open: (r: LearnerRow) => void) => Node | string;
}

const COLUMNS: Column[] = [
  {
    key: "name",
    label: "Learner",
    sortValue: (r) => r.displayName.toLowerCase(),
    cell: (r, open) => h("button", { type: "button", class: "link", "data-open": r.userId, onclick: () => open(r) }, r.displayName),
  },
  { key: "velocity", label: "Velocity", numeric: true, sortValue: (r) => r.metrics.velocity, cell: (r) => h("span", { "data-value": String(r.metrics.velocity ?? "") }, fmtVelocity(r.metrics.velocity), h("span", { class: "small muted", title: "change vs the 4 weeks before" }, ` (${signed(r.trend.velocity)})`)) },
  { key: "engagement", label: "Engagement", numeric: true, sortValue: (r) => r.metrics.engagement, cell: (r) => h("span", { "data-value": String(r.metrics.engagement ?? "") }, fmtPercent(r.metrics.engagement)) },
  { key: "mastery", label: "Mastery", numeric: true, sortValue: (r) => r.metrics.mastery, cell: (r) => h("span", { "data-value": String(r.metrics.mastery ?? "") }, fmtPercent(r.metrics.mastery)) },
  { key: "skillGap", label: "Skill gap", numeric: true, sortValue: (r) => r.metrics.skillGap, cell: (r) => h("span", { "data-value": String(r.metrics.skillGap ?? "") }, fmtPercent(r.metrics.skillGap)) },
  // Oldest activity sorts first ascending; "never" before everything.
  { key: "lastActivity", label: "Last activity", sortValue: (r) => r.lastActivityAt ?? "", cell: (r) => h("time", { datetime: r.lastActivityAt ?? null, title: r.lastActivityAt ?? "no activity" }, ago(r.lastActivityAt)) },
  {
    key: "risk",
    label: "At risk",
    sortValue: (r) => r.riskReasons.length,
    cell: (r) =>
      r.atRisk
        ? h("ul", { class: "reasons" }, r.riskReasons.map((x) => h("li", { class: "risk", "data-risk": x.code }, x.message)))
        : h("span", { class: "ok" }, "no"),
  },
];

type Sort = { key: string; dir: 1 | -1 };

function compare(a: number | string | null, b: number | string | null): number {
  if (a === b) return 0;
  if (a === null) return -1; // missing values first ascending, last descending
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

/** The table: at-risk filter, sortable headers, one row per learner; `open` shows the drill-down. */
export function cohortTable(rows: LearnerRow[], open: (r: LearnerRow) => void, caption: string): HTMLElement {
  let sort: Sort = { key: "risk", dir: -1 };
  let atRiskOnly = false;
  const tbody = h("tbody");
  const headRow = h("tr");
  const filterId = `risk-only-${Math.random().toString(36).slice(2, 8)}`;
  const filter = h("input", { type: "checkbox", id: filterId, "data-filter": "at-risk" });
  const count = h("span", { class: "small muted", "aria-live": "polite" });

  const render = () => {
    const col = COLUMNS.find((c) => c.key === sort.key)!;
    const shown = rows.filter((r) => !atRiskOnly || r.atRisk).sort((a, b) => compare(col.sortValue(a), col.sortValue(b)) * sort.dir || a.displayName.localeCompare(b.displayName));
    mount(
      headRow,
      COLUMNS.map((c) => {
        const active = c.key === sort.key;
        return h(
          "th",
          { scope: "col", class: c.numeric ? "num" : null, "aria-sort": active ? (sort.dir === 1 ? "ascending" : "descending") : "none" },
          h(
            "button",
            {
              type: "button",
              class: "sort",
              "data-sort": c.key,
              onclick: () => {
                sort = { key: c.key, dir: active ? ((-sort.dir) as 1 | -1) : c.numeric ? -1 : 1 };
                render();
                (headRow.querySelector(`[data-sort="${c.key}"]`) as HTMLButtonElement).focus();
                announce(`Sorted by ${c.label}, ${sort.dir === 1 ? "ascending" : "descending"}`);
              },
            },
            c.label,
            h("span", { class: "arrow", "aria-hidden": "true" }, active ? (sort.dir === 1 ? " ▲" : " ▼") : " ↕"),
          ),
        );
      }),
    );
    mount(
      tbody,
      shown.length === 0 ? h("tr", {}, h("td", { colspan: String(COLUMNS.length) }, atRiskOnly ? "Nobody is at risk." : "No learners.")) : null,
      shown.map((r) => h("tr", { "data-user": r.userId, class: r.atRisk ? "at-risk" : null }, COLUMNS.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c.cell(r, open)) : h("td", { class: c.numeric ? "num" : null }, c.cell(r, open)))))),
    );
    count.textContent = `${shown.length} of ${rows.length} learners shown, ${rows.filter((r) => r.atRisk).length} at risk`;
  };
  filter.addEventListener("change", () => {
    atRiskOnly = filter.checked;
    render();
  });
  render();
  return h(
    "div",
    { class: "cohort" },
    h("div", { class: "row" }, h("label", { for: filterId, class: "check" }, filter, " At risk only"), count),
    h("div", { class: "scroll" }, h("table", { class: "cohort-table" }, h("caption", { class: "visually-hidden" }, caption), h("thead", {}, headRow), tbody)),
  );
}

function skillsTable(detail: LearnerDetail): HTMLElement {
  const skills = detail.skills ?? [];
  if (skills.length === 0) return notice("No assessed skills yet.");
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "skills" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Skill"), h("th", { scope: "col", class: "num" }, "Mastery"), h("th", { scope: "col", class: "num" }, "Target"), h("th", { scope: "col", class: "num" }, "Gap"))),
      h(
        "tbody",
        {},
        skills.map((s) =>
          h("tr", { "data-skill": s.skill }, h("th", { scope: "row" }, s.skill), h("td", { class: "num" }, fmtPercent(s.mastery)), h("td", { class: "num" }, fmtPercent(s.target)), h("td", { class: "num" }, fmtPercent(s.gap))),
        ),
      ),
    ),
  );
}

/** The drill-down of one learner into `panel`: reasons, the 12-week series, per-skill mastery and gap. */
export function openLearner(panel: HTMLElement, row: LearnerRow): void {
  const body = h("div");
  const heading = h("h2", { id: "drill-h", tabindex: "-1" }, row.displayName);
  const close = h("button", { type: "button", class: "secondary", onclick: () => { panel.hidden = true; (document.querySelector(`[data-open="${row.userId}"]`) as HTMLElement | null)?.focus(); } }, "Close");
  mount(panel, h("div", { class: "row spread" }, heading, close), body);
  panel.hidden = false;
  panel.setAttribute("data-user", row.userId);
  heading.focus();
  void fill(body, async () => {
    const detail = await get<LearnerDetail>(`/v1/learners/${row.userId}`);
    const d = detail.learner;
    const metric = (key: string, label: string, text: string) => h("div", { class: "tile", "data-metric": key }, h("div", { class: "tile-label" }, label), h("div", { class: "tile-value" }, text));
    return [
      h("p", { class: "small muted" }, `${d.email} · last active ${ago(d.lastActivityAt)}`),
      d.atRisk
        ? h("div", { class: "risk-box", role: "note" }, h("strong", {}, "At risk: "), h("ul", { class: "reasons" }, d.riskReasons.map((x) => h("li", { "data-risk": x.code }, x.message))))
        : h("p", { class: "ok" }, "Not at risk."),
      h(
        "div",
        { class: "tiles" },
        metric("velocity", "Velocity", `${fmtVelocity(d.metrics.velocity)} (${signed(d.trend.velocity)})`),
        metric("engagement", "Engagement", fmtPercent(d.metrics.engagement)),
        metric("mastery", "Mastery", fmtPercent(d.metrics.mastery)),
        metric("skillGap", "Skill gap", fmtPercent(d.metrics.skillGap)),
      ),
      ...weeklyCharts(detail.weeks),
      h("h3", {}, "Skills"),
      skillsTable(detail),
    ];
  });
}
