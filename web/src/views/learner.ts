// The learner's dashboard: "how am I doing?" Headline metrics with their trend, each beside the
// peers' band (or the plain message when the group is too small), streak, badges, level, the
// leaderboard and the personal report.

import { ANALYTICS_TYPES, get, query, type Analytics, type AnalyticsType, type ComparisonItem, type Gamification, type Leaderboard, type LearnerDetail, type Me } from "../api";
import { card, h, percent, signed } from "../dom";
import { fill, fmtPercent, fmtVelocity, reportButton, tile, weeklyCharts } from "./shared";

interface Headline {
  type: AnalyticsType;
  label: string;
  key: string; // the field of the snapshot's data
  format: (v: number | null) => string;
  lowerIsBetter?: boolean;
  explain: string;
}

const HEADLINES: Headline[] = [
  { type: "learning_velocity", label: "Learning velocity", key: "velocity", format: fmtVelocity, explain: "completions per week, last 4 weeks" },
  { type: "engagement", label: "Engagement", key: "engagement", format: fmtPercent, explain: "share of the last 30 days you were active" },
  { type: "mastery", label: "Mastery", key: "mastery", format: fmtPercent, explain: "your recent assessment scores" },
  { type: "skill_gap", label: "Skill gap", key: "gap", format: fmtPercent, lowerIsBetter: true, explain: "how far below the targets, on average" },
];

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** The change this snapshot itself records (velocity: vs the previous 4 weeks; engagement: last 7 days vs 30). */
function trendOf(type: AnalyticsType, data: Record<string, unknown>): string | null {
  if (type === "learning_velocity" && num(data.trend) !== null) return `${signed(num(data.trend))}/wk vs the 4 weeks before`;
  if (type === "engagement" && num(data.engagement_7d) !== null) return `${percent(num(data.engagement_7d))} in the last 7 days`;
  return null;
}

/** Your value on the peers' 25th..75th percentile band, or the message why there is no band. */
function peersBand(item: ComparisonItem | undefined, format: (v: number | null) => string): HTMLElement {
  if (!item) return h("p", { class: "peers muted" }, "No comparison for this metric.");
  if (!item.available || !item.peers) {
    return h("p", { class: "peers muted", "data-peers": "unavailable" }, item.message ?? "The group is too small to compare.");
  }
  const p = item.peers;
  const lo = Math.min(p.p25, item.yourValue ?? p.p25, 0);
  const hi = Math.max(p.p75, item.yourValue ?? p.p75, p.p50) || 1;
  const pos = (v: number) => `${(((v - lo) / (hi - lo || 1)) * 100).toFixed(1)}%`;
  return h(
    "div",
    { class: "peers", "data-peers": "available", "data-p25": String(p.p25), "data-p75": String(p.p75) },
    h(
      "div",
      { class: "band", "aria-hidden": "true" },
      h("span", { class: "band-range", style: `left:${pos(p.p25)};width:calc(${pos(p.p75)} - ${pos(p.p25)})` }),
      h("span", { class: "band-median", style: `left:${pos(p.p50)}` }),
      item.yourValue !== null ? h("span", { class: "band-you", style: `left:${pos(item.yourValue)}` }) : null,
    ),
    h("p", { class: "small" }, `You ${format(item.yourValue)}. Peers (${p.userCount}): middle half ${format(p.p25)}–${format(p.p75)}, median ${format(p.p50)}`),
  );
}

const LEGEND = h(
  "p",
  { class: "legend small muted", "aria-hidden": "true" },
  h("span", { class: "key-you" }),
  " you  ",
  h("span", { class: "key-median" }),
  " peers' median  ",
  h("span", { class: "key-band" }),
  " the middle half of your peers",
);

function headlineTiles(items: Analytics[], comparison: ComparisonItem[]): HTMLElement[] {
  return [LEGEND, h(
    "div",
    { class: "tiles" },
    HEADLINES.map((m) => {
      const snap = items.find((a) => a.analyticsType === m.type);
      const raw = snap ? num(snap.data[m.key]) : null;
      const trend = snap ? trendOf(m.type, snap.data) : null;
      return tile(
        m.key,
        m.label,
        raw,
        m.format(raw),
        h("div", { class: "small muted" }, m.explain),
        trend ? h("div", { class: "trend" }, trend) : null,
        peersBand(comparison.find((c) => c.analyticsType === m.type), m.format),
      );
    }),
  )];
}


