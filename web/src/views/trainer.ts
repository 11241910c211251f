// The trainer's dashboard: "who needs me?" The cohort at a glance, the sortable cohort table with
// each learner's metrics, last activity and at-risk reasons, the cohort's trends, a learner
// drill-down and the cohort report.

import { ANALYTICS_TYPES, get, query, type LearnerList, type Me, type Rollup } from "../api";
import { card, h } from "../dom";
import { cohortTable, openLearner } from "./cohort";
import { fill, latestTiles, reportButton, tile, trendsPanel } from "./shared";

export function trainerDashboard(me: Me): HTMLElement {
  const summary = h("div");
  const table = h("div");
  const trends = h("div");
  const drill = h("section", { class: "card drill", id: "drilldown", "aria-labelledby": "drill-h", hidden: true });
  const view = h(
    "div",
    { class: "dashboard", "data-dashboard": "trainer" },
    h("h1", {}, `${me.name.split(" ")[0]}'s cohort`),
    card("At a glance", "summary", summary),
    card("Learners", "learners", table),
    drill,
    card("Trends", "trends", trends),
    card("Cohort report", "report", h("p", {}, "Your learners' metrics over the last 30 days."), reportButton("Download the cohort report", { types: ANALYTICS_TYPES })),
  );
  const rows = get<LearnerList>("/v1/learners").then((r) => r.items);
  const rollups = get<{ items: Rollup[] }>(`/v1/aggregates${query({ granularity: "weekly", scope: "cohort" })}`).then((r) => r.items);
  void fill(summary, async () => {
    const [items, periods] = await Promise.all([rows, rollups]);
    const atRisk = items.filter((r) => r.atRisk).length;
    return latestTiles(
      periods,
      tile("learners", "Learners", items.length, String(items.length)),
      tile("atRisk", "At risk", atRisk, String(atRisk), h("div", { class: "small muted" }, "inactive 7+ days, velocity halved, or below target")),
    );
  });
  void fill(table, async () => cohortTable(await rows, (r) => openLearner(drill, r), "Your learners"));
  // The organization's figures, as a trainer reads them, leave out what would reveal individuals
  // outside their cohort: such periods come back suppressed.
  trends.append(trendsPanel([["cohort", "My cohort"], ["organization", "The whole organization"]], rollups));
  return view;
}
