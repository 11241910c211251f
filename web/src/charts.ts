// Line charts over time (uPlot, bundled: nothing from a CDN). Every chart comes with its numbers
// as a table (for screen readers and keyboard users, and for anyone who wants the exact values).
// A missing value (null) is a gap in the line, never a zero; periods marked `suppressed` are
// shaded and named in the table.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom";

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
  format: (v: number | null) => string;
}

export interface ChartSpec {
  title: string;
  periods: string[]; // ISO dates, the x axis
  series: Series[];
  suppressed?: boolean[]; // per period: the cell is withheld (too few people)
  yRange?: [number, number];
}

const SUPPRESSED_TEXT = "suppressed";

function shadeSuppressed(spec: ChartSpec): uPlot.Plugin {
  return {
    hooks: {
      drawClear: (u: uPlot) => {
        if (!spec.suppressed?.some(Boolean)) return;
        const { ctx } = u;
        const xs = u.data[0];
        ctx.save();
        ctx.fillStyle = "rgba(90, 90, 90, 0.16)";
        spec.suppressed.forEach((hidden, i) => {
          if (!hidden) return;
          // The period's slot: halfway to each neighbour (a day wide when there is only one).
          const before = i > 0 ? (xs[i] - xs[i - 1]) / 2 : xs.length > 1 ? (xs[1] - xs[0]) / 2 : 43200;
          const after = i < xs.length - 1 ? (xs[i + 1] - xs[i]) / 2 : before;
          const left = u.valToPos(xs[i] - before, "x", true);
          const right = u.valToPos(xs[i] + after, "x", true);
          ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
        });
        ctx.restore();
      },
    },
  };
}

/** A figure: caption, the chart (drawn once it has a width), and its data table. */
export function lineChart(spec: ChartSpec): HTMLElement {
  const plot = h("div", { class: "plot", role: "img", "aria-label": `${spec.title}: chart; the values are in the table below` });
  const anySuppressed = spec.suppressed?.some(Boolean);
  const figure = h(
    "figure",
    { class: "chart" },
    h("figcaption", {}, spec.title),
    plot,
    anySuppressed ? h("p", { class: "muted small" }, "Shaded periods are suppressed: too few learners to show without revealing individuals.") : null,
    dataTable(spec),
  );
  const xs = spec.periods.map((p) => Date.parse(`${p}T00:00:00Z`) / 1000);
  const data: uPlot.AlignedData = [xs, ...spec.series.map((s) => s.values.map((v, i) => (spec.suppressed?.[i] ? null : v)))];
  let chart: uPlot | null = null;
  const draw = () => {
    const width = Math.max(260, plot.clientWidth);
    if (chart) {
      chart.setSize({ width, height: 200 });
      return;
    }
    if (!plot.isConnected || plot.clientWidth === 0) return;
    chart = new uPlot(
      {
        width,
        height: 200,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        legend: { show: spec.series.length > 1, live: false },
        cursor: { show: true, drag: { x: false, y: false } },
        scales: { x: { time: true }, y: spec.yRange ? { range: spec.yRange } : { auto: true } },
        axes: [
          { stroke: "#333", grid: { stroke: "#e4e4e4" } },
          { stroke: "#333", grid: { stroke: "#e4e4e4" }, size: 52, values: (_u, ticks) => ticks.map((t) => spec.series[0].format(t)) },
        ],
        series: [
          {},
          ...spec.series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            spanGaps: false,
            points: { show: true, size: 5, fill: s.color },
            value: (_u: uPlot, v: number | null) => s.format(v),
          })),
        ],
        plugins: [shadeSuppressed(spec)],
      },
      data,
      plot,
    );
  };
  new ResizeObserver(draw).observe(plot);
  return figure;
}

function dataTable(spec: ChartSpec): HTMLElement {
  return h(
    "details",
    { class: "data" },
    h("summary", {}, "Show the numbers"),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        {},
        h("caption", { class: "visually-hidden" }, spec.title),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Period"), spec.series.map((s) => h("th", { scope: "col" }, s.label)))),
        h(
          "tbody",
          {},
          spec.periods.map((p, i) =>
            h(
              "tr",
              { "data-period": p, "data-suppressed": spec.suppressed?.[i] ? "true" : null },
              h("th", { scope: "row" }, p),
              spec.series.map((s) =>
                h("td", { class: spec.suppressed?.[i] ? "suppressed" : null }, spec.suppressed?.[i] ? SUPPRESSED_TEXT : s.format(s.values[i])),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}