function progressCard(g: Gamification): HTMLElement[] {
  const toNext = g.nextLevelAt === null ? null : Math.max(0, g.nextLevelAt - g.points);
  return [
    h(
      "div",
      { class: "tiles" },
      tile("streak", "Streak", g.streak.current, `${g.streak.current} ${g.streak.current === 1 ? "day" : "days"}`, h("div", { class: "small muted" }, `longest ${g.streak.longest} days`)),
      tile(
        "level",
        "Level",
        g.level,
        `Level ${g.level}`,
        h("progress", { max: String(g.nextLevelAt ?? g.points), value: String(g.points), "aria-label": "Points toward the next level" }),
        h("div", { class: "small" }, toNext === null ? `${g.points} points: top level` : `${g.points} points, ${toNext} to level ${g.level + 1}`),
      ),
    ),
    h("h3", {}, "Badges"),
    g.badges.length === 0
      ? h("p", { class: "muted" }, "No badges yet: complete a module to earn the first.")
      : h("ul", { class: "badges" }, g.badges.map((b) => h("li", { "data-badge": b.id }, h("span", { class: "badge" }, b.name), b.earnedAt ? h("span", { class: "small muted" }, ` ${b.earnedAt.slice(0, 10)}`) : null))),
  ];
}

function leaderboard(board: Leaderboard): HTMLElement[] {
  const rows = [...board.items];
  if (board.you && !rows.some((r) => r.isYou)) rows.push(board.you);
  return [
    h("p", { class: "small muted" }, `${board.participants} learners with points in your organization`),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "leaderboard" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Rank"), h("th", { scope: "col" }, "Learner"), h("th", { scope: "col", class: "num" }, "Level"), h("th", { scope: "col", class: "num" }, "Points"))),
        h(
          "tbody",
          {},
          rows.map((r) =>
            h(
              "tr",
              { class: r.isYou ? "you" : null, "aria-current": r.isYou ? "true" : null },
              h("td", {}, String(r.rank)),
              h("th", { scope: "row" }, r.isYou ? `${r.displayName} (you)` : r.displayName),
              h("td", { class: "num" }, String(r.level)),
              h("td", { class: "num" }, String(r.points)),
            ),
          ),
        ),
      ),
    ),
  ];
}

export function learnerDashboard(me: Me): HTMLElement {
  const headline = h("div", { id: "headline-body" });
  const history = h("div");
  const progress = h("div");
  const board = h("div");
  const view = h(
    "div",
    { class: "dashboard", "data-dashboard": "learner" },
    h("h1", {}, `How am I doing, ${me.name.split(" ")[0]}?`),
    card("Your headline metrics", "headline", headline),
    card("Your trend over the last 12 weeks", "history", history),
    h("div", { class: "two" }, card("Streak, level and badges", "progress", progress), card("Leaderboard", "leaderboard", board)),
    card("Your report", "report", h("p", {}, "All four metrics over the last 30 days, for you alone."), reportButton("Download my report", { types: ANALYTICS_TYPES })),
  );
  // Every call at once: the numbers render as soon as their own answers are in.
  void fill(headline, async () => {
    const [analytics, comparison] = await Promise.all([
      get<{ items: Analytics[] }>(`/v1/analytics${query({ limit: 50 })}`),
      get<{ items: ComparisonItem[] }>("/v1/comparison"),
    ]);
    return headlineTiles(analytics.items, comparison.items);
  }).then(() => performance.mark("ms8:numbers")); // when the numbers are on screen (bench_web.py)
  void fill(history, async () => weeklyCharts((await get<LearnerDetail>(`/v1/learners/${me.userId}`)).weeks));
  void fill(progress, async () => progressCard(await get<Gamification>("/v1/gamification")));
  void fill(board, async () => leaderboard(await get<Leaderboard>(`/v1/leaderboard${query({ limit: 10 })}`)));
  return view;
}
