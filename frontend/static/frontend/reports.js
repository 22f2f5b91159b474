// Reports (workspace): the show's per-minute and retention charts, the
// brand's trend across shows. The server computed every figure and wrote it
// in the tables beside the charts; this module only draws the series it sent
// in `report-chart-data` (minute-chart.js), and sizes the funnel's bars.

import { colour, drawChart, loadChart } from "./minute-chart.js";
import { readStrings } from "./room.js";

const root = document.getElementById("report") || document.getElementById("reports");
if (root) initReport(root).catch(() => {});

async function initReport(page) {
  for (const bar of page.querySelectorAll(".report-bar[data-width]")) {
    bar.style.width = `${Math.max(0, Math.min(100, Number(bar.dataset.width) || 0))}%`;
  }
  const data = readStrings("report-chart-data");
  const t = readStrings("report-i18n");
  if (!data.at?.length) return;
  const Lib = await loadChart(page.dataset.chartLib);
  const accent = colour("--accent", "#5b2bd9");
  const ok = colour("--ok", "#17663a");
  const minutes = document.getElementById("report-minutes-chart");
  if (minutes) {
    drawChart(
      Lib,
      minutes,
      [data.at, data.viewers, data.orders],
      [
        { label: t.viewers, stroke: accent, scale: "y" },
        { label: t.orders, stroke: ok, scale: "orders" },
      ],
      { timeZone: data.time_zone, timeLabel: t.minute, minSpan: 120, marks: () => data.pins || [] },
    );
  }
  const retention = document.getElementById("report-retention-chart");
  if (retention) {
    drawChart(Lib, retention, [data.at, data.retention], [{ label: t.retention, stroke: accent, scale: "share", kind: "percent" }], {
      timeZone: data.time_zone,
      timeLabel: t.minute,
      minSpan: 120,
    });
  }
  const trend = document.getElementById("reports-trend-chart");
  if (trend) {
    drawChart(
      Lib,
      trend,
      [data.at, data.viewers, data.orders],
      [
        { label: t.viewers, stroke: accent, scale: "y" },
        { label: t.orders, stroke: ok, scale: "orders" },
      ],
      { timeZone: data.time_zone, timeLabel: t.started, dates: true },
    );
  }
}
